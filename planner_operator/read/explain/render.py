"""Text and JSON for ``explain``: the timeline of a job, the path of a delivery.

Text is for a person at a terminal: times in the job's timezone with their offset (or UTC on
request), and long stretches of identical slots (a minutely job that simply ran) folded into one
line so the slots that need attention stand out. JSON has every line, unfolded, with both
the local and the UTC time, for scripts.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import asdict
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from planner_operator.core import jsonfmt, scheduling, specs
from planner_operator.read.explain.delivery import DeliveryReport, as_dict, describe_check
from planner_operator.read.explain.model import Line, Timeline
from planner_operator.runtime.events import Check

FOLD_AFTER = 5  # this many identical slots in a row are shown as first, "... n more", last


def timeline_text(t: Timeline, *, utc: bool = False) -> str:
    zone = ZoneInfo("UTC") if utc else ZoneInfo(t.timezone)

    def when(at: datetime) -> str:
        local = at.astimezone(zone)
        if utc:
            return f"{local:%Y-%m-%d %H:%M} UTC"
        offset = local.utcoffset()
        minutes = int(offset.total_seconds() // 60) if offset else 0
        sign = "+" if minutes >= 0 else "-"
        return f"{local:%Y-%m-%d %H:%M} {sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"

    spec = t.spec
    head = [f"{t.key} (job on {t.backend}{f', {t.remote_id}' if t.remote_id else ''})"]
    if t.schedule:
        words = scheduling.describe(t.schedule)
        job = specs.JobSpec.from_dict(spec)
        state = "active" if job.enabled else "paused"
        if not t.remote_id:
            state = "deleted"
        policies = f"dst {job.dst}, catchup {job.catchup}, overlap {job.overlap}"
        head.append(f"  schedule: {t.schedule} ({words}) in {t.timezone}; {policies}; {state}")
    shown_in = "UTC" if utc else t.timezone
    head.append(f"  window: {when(t.start)} .. {when(t.end)} (times in {shown_in})")
    head += [f"  note: {note}" for note in t.notes]
    body = [f"  {when(line.at)}  {_label(line):<12} {_text(line)}" for line in t.lines]
    body = list(_fold(t.lines, body))
    if not body:
        body = ["  (nothing in this window: no slots, runs or changes)"]
    tail = []
    if t.next_fire is not None:
        tail.append(f"  next fire: {when(t.next_fire)}")
    tail.append(_summary(t))
    return "\n".join([*head, "", *body, "", *tail])


def _label(line: Line) -> str:
    if line.kind == "dst":
        return "DST"
    if line.kind == "run":
        return "run"
    return line.status


def _text(line: Line) -> str:
    if line.note and line.status in ("ran", "upcoming", "no run", "paused"):
        return f"{line.text}  [{line.note}]"
    return line.text


def _fold(lines: Sequence[Line], rendered: Sequence[str]) -> Iterator[str]:
    """Runs of more than FOLD_AFTER alike slot lines become first, a count, last."""
    index = 0
    while index < len(lines):
        end = index
        while end + 1 < len(lines) and _alike(lines[index], lines[end + 1]):
            end += 1
        count = end - index + 1
        if count > FOLD_AFTER:
            line = lines[index]
            what = line.status + (f", {line.outcome}" if line.outcome else "")
            yield rendered[index]
            yield f"  {'':<22}  {'...':<12} {count - 2} more slots alike ({what})"
            yield rendered[end]
        else:
            yield from rendered[index : end + 1]
        index = end + 1


def _alike(a: Line, b: Line) -> bool:
    if a.kind != "slot" or b.kind != "slot" or a.note or b.note:
        return False
    same = (a.status, a.outcome, a.origin) == (b.status, b.outcome, b.origin)
    return same and (a.status != "skipped" or a.text == b.text)


def _summary(t: Timeline) -> str:
    counts = t.counts()
    slots = sum(counts.get(s, 0) for s in _STATUSES)
    if not slots and not counts.get("other runs"):
        return "No slots in this window."
    parts = []
    for status in _STATUSES:
        if counts.get(status):
            extra = ""
            if status == "ran":
                outcomes = [
                    f"{counts[f'ran {o}']} {o}"
                    for o in ("succeeded", "failed", "cancelled", "waiting", "running")
                    if counts.get(f"ran {o}")
                ]
                extra = f" ({', '.join(outcomes)})" if outcomes else ""
            parts.append(f"{counts[status]} {status}{extra}")
    text = f"{slots} slot(s): {', '.join(parts) or 'none'}"
    if counts.get("other runs"):
        text += f"; {counts['other runs']} other run(s)"
    return text + "."


_STATUSES = ("ran", "skipped", "paused", "not applied", "no run", "upcoming")


def timeline_json(t: Timeline) -> str:
    zone = ZoneInfo(t.timezone)
    lines = []
    for line in t.lines:
        item = asdict(line)
        item["at"] = line.at.astimezone(zone).isoformat()
        item["utc"] = line.at.isoformat()
        lines.append(item)
    data: dict[str, Any] = {
        "key": t.key,
        "backend": t.backend,
        "remote_id": t.remote_id,
        "schedule": t.schedule,
        "timezone": t.timezone,
        "from": t.start.isoformat(),
        "to": t.end.isoformat(),
        "now": t.now.isoformat(),
        "next_fire": t.next_fire.isoformat() if t.next_fire else None,
        "notes": list(t.notes),
        "counts": {jsonfmt.key(k): v for k, v in t.counts().items()},
        "lines": lines,
    }
    return jsonfmt.document("explain_job", data)


# -- deliveries ---------------------------------------------------------------------------------


def delivery_text(r: DeliveryReport) -> str:
    head = f"delivery {r.delivery_id}" + (f" -> {r.key}" if r.key else "")
    out = [head]
    for step in r.steps:
        mark = "ok " if step.ok else "NO "
        first, *rest = step.text.splitlines() or [""]
        out.append(f"  {mark} {step.name:<9} {first}")
        out += [f"  {'':<13} {more}" for more in rest]
        out += _checks(step.checks, depth=1)
    if not r.runs:
        out.append("  runs: none recorded for this delivery")
    for run in r.runs:
        why = run.error or run.reason
        tail = f": {why}" if why else ""
        out.append(
            f"  run {run.id} attempt {run.attempt} ({run.origin}) {run.status} at "
            f"{run.started_at}{tail}"
        )
    return "\n".join(out)


def _checks(checks: Sequence[Check], depth: int) -> list[str]:
    out = []
    for check in checks:
        out.append(" " * 16 + "  " * (depth - 1) + f"- {describe_check(check)}")
        out += _checks(check.children, depth + 1)
    return out


def delivery_json(r: DeliveryReport) -> str:
    return jsonfmt.document("explain_delivery", as_dict(r))
