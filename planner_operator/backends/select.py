"""Which backends a run uses: the cloud ones when configured, the embedded default otherwise.

Selection is by environment, so the same command works on a laptop (nothing set: local SQLite)
and in production (Inngest and Composio credentials set). ``PLANNER_SCHEDULE_BACKEND`` and
``PLANNER_TRIGGER_BACKEND`` force a choice (``local``, ``inngest``, ``composio``); a forced
cloud backend without its configuration is an error, never a silent fallback.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from planner_operator.backends.base import RemoteBackend
from planner_operator.config.desired import DesiredResource
from planner_operator.core.keys import Kind
from planner_operator.core.settings import Settings
from planner_operator.errors import ConfigError, SourceError

ENV_SCHEDULE = "PLANNER_SCHEDULE_BACKEND"
ENV_TRIGGER = "PLANNER_TRIGGER_BACKEND"


@runtime_checkable
class Preflight(Protocol):
    """Optional backend hook: check desired resources against the remote before any write.

    Errors come back as ``ConfigError`` with the resource's file and line, and are treated like
    load errors: that file's resources freeze and nothing is deleted in that run.
    """

    def preflight(self, resources: Sequence[DesiredResource]) -> list[ConfigError]: ...


@runtime_checkable
class Finisher(Protocol):
    """Optional backend hook run once after all items of an apply (e.g. one Inngest sync)."""

    def finish(self) -> list[str]:
        """Returns problems found (empty when all is well); each becomes an apply error."""
        ...


@dataclass
class Backends:
    """The backends of one run; closes what it opened."""

    by_kind: dict[Kind, RemoteBackend]
    closers: list[contextlib.AbstractContextManager[object]] = field(default_factory=list)

    def close(self) -> None:
        for closer in reversed(self.closers):
            closer.__exit__(None, None, None)


def schedule_backend_name(env: Mapping[str, str]) -> str:
    forced = env.get(ENV_SCHEDULE, "").strip().lower()
    if forced:
        return forced
    inngest = ("INNGEST_DEV", "INNGEST_SIGNING_KEY", "INNGEST_BASE_URL", "INNGEST_API_BASE_URL")
    return "inngest" if any(env.get(k) for k in inngest) else "local"


def trigger_backend_name(env: Mapping[str, str]) -> str:
    forced = env.get(ENV_TRIGGER, "").strip().lower()
    if forced:
        return forced
    return "composio" if env.get("COMPOSIO_API_KEY") else "local"


def open_backends(settings: Settings, env: Mapping[str, str] | None = None) -> Backends:
    env = os.environ if env is None else env
    by_kind: dict[Kind, RemoteBackend] = {}
    closers: list[contextlib.AbstractContextManager[object]] = []
    try:
        jobs = _schedule_backend(schedule_backend_name(env), settings, env)
        by_kind["job"] = jobs
        closers.append(jobs)  # type: ignore[arg-type]
        triggers = _trigger_backend(trigger_backend_name(env), settings, env)
        by_kind["trigger"] = triggers
        closers.append(triggers)  # type: ignore[arg-type]
    except BaseException:
        Backends(by_kind, closers).close()
        raise
    return Backends(by_kind, closers)


def _schedule_backend(name: str, settings: Settings, env: Mapping[str, str]) -> RemoteBackend:
    if name == "local":
        from planner_operator.backends.local import LocalScheduleBackend

        return LocalScheduleBackend(settings.state_db)
    if name == "inngest":
        from planner_operator.backends.inngest import backend as inngest

        return inngest.from_env(settings, env)
    raise SourceError(f"{ENV_SCHEDULE}={name!r}: use `local` or `inngest`")


def _trigger_backend(name: str, settings: Settings, env: Mapping[str, str]) -> RemoteBackend:
    if name == "local":
        from planner_operator.backends.local import LocalTriggerBackend

        return LocalTriggerBackend(settings.state_db)
    if name == "composio":
        from planner_operator.backends.composio import backend as composio

        return composio.from_env(settings, env)
    raise SourceError(f"{ENV_TRIGGER}={name!r}: use `local` or `composio`")
