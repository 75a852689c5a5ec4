"""What is running: every owned job and trigger with its state and next runs, plus unmanaged.

Built from the ledger (what we applied) and a fresh read of the backends (what is there), so
it shows the truth even when someone changed things outside the operator.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from planner_operator.backends.base import RemoteObject, SubscriptionState
from planner_operator.backends.composio import subscription as composio_webhooks
from planner_operator.backends.select import open_backends
from planner_operator.core import jsonfmt, scheduling, specs, times, variables
from planner_operator.core.records import OwnedEntry
from planner_operator.core.settings import Settings
from planner_operator.errors import PlannerError
from planner_operator.read import backlog, states
from planner_operator.reconcile.engine import BackendFactory, read_actual, read_subscription
from planner_operator.reconcile.render import subscription as render_subscription
from planner_operator.reconcile.subscription import plan_subscription
from planner_operator.state import inbox
from planner_operator.state import open as state_open


@dataclass(frozen=True)
class Row:
    key: str
    kind: str
    backend: str
    remote_id: str
    state: str  # states.State, or unmanaged
    detail: str
    schedule: str | None
    timezone: str | None
    next_runs: tuple[str, ...]
    revision: str
    last_run: str | None = None  # "succeeded at 2026-11-23T08:00:01Z (slot 2026-11-23T09:00)"
    missed: int = 0
    overlap_skipped: int = 0


@dataclass(frozen=True)
class Report:
    rows: tuple[Row, ...]
    last_reconcile: dict[str, Any] | None
    last_applied_revision: str | None
    watch_last_cycle: dict[str, Any] | None = None
    watch_last_error: dict[str, Any] | None = None
    subscription: dict[str, Any] | None = None  # the delivery subscription, as a plan sees it
    inbox: backlog.InboxView | None = None  # the webhook backlog; None before any delivery


def collect(
    settings: Settings,
    *,
    now: datetime,
    runs: int = 3,
    backends_factory: BackendFactory | None = None,
    env: Mapping[str, str] | None = None,
) -> Report:
    """Every owned resource's state (``states.classify``, as the API and /metrics show it).

    A backend that cannot be read makes every resource ``error`` with the reason, as in the
    API: the ledger's view is still worth showing, and an exit code alone says less. Webhook
    secrets are checked in ``env`` (default: this process's environment).
    """
    with state_open.ledger(settings) as ledger:
        entries = ledger.entries(include_retired=False)
        last = ledger.get_meta("last_reconcile")
        revision = ledger.get_meta("last_applied_revision")
        watch_cycle = ledger.get_meta("watch_last_cycle")
        watch_error = ledger.get_meta("watch_last_error")
    actual, read_error, delivery = _read(settings, backends_factory)
    sub = None if delivery is None else plan_subscription(delivery)
    history = _history(settings, [e.key for e in entries])
    events = lifecycle(settings)
    frozen = states.frozen_files(last)
    secrets = secret_problems(settings, entries, env)
    by_id = {(r.kind, r.remote_id): r for r in actual}
    owned = {(e.kind, e.remote_id) for e in entries}
    rows: list[Row] = []
    for entry in entries:
        found = states.classify(
            entry,
            by_id.get((entry.kind, entry.remote_id)),
            read_error=read_error,
            lifecycle=events.get(entry.key),
            frozen_by=states.frozen_by(entry, frozen),
            secret_problem=secrets.get(entry.key),
        )
        state, detail = found.state, found.detail
        spec = entry.spec
        job = specs.JobSpec.from_dict(spec) if entry.kind == "job" else None
        schedule = job.schedule if job else None
        timezone = job.timezone if job else None
        upcoming: tuple[str, ...] = ()
        if job is not None and state == "active":
            upcoming = _next(job.schedule, job.timezone, job.dst, now, runs, entry.backend)
        if entry.kind == "trigger" and not schedule:
            detail = detail or f"{spec.get('toolkit', 'webhook')} {spec.get('event', '')}".strip()
        last_run, missed, skipped = history.get(entry.key, (None, 0, 0))
        rows.append(
            Row(
                entry.key,
                entry.kind,
                entry.backend,
                entry.remote_id,
                state,
                detail,
                schedule,
                timezone,
                upcoming,
                entry.revision,
                last_run,
                missed,
                skipped,
            )
        )
    for obj in actual:
        if (obj.kind, obj.remote_id) not in owned:
            rows.append(
                Row(
                    obj.key or "-",
                    obj.kind,
                    "",
                    obj.remote_id,
                    "unmanaged",
                    "not created by this operator: never touched",
                    None,
                    None,
                    (),
                    "",
                )
            )
    return Report(
        tuple(rows),
        json.loads(last) if last else None,
        revision,
        json.loads(watch_cycle) if watch_cycle else None,
        json.loads(watch_error) if watch_error else None,
        render_subscription.json_value(sub),
        backlog.inbox_view(settings, now=now.timestamp()),
    )


def _read(
    settings: Settings, factory: BackendFactory | None
) -> tuple[list[RemoteObject], str | None, SubscriptionState | None]:
    """What the backends hold, or why they could not be read, and the delivery subscription."""
    try:
        backends = (factory or open_backends)(settings)
        try:
            return read_actual(backends), None, read_subscription(backends)
        finally:
            backends.close()
    except Exception as exc:  # vendor and HTTP errors too: every row shows it, as in the API
        return [], states.read_failure(exc), None


def _history(settings: Settings, keys: list[str]) -> dict[str, tuple[str | None, int, int]]:
    """Last run and scheduler counters per key (empty when nothing has run yet)."""
    if not state_open.exists(settings, "runs"):
        return {}
    out: dict[str, tuple[str | None, int, int]] = {}
    with state_open.runs(settings) as store:
        counters = store.counters()
        for key in keys:
            run = store.last(key)
            text = None
            if run is not None:
                at = run.finished_at or run.started_at
                slot = f" (slot {run.slot})" if run.slot else ""
                why = f": {run.error or run.reason}" if (run.error or run.reason) else ""
                text = f"{run.status} at {times.display(at)}{slot}{why}"
            c = counters.get(key)
            out[key] = (text, c.missed if c else 0, c.overlap_skipped if c else 0)
    return out


def lifecycle(settings: Settings) -> dict[str, tuple[str, str]]:
    """Lifecycle events received by the webhook receiver, per trigger key."""
    if not state_open.exists(settings, "inbox"):
        return {}
    with state_open.inbox(settings) as box, state_open.ledger(settings) as ledger:
        return inbox.trigger_statuses(box, ledger)


def secret_problems(
    settings: Settings, entries: Sequence[OwnedEntry], env: Mapping[str, str] | None
) -> dict[str, str]:
    """``states.secret_problems`` in ``env`` (None: the process's), with the Composio secret
    from the environment or the operator's state, as ``serve`` reads it."""
    environ = variables.environ(env)

    def composio_secret() -> bool:
        try:
            return bool(composio_webhooks.accepted_secrets(settings, environ))
        except PlannerError:  # an unsafe secret file: serve refuses to start and says why
            return True

    return states.secret_problems(entries, environ, composio_secret=composio_secret)


def _next(
    expr: str, tz: str, dst: specs.DstPolicy, now: datetime, count: int, backend: str
) -> tuple[str, ...]:
    """The next fires as ``backend`` will make them (``scheduling.effective_dst``)."""
    try:
        fires = scheduling.next_fires(expr, tz, start=now, count=count, dst=dst, backend=backend)
    except PlannerError:
        return ()
    return tuple(f.at.isoformat(timespec="minutes") for f in fires)


def render_text(report: Report) -> str:
    if not report.rows:
        return (
            "Nothing applied yet: run `planner-operator reconcile` to create the jobs and triggers."
        )
    lines = []
    for kind, title in (("job", "Scheduled jobs"), ("trigger", "Event triggers")):
        rows = [r for r in report.rows if r.kind == kind]
        if not rows:
            continue
        lines.append(f"{title}:")
        width = max(len(r.key) for r in rows)
        for r in rows:
            extra = ""
            if r.schedule:
                extra = f"{r.schedule} ({r.timezone})"
                if r.next_runs:
                    extra += f"  next: {r.next_runs[0]}"
            if r.detail:
                extra = f"{extra}  {r.detail}".strip()
            if r.last_run:
                extra = f"{extra}  last: {r.last_run}".strip()
            if r.missed or r.overlap_skipped:
                extra += f"  missed {r.missed}, overlap-skipped {r.overlap_skipped}"
            lines.append(f"  {r.key:<{width}}  {r.state:<9}  {r.remote_id:<18}  {extra}".rstrip())
        lines.append("")
    if report.last_reconcile:
        last = report.last_reconcile
        counts = ", ".join(f"{n} {op}" for op, n in sorted(last.get("counts", {}).items()))
        lines.append(f"Last reconcile: {last.get('at')} at {last.get('revision')} ({counts})")
        for failure in last.get("failures", []):
            lines.append(f"  failed: {failure}")
        for error in last.get("load_errors", []):
            lines.append(f"  load error: {error}")
    if report.last_applied_revision:
        lines.append(f"Last applied revision: {report.last_applied_revision}")
    if report.watch_last_cycle:
        cycle = report.watch_last_cycle
        lines.append(
            f"Watch: last cycle ({cycle['trigger']}) at {cycle['revision']}: "
            f"{cycle['summary'] or cycle.get('error')}"
        )
    if report.watch_last_error:
        error = report.watch_last_error
        lines.append(f"Watch: last error: {error.get('error') or error.get('summary')}")
    lines.extend(_subscription_lines(report.subscription))
    inbox_line = backlog.describe(report.inbox)
    if inbox_line:
        lines.append(inbox_line)
    return "\n".join(lines)


def _subscription_lines(sub: dict[str, Any] | None) -> list[str]:
    if sub is None:
        return []
    remote = sub["remote"]
    name = f"{str(sub['backend']).capitalize()} webhook subscription"
    if remote is None:
        head = f"{name}: none (reconcile creates it)"
    else:
        whose = "this operator's" if sub["owned"] else "set by another app"
        head = f"{name} {remote['id']}: {remote['url']} {remote['version']} ({whose})"
    lines = [head]
    if sub["op"] != "no-op":
        state = f"blocked: {sub['blocked']}" if sub["blocked"] else "the next reconcile updates it"
        lines.append(f"  {sub['reason']}; {state}")
    lines.extend(f"  problem: {p}" for p in sub["problems"])
    return lines


def render_json(report: Report) -> str:
    data = asdict(report)
    data["inbox"] = None if report.inbox is None else report.inbox.model_dump(mode="json")
    return jsonfmt.document("status", data)
