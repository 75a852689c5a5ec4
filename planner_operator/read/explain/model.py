"""``explain KEY``: why each slot of a job did or did not run, as one timeline.

Operators ask "why didn't it run at 9?" and the answer is spread over four places: the ledger
history (which schedule, timezone and paused state applied at that moment), the schedule itself
(``scheduling.iter_fires`` with the job's DST policy), run history (what fired, skipped or
failed, and why) and the clock (slots still to come). :func:`build` joins them, purely, into a
list of :class:`Line`; ``explain_load.job`` is the thin I/O wrapper the CLI calls.

Each expected slot gets exactly one verdict: ``ran`` (with outcome, run id and latency),
``skipped`` (DST, overlap, missed during an outage: the reason), ``paused`` (disabled then),
``not applied`` (before the job existed), ``no run`` (nothing recorded: what to check) or
``upcoming``. Runs that are not slots (run-now) and runs no expected slot accounts for are
listed at their own time; schedule changes, pauses and DST transitions are lines of their own.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from planner_operator.core import keys, scheduling, specs
from planner_operator.core.records import HistoryRow, OwnedEntry, Run
from planner_operator.errors import InvalidRequest, NotFoundError
from planner_operator.read.explain import slots as explain_slots

DEFAULT_WINDOW = timedelta(days=7)  # --from defaults to --to minus this, --to to now
DEFAULT_MAX_SLOTS = 500  # without --from, a frequent job shows only its latest slots
DUE_GRACE = timedelta(minutes=2)  # a slot this recent without a run may still be starting
SLOT_ORIGINS = frozenset({"scheduler", "inngest", "catchup", "dst"})
_FOLDED = re.compile(r"(\d+) slots from (\S+) to (\S+)")  # scheduler.Scheduler._missed_rows


@dataclass(frozen=True)
class Line:
    """One timeline line. ``at`` is the instant (UTC) it is sorted and shown at."""

    at: datetime
    kind: str  # slot | run | change | dst
    status: str  # slot: ran|skipped|paused|not applied|no run|upcoming; run/change/dst: a word
    text: str
    slot: str | None = None  # wall-clock slot in the job's timezone, as run history stores it
    run_id: str | None = None
    outcome: str | None = None  # the run's status: succeeded | failed | running | skipped
    origin: str | None = None
    latency_s: float | None = None  # from the slot's instant to the run's start
    attempts: int | None = None
    note: str | None = None  # the DST note of the fire, when DST moved it


@dataclass(frozen=True)
class Timeline:
    key: str
    backend: str
    remote_id: str
    schedule: str | None
    timezone: str
    spec: Mapping[str, Any]
    start: datetime
    end: datetime
    now: datetime
    lines: tuple[Line, ...]
    notes: tuple[str, ...] = ()
    next_fire: datetime | None = None

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = defaultdict(int)
        for line in self.lines:
            if line.kind == "slot":
                out[line.status] += 1
                if line.status == "ran" and line.outcome:
                    out[f"ran {line.outcome}"] += 1
            elif line.kind == "run":
                out["other runs"] += 1
        return dict(out)


@dataclass(frozen=True)
class Inputs:
    """Everything the timeline is built from (constructed directly in tests)."""

    key: str
    current: OwnedEntry | None
    history: Sequence[HistoryRow]
    runs: Sequence[Run]
    start: datetime
    end: datetime
    now: datetime
    max_slots: int | None = None  # keep only the latest N slots (a defaulted window)


@dataclass(frozen=True)
class _Period:
    """A stretch of time with one applied spec (``exists`` False: before create / after delete)."""

    start: datetime | None
    end: datetime | None
    spec: Mapping[str, Any]
    exists: bool
    backend: str
    since: HistoryRow | None = None


@dataclass
class _Group:
    """The attempts of one run id (Inngest retries); the last attempt is the outcome."""

    rows: list[Run] = field(default_factory=list)

    @property
    def last(self) -> Run:
        return max(self.rows, key=lambda r: (r.attempt, r.id))

    @property
    def attempts(self) -> int:
        """Attempts made: an Inngest run keeps one row and counts its attempts on it."""
        return max(len(self.rows), max(r.attempt for r in self.rows) + 1)


# -- building ---------------------------------------------------------------------------------


def build(inputs: Inputs) -> Timeline:
    """The timeline of ``inputs.key`` over [start, end]: pure, deterministic."""
    start, end, now = (_utc(t) for t in (inputs.start, inputs.end, inputs.now))
    if end <= start:
        raise InvalidRequest(f"--to ({end:%Y-%m-%d %H:%M}) must be after --from", field="to")
    periods, notes = _periods(inputs)
    latest = periods[-1]
    zone = _zone(latest.spec)
    groups = _groups(inputs.runs)
    by_slot: dict[str, list[_Group]] = defaultdict(list)
    for group in groups:
        if group.last.origin in SLOT_ORIGINS and group.last.slot:
            by_slot[group.last.slot].append(group)
    folded = [_FOLDED.search(g.last.reason or "") for g in groups]
    ranges = [(m.group(2), m.group(3), m.string[: m.start()].rstrip(": ")) for m in folded if m]
    used: set[int] = set()
    lines: list[Line] = []
    for period in periods:
        lo = max(start, period.start) if period.start else start
        hi = min(end, period.end) if period.end else end
        if period.since is not None and period.start and start < period.start <= end:
            lines.append(_change(period, _previous(periods, period)))
        job = job_of(period.spec)
        if lo >= hi or job is None:
            continue
        for fire, dst_skip in explain_slots.expected(job, lo, hi, period.backend):
            lines.append(_slot(period, fire, dst_skip, by_slot, used, ranges, now))
    lines += [Line(x.at, "dst", x.way, x.text) for x in explain_slots.transitions(zone, start, end)]
    for group in groups:
        run = group.last
        if id(group) in used or not start <= _parse(run.started_at) <= end:
            continue
        lines.append(_other_run(group))
    lines.sort(key=lambda line: (line.at, _ORDER.get(line.kind, 9)))
    if inputs.max_slots is not None:
        slots = [line for line in lines if line.kind == "slot"]
        if len(slots) > inputs.max_slots:
            cut = slots[-inputs.max_slots].at
            lines = [line for line in lines if line.at >= cut]
            notes.append(
                f"showing the last {inputs.max_slots} of {len(slots)} slots since "
                f"{start:%Y-%m-%d %H:%M} UTC; pass --from to see earlier ones"
            )
            start = cut
    latest_job = job_of(latest.spec)
    following = None
    if latest.exists and latest_job is not None:
        following = explain_slots.next_fire(latest_job, max(now, end), latest.backend)
    return Timeline(
        key=inputs.key,
        backend=latest.backend,
        remote_id=inputs.current.remote_id if inputs.current else "",
        schedule=latest_job.schedule if latest_job is not None else None,
        timezone=str(zone.key),
        spec=latest.spec,
        start=start,
        end=end,
        now=now,
        lines=tuple(lines),
        notes=tuple(notes),
        next_fire=following,
    )


_ORDER = {"change": 0, "dst": 1, "slot": 2, "run": 3}


def _periods(inputs: Inputs) -> tuple[list[_Period], list[str]]:
    """The applied spec over time, from history; the current spec when there is none."""
    rows = [r for r in inputs.history if r.op != "forget"]  # forget: a replaced object's row
    notes: list[str] = []
    current = inputs.current
    if not rows:
        if current is None:
            raise NotFoundError(f"no applied job `{inputs.key}` and no history of one")
        notes.append(
            "the ledger has no history for this key (applied before history was recorded): "
            "the current spec is assumed for the whole window"
        )
        return [_Period(None, None, current.spec, True, current.backend)], notes
    first = rows[0]
    periods: list[_Period] = []
    if first.op == "create":
        periods.append(_Period(None, _utc(first.at), first.spec, False, first.backend))
    else:
        notes.append(
            f"no history before {_utc(first.at):%Y-%m-%d %H:%M} UTC: the spec recorded then is "
            "assumed before it"
        )
        periods.append(_Period(None, _utc(first.at), first.spec, True, first.backend))
    for row, following in zip(rows, [*rows[1:], None], strict=True):
        end = _utc(following.at) if following is not None else None
        periods.append(
            _Period(_utc(row.at), end, row.spec, row.op != "delete", row.backend, since=row)
        )
    return periods, notes


def _previous(periods: list[_Period], period: _Period) -> _Period | None:
    index = periods.index(period)
    return periods[index - 1] if index > 0 else None


def _slot(
    period: _Period,
    fire: scheduling.FireTime,
    dst_skip: str | None,
    by_slot: Mapping[str, list[_Group]],
    used: set[int],
    ranges: Sequence[tuple[str, str, str]],
    now: datetime,
) -> Line:
    wall = explain_slots.wall(fire)
    base = Line(fire.utc, "slot", "", "", slot=wall, note=fire.note)
    candidates = [g for g in by_slot.get(wall, ()) if id(g) not in used]
    if dst_skip is not None:  # only a recorded skip (Inngest's duplicate fire) belongs here
        candidates = [g for g in candidates if g.last.status == "skipped"]
    group = candidates[0] if candidates else None
    if group is not None:
        used.add(id(group))
    if not period.exists:
        what = "before the job was created" if period.end else "after the job was deleted"
        return replace(base, status="not applied", text=what)
    if not specs.enabled(period.spec):
        rev = period.since.revision if period.since else ""
        text = "paused: enabled: false then" + (f" (revision {_short(rev)})" if rev else "")
        if group is not None:
            text += f"; recorded: {_describe_run(group.last)}"
        return replace(base, status="paused", text=text, **_run_fields(group, fire))
    if group is not None:
        return _from_run(base, group, fire)
    if dst_skip is not None:
        return replace(base, status="skipped", text=dst_skip)
    for first, last, why in ranges:
        if first <= wall <= last:
            text = f"{why} (one of the slots folded into one summary row)"
            return replace(base, status="skipped", text=text)
    if fire.utc > now:
        return replace(base, status="upcoming", text="not due yet")
    if now - fire.utc < DUE_GRACE:
        return replace(base, status="no run", text="due: nothing recorded yet (may be starting)")
    return replace(base, status="no run", text=_no_run_hint(period.backend))


def _from_run(base: Line, group: _Group, fire: scheduling.FireTime) -> Line:
    run = group.last
    fields = _run_fields(group, fire)
    if run.status == "skipped":
        return replace(base, status="skipped", text=run.reason or "skipped", **fields)
    late = fields["latency_s"]
    timing = ""
    if late is not None:
        timing = f", started {_duration(abs(late))} {'after' if late >= 0 else 'before'} the slot"
    how = " (catch-up after a restart)" if run.origin == "catchup" else ""
    tries = f", {group.attempts} attempts" if group.attempts > 1 else ""
    text = f"{run.status}: run {run.run_id} via {run.origin}{how}{timing}{tries}"
    if run.error:
        text += f"; error: {run.error}"
    return replace(base, status="ran", text=text, **fields)


def _run_fields(group: _Group | None, fire: scheduling.FireTime) -> dict[str, Any]:
    if group is None:
        return {}
    run = group.last
    first = min(group.rows, key=lambda r: r.id)
    latency = (_parse(first.started_at) - fire.utc).total_seconds()
    return {
        "run_id": run.run_id,
        "outcome": run.status,
        "origin": run.origin,
        "latency_s": None if run.status == "skipped" else latency,
        "attempts": group.attempts,
    }


def _other_run(group: _Group) -> Line:
    """A run no expected slot accounts for: run-now, a test, or a fire off the schedule."""
    run = group.last
    at = _parse(min(group.rows, key=lambda r: r.id).started_at)
    if run.origin in SLOT_ORIGINS:
        what = (
            f"{run.origin} run for slot {run.slot}, which is not an expected slot of the "
            "schedule applied then (fired by an earlier schedule or another backend?)"
        )
    else:
        what = f"{run.origin} run (not a scheduled slot)"
    text = f"{what}: {_describe_run(run)}"
    return Line(
        at,
        "run",
        run.origin,
        text,
        slot=run.slot,
        run_id=run.run_id,
        outcome=run.status,
        origin=run.origin,
        attempts=group.attempts,
    )


def _describe_run(run: Run) -> str:
    why = run.error or run.reason
    return f"{run.status} (run {run.id}{f': {why}' if why else ''})"


def _change(period: _Period, before: _Period | None) -> Line:
    row = period.since
    assert row is not None
    at = _utc(row.at)
    rev = f" at revision {_short(row.revision)}" if row.revision else ""
    if row.op == "delete":
        return Line(at, "change", "deleted", "removed from the agent files")
    new = period.spec
    what = f"{new.get('schedule')} ({specs.timezone(new)})"
    if row.op == "create" or before is None or not before.exists:
        state = "" if specs.enabled(new) else ", paused"
        return Line(at, "change", "created", f"{what}{state}{rev}")
    if row.op == "adopt":
        return Line(at, "change", "adopted", f"{row.remote_id}: {what}{rev}")
    old = before.spec
    parts = []
    old_job, new_job = job_of(old), job_of(new)
    if old_job is not None and new_job is not None:
        for name, label in _CHANGES:
            was_set, now_set = getattr(old_job, name), getattr(new_job, name)
            if was_set != now_set:
                parts.append(f"{label} changed {was_set} -> {now_set}")
    was, now = specs.enabled(old), specs.enabled(new)
    status = "updated"
    if was and not now:
        parts.insert(0, "paused (enabled: false)")
        status = "paused"
    elif now and not was:
        parts.insert(0, "resumed (enabled: true)")
        status = "resumed"
    if not parts:
        parts.append("action or other settings changed")
    return Line(at, "change", status, "; ".join(parts) + rev)


_CHANGES = (
    ("schedule", "schedule"),
    ("timezone", "timezone"),
    ("dst", "dst policy"),
    ("catchup", "catchup"),
    ("overlap", "overlap"),
)


def _no_run_hint(backend: str) -> str:
    if backend == "local":
        return (
            "nothing recorded: the embedded scheduler was not running then (it runs inside "
            "`planner-operator serve`/`run` on the local backend; check that process's log)"
        )
    if backend == "inngest":
        return (
            "nothing recorded: Inngest did not call the function for this slot (check the "
            "function's runs in Inngest and that /api/inngest was reachable and in sync)"
        )
    return f"nothing recorded: the {backend} backend did not fire this slot (check its logs)"


# -- small helpers ------------------------------------------------------------------------------


def _groups(runs: Sequence[Run]) -> list[_Group]:
    by_id: dict[str, _Group] = {}
    for run in sorted(runs, key=lambda r: r.id):
        by_id.setdefault(run.run_id, _Group()).rows.append(run)
    return list(by_id.values())


def _zone(spec: Mapping[str, Any]) -> ZoneInfo:
    return ZoneInfo(specs.timezone(spec))


def job_of(spec: Mapping[str, Any]) -> specs.JobSpec | None:
    """The job an applied spec describes; None for a spec without a schedule (nothing fires)."""
    return specs.JobSpec.from_dict(spec) if spec.get("schedule") else None


def _utc(value: datetime) -> datetime:
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(UTC)


def _parse(text: str) -> datetime:
    return _utc(datetime.fromisoformat(text.replace("Z", "+00:00")))


def _short(revision: str) -> str:
    return revision[:7] if re.fullmatch(r"[0-9a-f]{40}", revision) else revision


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes = int(seconds // 60)
    return f"{minutes // 60}h{minutes % 60:02d}m" if minutes >= 60 else f"{minutes}m"


# -- keys ---------------------------------------------------------------------------------------


def resolve_key(key: str) -> str:
    """``agent/job`` is short for ``agent/jobs/job``; full keys pass through."""
    parts = key.strip("/").split("/")
    if len(parts) == 2:
        return keys.job_key(parts[0], parts[1])
    if len(parts) == 3 and parts[1] in ("jobs", "triggers"):
        return "/".join(parts)
    raise InvalidRequest(f"`{key}` is not a job key: use AGENT/JOB or AGENT/jobs/JOB", field="key")
