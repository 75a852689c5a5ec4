"""One reconcile: read desired state, read actual state, plan, and (unless dry-run) apply.

This is the only module that wires the pure planner to I/O; the CLI, ``watch`` and ``serve``
all call it, so a watch cycle and a one-shot ``reconcile`` behave identically.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from planner_operator import desired as desired_mod
from planner_operator import plan as plan_mod
from planner_operator import source
from planner_operator.apply import Applier, ApplyResult, Progress, RetryPolicy
from planner_operator.backends.base import Kind, RemoteBackend, RemoteObject, list_all
from planner_operator.backends.local import LocalScheduleBackend, LocalTriggerBackend
from planner_operator.config.loader import LoadedFile
from planner_operator.errors import ConfigError
from planner_operator.ledger import Ledger
from planner_operator.lock import ApplyLock
from planner_operator.settings import Settings


@dataclass(frozen=True)
class SourceSpec:
    """Where to read agent files: a directory of the work tree, or a git revision."""

    path: Path | None = None
    repo: Path | None = None
    rev: str = "HEAD"
    subdir: str = "agents"

    def read(self) -> source.Snapshot:
        if self.repo is not None:
            return source.read_git(self.repo, self.rev, self.subdir)
        return source.read_worktree(self.path or Path(self.subdir))


@dataclass(frozen=True)
class Desired:
    snapshot: source.Snapshot
    files: tuple[LoadedFile, ...]
    resources: Mapping[str, desired_mod.DesiredResource]

    @property
    def errors(self) -> tuple[ConfigError, ...]:
        return tuple(e for f in self.files for e in f.errors)


@dataclass
class Backends:
    """The backends of one run; closes what it opened."""

    by_kind: dict[Kind, RemoteBackend]
    _closers: list[contextlib.AbstractContextManager[object]] = field(default_factory=list)

    def close(self) -> None:
        for closer in reversed(self._closers):
            closer.__exit__(None, None, None)


@dataclass(frozen=True)
class Outcome:
    plan: plan_mod.Plan
    applied: ApplyResult | None = None


def read_desired(spec: SourceSpec) -> Desired:
    snapshot = spec.read()
    files = tuple(source.load(snapshot.files))
    return Desired(snapshot, files, desired_mod.build(files))


def open_backends(settings: Settings) -> Backends:
    """The embedded local backend (Inngest and Composio plug in here when configured)."""
    jobs = LocalScheduleBackend(settings.state_db)
    triggers = LocalTriggerBackend(settings.state_db)
    return Backends({"job": jobs, "trigger": triggers}, [jobs, triggers])


def read_actual(backends: Backends) -> list[RemoteObject]:
    return [obj for backend in backends.by_kind.values() for obj in list_all(backend)]


def make_plan(
    wanted: Desired,
    backends: Backends,
    ledger: Ledger,
    options: plan_mod.PlanOptions = plan_mod.PlanOptions(),
) -> plan_mod.Plan:
    return plan_mod.plan(
        wanted.resources,
        read_actual(backends),
        ledger.entries(),
        wanted.errors,
        options=options,
        revision=wanted.snapshot.revision,
    )


BackendFactory = Callable[[Settings], Backends]


@contextlib.contextmanager
def session(
    settings: Settings, backends_factory: BackendFactory | None = None
) -> Iterator[tuple[Backends, Ledger]]:
    backends = (backends_factory or open_backends)(settings)
    try:
        with Ledger(settings.ledger_db) as ledger:
            yield backends, ledger
    finally:
        backends.close()


def reconcile(
    spec: SourceSpec,
    settings: Settings,
    *,
    options: plan_mod.PlanOptions = plan_mod.PlanOptions(),
    dry_run: bool = False,
    progress: Progress | None = None,
    retry: RetryPolicy = RetryPolicy(),
    backends_factory: BackendFactory | None = None,
) -> Outcome:
    """Plan, and apply unless ``dry_run``; the apply holds the lock from read to last write."""
    wanted = read_desired(spec)
    with session(settings, backends_factory) as (backends, ledger):
        if dry_run:
            return Outcome(make_plan(wanted, backends, ledger, options))
        with ApplyLock(settings.ledger_db, timeout=settings.lock_timeout):
            plan = make_plan(wanted, backends, ledger, options)
            applier = Applier(
                backends.by_kind, ledger, revision=plan_revision_id(plan), retry=retry
            )
            result = applier.apply(plan, progress)
            record_outcome(ledger, plan, result)
            return Outcome(plan, result)


def plan_revision_id(plan: plan_mod.Plan) -> str:
    return plan.revision.id if plan.revision is not None else ""


def record_outcome(ledger: Ledger, plan: plan_mod.Plan, result: ApplyResult | None) -> None:
    """Remember the last reconcile for ``status`` (revision, counts, errors)."""
    counts = {op.value: n for op, n in plan.counts().items()}
    failures = [f"{i.change.key}: {i.error}" for i in result.failed] if result else []
    summary = {
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "revision": str(plan.revision) if plan.revision else None,
        "counts": counts,
        "blocked": len(plan.blocked),
        "load_errors": [str(e) for e in plan.load_errors],
        "failures": failures,
    }
    ledger.set_meta("last_reconcile", json.dumps(summary, sort_keys=True))
    if not failures and not plan.load_errors and plan.revision is not None:
        ledger.set_meta("last_applied_revision", str(plan.revision))
