"""Which backends a run uses: the cloud ones when configured, the embedded default otherwise.

Selection is by environment, so the same command works on a laptop (nothing set: local SQLite)
and in production (Inngest and Composio credentials set). ``PLANNER_SCHEDULE_BACKEND`` and
``PLANNER_TRIGGER_BACKEND`` force a choice (``local``, ``inngest``, ``composio``); a forced
cloud backend without its configuration is an error, never a silent fallback.
"""

from __future__ import annotations

import builtins
import contextlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar, runtime_checkable

from planner_operator.backends.base import (
    BackendInfo,
    Page,
    RemoteBackend,
    RemoteObject,
    SubscriptionState,
)
from planner_operator.config.desired import DesiredResource
from planner_operator.core import clock as clock_mod
from planner_operator.core import variables
from planner_operator.core.keys import Kind
from planner_operator.core.settings import Settings
from planner_operator.errors import ConfigError, Conflict
from planner_operator.state import open as state_open
from planner_operator.state import sql

if TYPE_CHECKING:
    from planner_operator.backends.composio.backend import ComposioTriggerBackend

# Any of these set selects Inngest for jobs, unless PLANNER_SCHEDULE_BACKEND says otherwise.
INNGEST_CONFIGURED = (
    variables.INNGEST_DEV,
    variables.INNGEST_SIGNING_KEY,
    variables.INNGEST_BASE_URL,
    variables.INNGEST_API_BASE_URL,
)


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


@runtime_checkable
class Subscriber(Protocol):
    """Optional backend hook: the subscription through which the vendor delivers events.

    ``subscription`` is read before planning (None: nothing to show); the plan decides whether
    it may change (a foreign one only with ``--take-over-subscription``); the apply hands the
    state it planned with back to ``apply_subscription``, which writes only if the remote is
    still as planned, and returns what still stops deliveries.
    """

    def subscription(self) -> SubscriptionState | None: ...

    def apply_subscription(self, planned: SubscriptionState) -> list[str]: ...


@dataclass
class Backends:
    """The backends of one run; closes what it opened."""

    by_kind: dict[Kind, RemoteBackend]
    closers: list[contextlib.AbstractContextManager[object]] = field(default_factory=list)
    # checks of the platforms actions run on (Mastra), over every resource
    checks: list[Preflight] = field(default_factory=list)

    def warnings(self) -> list[str]:
        """What the checks could not check (an unreachable platform), for the plan's output."""
        return [w for c in self.checks for w in getattr(c, "warnings", [])]

    def close(self) -> None:
        for closer in reversed(self.closers):
            closer.__exit__(None, None, None)


def schedule_backend_name(env: Mapping[str, str]) -> str:
    forced = variables.SCHEDULE_BACKEND.read(env)
    if forced:
        return forced
    return "inngest" if any(v.is_set(env) for v in INNGEST_CONFIGURED) else "local"


def trigger_backend_name(env: Mapping[str, str]) -> str:
    forced = variables.TRIGGER_BACKEND.read(env)
    if forced:
        return forced
    return "composio" if variables.COMPOSIO_API_KEY.is_set(env) else "local"


def open_backends(
    settings: Settings,
    env: Mapping[str, str] | None = None,
    *,
    clock: clock_mod.Clock = clock_mod.SYSTEM,
) -> Backends:
    """The backends the environment names; ``clock`` stamps their rows and paces Composio."""
    env = variables.environ(env)
    by_kind: dict[Kind, RemoteBackend] = {}
    closers: list[contextlib.AbstractContextManager[object]] = []
    try:
        jobs = _schedule_backend(schedule_backend_name(env), settings, env, clock)
        by_kind["job"] = jobs
        closers.append(jobs)  # type: ignore[arg-type]
        triggers = _trigger_backend(trigger_backend_name(env), settings, env, clock)
        by_kind["trigger"] = triggers
        closers.append(triggers)  # type: ignore[arg-type]
        checks = platform_checks(env, clock, closers)
    except BaseException:
        Backends(by_kind, closers).close()
        raise
    return Backends(by_kind, closers, checks)


def platform_checks(
    env: Mapping[str, str],
    clock: clock_mod.Clock,
    closers: list[contextlib.AbstractContextManager[object]],
) -> list[Preflight]:
    """Mastra's agents and workflows, when chats and workflows run there."""
    url = variables.MASTRA_URL.read(env)
    if not url:
        return []
    from planner_operator.backends.mastra.checks import MastraCheck
    from planner_operator.backends.mastra.client import MastraClient

    client = MastraClient(
        url,
        token=variables.MASTRA_TOKEN.read(env),
        timeout=min(10.0, variables.EXECUTOR_TIMEOUT.read(env)),
        clock=clock,
    )
    closers.append(contextlib.closing(client))
    return [MastraCheck(client, local=local_workflow_ids(env))]


def local_workflow_ids(env: Mapping[str, str]) -> set[str]:
    """Workflow ids registered to run elsewhere than the platform: entry points of installed
    packages and ``PLANNER_WORKFLOWS`` (the runtime's registry; the shipped examples are not
    among them, since a configured platform runs those ids too)."""
    from importlib import metadata

    ids = {ep.name for ep in metadata.entry_points(group=variables.WORKFLOW_ENTRY_POINTS)}
    ids |= {item.partition("=")[0].strip() for item in variables.WORKFLOWS.read(env)}
    return ids


def _schedule_backend(
    name: str, settings: Settings, env: Mapping[str, str], clock: clock_mod.Clock
) -> RemoteBackend:
    if name == "local":
        from planner_operator.backends.local import LocalScheduleBackend

        # the embedded backend stands in for a remote system, so it is shared state: with a
        # shared database, every applier and replica must see the same jobs
        return LocalScheduleBackend(local_state(settings), clock=clock)
    if name == "inngest":
        from planner_operator.backends.inngest import backend as inngest

        return inngest.from_env(settings, env, clock=clock)
    raise AssertionError(name)  # PLANNER_SCHEDULE_BACKEND's parser admits only these two


def _trigger_backend(
    name: str, settings: Settings, env: Mapping[str, str], clock: clock_mod.Clock
) -> RemoteBackend:
    if name == "local":
        from planner_operator.backends.local import LocalTriggerBackend

        return LocalTriggerBackend(local_state(settings), clock=clock)
    if name == "composio":
        return composio_triggers(settings, env, clock=clock)
    raise AssertionError(name)  # PLANNER_TRIGGER_BACKEND's parser admits only these two


def local_state(settings: Settings) -> Path | sql.Database:
    """Where the embedded backend keeps its jobs and triggers (the state file, or the shared
    database)."""
    from planner_operator.backends import local

    return state_open.backend_state(settings, local.COMPONENT)


def composio_triggers(
    settings: Settings, env: Mapping[str, str], *, clock: clock_mod.Clock = clock_mod.SYSTEM
) -> WebhookRouting[ComposioTriggerBackend]:
    """The production trigger backend: Composio for events, the local table for webhooks.

    ``clock`` drives the Composio request budget (see ``composio.from_env``).
    """
    from planner_operator.backends import local
    from planner_operator.backends.composio import backend as composio
    from planner_operator.backends.local import LocalTriggerBackend

    events = composio.from_env(settings, env, clock=clock)
    try:  # the webhook table is shared state too: every applier must list its rows
        where = state_open.backend_state(settings, local.COMPONENT)
        webhooks = LocalTriggerBackend(where, clock=clock)
    except BaseException:
        events.close()
        raise
    return WebhookRouting(events, webhooks, webhook_prefix=f"{webhooks.prefix}_")


_Events = TypeVar("_Events", bound=RemoteBackend)


class WebhookRouting(Generic[_Events]):
    """One trigger backend made of two: an event source (Composio) and the signed-webhook table.

    A ``webhook:`` trigger is not an event-source object: its rows live in the embedded
    backend's table, and its deliveries arrive at ``/webhooks/<agent>/<trigger>`` with its own
    secret. Keeping the routing here keeps each backend about one system (Composio knows nothing
    of webhooks), and the planner still sees one trigger backend, named after the event source,
    so ledger rows keep their backend name. Specs route by their ``webhook`` field, remote ids
    by the webhook table's id prefix; listing returns the event source's objects, then the
    table's webhook rows (the table may also hold rows of the local event source, which are not
    this backend's).
    """

    def __init__(self, events: _Events, webhooks: RemoteBackend, *, webhook_prefix: str):
        self.events = events
        self.webhooks = webhooks
        self._prefix = webhook_prefix

    @property
    def info(self) -> BackendInfo:
        return self.events.info

    def _for_id(self, remote_id: str) -> RemoteBackend:
        return self.webhooks if remote_id.startswith(self._prefix) else self.events

    def list(self, *, cursor: str | None = None, limit: int = 100) -> Page:
        """Cursor: ``events:<inner>`` or ``webhooks:<remote id of the last row returned>``."""
        if cursor is None or cursor.startswith("events:"):
            inner = cursor.removeprefix("events:") if cursor else None
            page = self.events.list(cursor=inner or None, limit=limit)
            if page.next_cursor:
                return Page(page.items, f"events:{page.next_cursor}")
            if len(page.items) >= limit:
                return Page(page.items, "webhooks:")
            rest = self._webhook_page(None, limit - len(page.items))
            return Page((*page.items, *rest.items), rest.next_cursor)
        return self._webhook_page(cursor.removeprefix("webhooks:") or None, limit)

    def _webhook_page(self, cursor: str | None, want: int) -> Page:
        items: builtins.list[RemoteObject] = []
        while True:
            page = self.webhooks.list(cursor=cursor, limit=max(want, 50))
            for obj in page.items:
                cursor = obj.remote_id
                if "webhook" in obj.spec:
                    items.append(obj)
                if len(items) == want:
                    more = page.next_cursor is not None or obj is not page.items[-1]
                    return Page(tuple(items), f"webhooks:{cursor}" if more else None)
            if page.next_cursor is None:
                return Page(tuple(items), None)

    def create(self, key: str, spec: Mapping[str, Any]) -> RemoteObject:
        target = self.webhooks if "webhook" in spec else self.events
        return target.create(key, spec)

    def update(self, remote_id: str, key: str, spec: Mapping[str, Any]) -> RemoteObject:
        backend = self._for_id(remote_id)
        if ("webhook" in spec) != (backend is self.webhooks):
            raise Conflict(
                f"trigger {remote_id}: `webhook` cannot change in place; create a new trigger "
                "and delete this one (a replace)",
                backend=self.info.name,
            )
        return backend.update(remote_id, key, spec)

    def delete(self, remote_id: str) -> None:
        self._for_id(remote_id).delete(remote_id)

    def preflight(self, resources: Sequence[DesiredResource]) -> builtins.list[ConfigError]:
        """The event source checks its own triggers; webhook triggers have nothing remote."""
        if not isinstance(self.events, Preflight):
            return []
        return self.events.preflight([r for r in resources if "webhook" not in r.spec])

    def finish(self) -> builtins.list[str]:
        return self.events.finish() if isinstance(self.events, Finisher) else []

    def subscription(self) -> SubscriptionState | None:
        return self.events.subscription() if isinstance(self.events, Subscriber) else None

    def apply_subscription(self, planned: SubscriptionState) -> builtins.list[str]:
        if not isinstance(self.events, Subscriber):
            return []
        return self.events.apply_subscription(planned)

    def close(self) -> None:
        try:
            _close(self.events)
        finally:
            _close(self.webhooks)

    def __enter__(self) -> WebhookRouting[_Events]:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def checks_trigger_types(backends: Backends) -> bool:
    """Whether the trigger backend checks trigger types against the live remote (preflight):
    then the bundled catalog's offline findings are superseded (``reconcile.engine``)."""
    triggers = backends.by_kind.get("trigger")
    if isinstance(triggers, WebhookRouting):
        return isinstance(triggers.events, Preflight)
    return isinstance(triggers, Preflight)


def _close(backend: object) -> None:
    close = getattr(backend, "close", None)
    if callable(close):
        close()
