"""One reconcile: read desired state, read actual state, plan, and (unless dry-run) apply.

This is the only module that wires the pure planner to I/O; the CLI, ``watch`` and ``serve``
all call it, so a watch cycle and a one-shot ``reconcile`` behave identically.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import logging
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import ParamSpec, Protocol

from planner_operator import telemetry
from planner_operator.backends.base import RemoteObject, SubscriptionState, list_all
from planner_operator.backends.select import (
    Backends,
    Finisher,
    Preflight,
    Subscriber,
    checks_trigger_types,
    open_backends,
)
from planner_operator.config import catalog, semantic
from planner_operator.config import desired as desired_mod
from planner_operator.config.loader import LoadedFile
from planner_operator.core import clock as clock_mod
from planner_operator.core import variables
from planner_operator.core.settings import Settings
from planner_operator.errors import ConfigError, PlannerError
from planner_operator.reconcile import confirm, parsecache, source
from planner_operator.reconcile import plan as plan_mod
from planner_operator.reconcile.apply import Applier, ApplyResult, Progress, RetryPolicy
from planner_operator.state import open as state_open
from planner_operator.state.ledger import Ledger

log = logging.getLogger("planner_operator.reconcile")


@dataclass(frozen=True)
class SourceSpec:
    """Where to read agent files: a directory of the work tree, or a git revision.

    ``settle`` (work tree only; 0 reads once): a file is planned only once two reads this many
    seconds apart agree, and a delete or replace is applied only when a read at least this much
    later plans it too (``source.read_worktree_settled``, ``reconcile.confirm``).
    """

    path: Path | None = None
    repo: Path | None = None
    rev: str = "HEAD"
    subdir: str = "agents"
    settle: float = 0.0

    @property
    def settles(self) -> bool:
        return self.repo is None and self.settle > 0

    def read(self, clock: clock_mod.Clock = clock_mod.SYSTEM) -> source.Snapshot:
        if self.repo is not None:
            return source.read_git(self.repo, self.rev, self.subdir)
        directory = self.path or Path(self.subdir)
        if self.settles:
            return source.read_worktree_settled(directory, settle=self.settle, clock=clock)
        return source.read_worktree(directory)


class Source(Protocol):
    """Anything that reads a snapshot of agent files: a :class:`SourceSpec`, or the files a
    client sent (``source.Received``, for ``POST /api/plan``)."""

    @property
    def settle(self) -> float:
        """Seconds a read must stay unchanged before a plan that deletes is applied."""
        ...

    @property
    def settles(self) -> bool: ...

    def read(self, clock: clock_mod.Clock = ...) -> source.Snapshot: ...


@dataclass(frozen=True)
class Desired:
    snapshot: source.Snapshot
    files: tuple[LoadedFile, ...]
    resources: Mapping[str, desired_mod.DesiredResource]

    @property
    def errors(self) -> tuple[ConfigError, ...]:
        return tuple(e for f in self.files for e in f.errors)

    @property
    def warnings(self) -> tuple[ConfigError, ...]:
        return tuple(w for f in self.files for w in f.warnings)


@dataclass(frozen=True)
class Outcome:
    """``lock_takeover`` says whose stale apply lock this apply took, when it took one."""

    plan: plan_mod.Plan
    applied: ApplyResult | None = None
    declined: bool = False  # the plan was shown and not approved: nothing was applied
    lock_takeover: str | None = None


# Shown the plan (under the apply lock, so it cannot change before the apply), says whether to
# apply it: the CLI's "Do you want to perform these actions?".
Approve = Callable[[plan_mod.Plan], bool]


def read_desired(
    spec: Source,
    *,
    clock: clock_mod.Clock = clock_mod.SYSTEM,
    cache: parsecache.FileCache | None = None,
) -> Desired:
    snapshot = spec.read(clock)
    files = tuple(source.load(snapshot.files, cache))
    if cache is not None:
        log.debug("parsed %d file(s), %d from the parse cache", len(cache.parsed), cache.reused)
    return Desired(snapshot, files, desired_mod.build(files))


@contextlib.contextmanager
def parse_cache(
    settings: Settings, *, write: bool = True, clock: clock_mod.Clock = clock_mod.SYSTEM
) -> Iterator[parsecache.FileCache | None]:
    """The parse cache in the state, or None (load cold) when it cannot be opened.

    ``write=False`` (a dry run, which writes nothing to the state) only reads, and only a
    cache that exists already.
    """
    if not write and not state_open.exists(settings, "parse_cache"):
        yield None
        return
    try:
        store = state_open.parse_cache(settings, clock=clock)
    except PlannerError as exc:
        log.warning("parse cache unavailable, loading every file: %s", exc)
        yield None
        return
    with store:
        yield parsecache.FileCache(store, write=write)


def read_actual(backends: Backends) -> list[RemoteObject]:
    return [obj for backend in backends.by_kind.values() for obj in list_all(backend)]


def preflight(wanted: Desired, backends: Backends) -> list[ConfigError]:
    """Backend checks before any write (e.g. trigger config against Composio's schema)."""
    errors: list[ConfigError] = []
    for kind, backend in backends.by_kind.items():
        if isinstance(backend, Preflight):
            mine = [r for r in wanted.resources.values() if r.kind == kind]
            errors.extend(backend.preflight(mine))
    for check in backends.checks:
        errors.extend(check.preflight(list(wanted.resources.values())))
    for warning in backends.warnings():
        log.warning("%s", warning)
    return errors


def make_plan(
    wanted: Desired,
    backends: Backends,
    ledger: Ledger,
    options: plan_mod.PlanOptions = plan_mod.PlanOptions(),
    env: Mapping[str, str] | None = None,
) -> plan_mod.Plan:
    """Plan; a file with preflight errors is treated exactly like one that failed to load.

    When a trigger backend checks types live (its preflight), the bundled catalog's findings
    about the same triggers are dropped: a type Composio added since the snapshot is no error,
    and a wrong one gets the live did-you-mean instead. Secret warnings are for ``env`` (the
    process's environment by default), where this plan runs.
    """
    wanted = checked_live(wanted, backends)
    unset = semantic.secret_warnings(wanted.files, variables.environ(env))
    warnings = semantic.in_order([*wanted.warnings, *unset])
    errors = [*wanted.errors, *preflight(wanted, backends)]
    failed = {e.file for e in errors}
    resources = {k: r for k, r in wanted.resources.items() if r.source not in failed}
    names = {kind: backend.info.name for kind, backend in backends.by_kind.items()}
    return plan_mod.plan(
        resources,
        read_actual(backends),
        ledger.entries(),
        errors,
        options=options,
        revision=wanted.snapshot.revision,
        # only intents recorded on the backends read here: the planner matches them by key
        intents=[i for i in ledger.intents() if names.get(i.kind) == i.backend],
        subscription=read_subscription(backends),
        warnings=warnings,
        schedule_backend=names.get("job", ""),
    )


def checked_live(wanted: Desired, backends: Backends) -> Desired:
    """``wanted`` without the bundled catalog's findings when the trigger backend checks the
    types live: a file whose only error was one loads again, and preflight judges its triggers
    (a type newer than the catalog passes, a typo gets Composio's own did-you-mean)."""
    if not checks_trigger_types(backends):
        return wanted
    stale = catalog.CatalogFinding
    if not any(isinstance(e, stale) for f in wanted.files for e in (*f.errors, *f.warnings)):
        return wanted
    files = tuple(
        dataclasses.replace(
            f,
            errors=tuple(e for e in f.errors if not isinstance(e, stale)),
            warnings=tuple(w for w in f.warnings if not isinstance(w, stale)),
        )
        for f in wanted.files
    )
    return Desired(wanted.snapshot, files, desired_mod.build(files))


def read_subscription(backends: Backends) -> SubscriptionState | None:
    """The delivery subscription of the (one) backend that has one, read after preflight
    (which tells the backend whether any of its triggers need it)."""
    for backend in backends.by_kind.values():
        if isinstance(backend, Subscriber):
            try:
                return backend.subscription()
            except PlannerError as exc:  # shown in the plan; nothing is planned for it
                name = backend.info.name
                return SubscriptionState(name, None, "", (), None, problems=(str(exc),))
    return None


def apply_subscription(backends: Backends, plan: plan_mod.Plan, result: ApplyResult) -> ApplyResult:
    """Make the subscription change the plan shows (only if it may); its problems fail the apply."""
    change = plan.subscription
    if change is None:
        return result
    problems = list(change.problems)
    if change.actionable:
        for backend in backends.by_kind.values():
            if isinstance(backend, Subscriber):
                problems += backend.apply_subscription(change.state)
    if not problems:
        return result
    return ApplyResult(result.items, (*result.problems, *problems))


_P = ParamSpec("_P")


def _reported(fn: Callable[_P, Outcome]) -> Callable[_P, Outcome]:
    """Report every apply (never a dry run) to telemetry: result, changes, duration."""

    @functools.wraps(fn)
    def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> Outcome:
        started = time.perf_counter()
        try:
            outcome = fn(*args, **kwargs)
        except Exception:
            if not kwargs.get("dry_run"):
                telemetry.reconciled(
                    telemetry.ReconcileReport("error", time.perf_counter() - started)
                )
            raise
        if outcome.applied is not None:
            telemetry.reconciled(
                report(outcome.plan, outcome.applied, time.perf_counter() - started)
            )
        return outcome

    return wrapper


def report(plan: plan_mod.Plan, result: ApplyResult, seconds: float) -> telemetry.ReconcileReport:
    """What one apply did to each planned change, and how the run as a whole ended."""
    done = {id(item.change): item.ok for item in result.items}
    changes: list[telemetry.ChangeReport] = []
    for change in plan.changes:
        op = "noop" if change.op is plan_mod.Op.NOOP else change.op.value
        outcome: telemetry.ChangeOutcome
        if change.blocked is not None:
            outcome = "blocked"
        elif change.op is plan_mod.Op.NOOP:
            outcome = "unchanged"
        elif id(change) in done:
            outcome = "applied" if done[id(change)] else "failed"
        else:
            outcome = "skipped"  # the apply stopped (shutdown) before this change
        changes.append(telemetry.ChangeReport(op, change.kind, outcome))
    run: telemetry.ReconcileResult
    if result.failed or result.problems:
        run = "failed"
    elif not plan.ok:
        run = "incomplete"
    else:
        run = "success"
    return telemetry.ReconcileReport(run, seconds, tuple(changes), len(plan.load_errors))


BackendFactory = Callable[[Settings], Backends]


@contextlib.contextmanager
def session(
    settings: Settings,
    backends_factory: BackendFactory | None = None,
    *,
    clock: clock_mod.Clock = clock_mod.SYSTEM,
) -> Iterator[tuple[Backends, Ledger]]:
    if backends_factory is None:
        backends = open_backends(settings, clock=clock)
    else:
        backends = backends_factory(settings)
    try:
        with state_open.ledger(settings, clock=clock) as ledger:
            yield backends, ledger
    finally:
        backends.close()


@_reported
def reconcile(
    spec: Source,
    settings: Settings,
    *,
    options: plan_mod.PlanOptions = plan_mod.PlanOptions(),
    dry_run: bool = False,
    progress: Progress | None = None,
    retry: RetryPolicy = RetryPolicy(),
    backends_factory: BackendFactory | None = None,
    stop: Callable[[], bool] | None = None,
    approve: Approve | None = None,
    clock: clock_mod.Clock = clock_mod.SYSTEM,
) -> Outcome:
    """Plan, and apply unless ``dry_run``; the apply holds the lock from read to last write.

    ``approve`` sees the plan before anything is written; False ends the run unapplied.
    ``clock`` stamps the ledger, the lock and the local backends, and waits out retries.
    """
    with parse_cache(settings, write=not dry_run, clock=clock) as cache:
        wanted = read_desired(spec, clock=clock, cache=cache)
    with session(settings, backends_factory, clock=clock) as (backends, ledger):
        wanted = checked_live(wanted, backends)
        if dry_run:
            return Outcome(make_plan(wanted, backends, ledger, options))
        with state_open.apply_lock(settings, timeout=settings.lock_timeout, clock=clock) as lock:
            plan = make_plan(wanted, backends, ledger, options)
            if spec.settles:  # a torn write must not delete: a later read must agree

                def replan() -> plan_mod.Plan:
                    nonlocal wanted
                    with parse_cache(settings, clock=clock) as cache:
                        wanted = read_desired(spec, clock=clock, cache=cache)
                    return make_plan(wanted, backends, ledger, options)

                plan = confirm.confirmed(plan, replan, settle=spec.settle, clock=clock)
            if approve is not None and not approve(plan):
                return Outcome(plan, declined=True, lock_takeover=lock.takeover)
            applier = Applier(
                backends.by_kind,
                ledger,
                revision=plan_revision_id(plan),
                retry=retry,
                clock=clock,
            )
            result = applier.apply(plan, progress, stop=stop)
            result = apply_subscription(backends, plan, result)
            result = finish(backends, result)
            record_outcome(ledger, plan, result)
            record_agents(ledger, wanted)
            return Outcome(plan, result, lock_takeover=lock.takeover)


def finish(backends: Backends, result: ApplyResult) -> ApplyResult:
    """Run each backend's once-per-apply step (e.g. sync and verify); problems fail the apply."""
    problems: list[str] = []
    for backend in backends.by_kind.values():
        if isinstance(backend, Finisher):
            try:
                problems.extend(backend.finish())
            except PlannerError as exc:  # e.g. the read-back could not reach the server
                problems.append(f"{backend.info.name}: {exc}")
    if not problems:
        return result
    return ApplyResult(result.items, tuple(problems))


def plan_revision_id(plan: plan_mod.Plan) -> str:
    return plan.revision.id if plan.revision is not None else ""


def record_outcome(ledger: Ledger, plan: plan_mod.Plan, result: ApplyResult | None) -> None:
    """Remember the last reconcile for ``status`` (revision, counts, errors)."""
    counts = {op.value: n for op, n in plan.counts().items()}
    failures = [f"{i.change.key}: {i.error}" for i in result.failed] if result else []
    failures += list(result.problems) if result else []  # e.g. an Inngest sync that failed
    summary = {
        "at": clock_mod.iso(ledger.clock, "seconds"),
        "revision": str(plan.revision) if plan.revision else None,
        "counts": counts,
        "blocked": len(plan.blocked),
        "load_errors": [str(e) for e in plan.load_errors],
        "frozen_files": list(plan.frozen_files),  # their resources stay as applied (status)
        "failures": failures,
    }
    ledger.set_meta("last_reconcile", json.dumps(summary, sort_keys=True))
    if not failures and not plan.load_errors and plan.revision is not None:
        ledger.set_meta("last_applied_revision", str(plan.revision))


def record_agents(ledger: Ledger, wanted: Desired) -> None:
    """Remember each agent's name, description, timezone and file (ledger meta ``agents``).

    Specs do not carry them (renaming an agent changes none of its jobs), yet the status API and
    dashboard show them. A file that failed to load keeps what the last good load recorded.
    """
    try:
        previous = json.loads(ledger.get_meta("agents") or "{}")
    except ValueError:
        previous = {}
    failed = {f.file for f in wanted.files if not f.ok}
    agents = {k: v for k, v in previous.items() if isinstance(v, dict) and v.get("file") in failed}
    for f in wanted.files:
        if f.ok and f.agent is not None:
            agents[f.agent_id] = {
                "name": f.agent.name,
                "description": f.agent.description,
                "timezone": f.agent.timezone,
                "file": f.file,
            }
    ledger.set_meta("agents", json.dumps(agents, sort_keys=True))
