"""How times, durations and payloads read on a page: Jinja filters for the dashboard.

A person reading "09:00" must know which 09:00, so every time carries its zone: schedule times
in the job's own timezone (abbreviation and UTC offset, because "CET" alone is ambiguous to
many readers), recorded events in UTC. A relative hint ("in 3 h", "5 min ago") answers the
question people actually have at a glance. Bad input never breaks a page: a value that does not
parse is shown as it came.
"""

from __future__ import annotations

import contextlib
import json
import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from markupsafe import Markup

from planner_operator.read.catalog import Index
from planner_operator.read.nextfires import NextFires


def parse(value: str | None) -> datetime | None:
    """An ISO 8601 time as an aware datetime (naive input is taken as UTC), or None."""
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _offset(moment: datetime) -> str:
    delta = moment.utcoffset()
    minutes = int(delta.total_seconds() // 60) if delta is not None else 0
    sign = "+" if minutes >= 0 else "\u2212"  # a minus sign: lines never break after it
    hours, rest = divmod(abs(minutes), 60)
    return f"UTC{sign}{hours:02d}:{rest:02d}"


def zoned(value: str | None, tz: str | None = None) -> str:
    """'Mon 2 Feb 2026, 09:00 CET (UTC+01:00)', in ``tz`` when given (else the value's own)."""
    moment = parse(value)
    if moment is None:
        return value or "—"
    if tz:
        with contextlib.suppress(ZoneInfoNotFoundError, ValueError):
            moment = moment.astimezone(ZoneInfo(tz))
    name = moment.tzname() or ""
    offset = _offset(moment)
    if name == "UTC" or not name or name.startswith(("+", "-", "UTC")):
        zone = "UTC" if name == "UTC" else offset  # "-03" or "UTC-03:00" says no more
    else:
        zone = f"{name} ({offset})"
    return f"{moment:%a} {moment.day} {moment:%b %Y, %H:%M} {zone}"


def wall(value: str | None) -> str:
    """A slot: naive wall-clock time in the job's timezone, so it is labelled as local time."""
    if not value:
        return "—"
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return value
    if moment.tzinfo is not None:
        return zoned(value)
    return f"{moment:%a} {moment.day} {moment:%b %Y, %H:%M} (job's local time)"


def utc(value: str | None) -> str:
    """'2026-02-02 08:00:12 UTC': when the operator recorded something."""
    moment = parse(value)
    if moment is None:
        return value or "—"
    return f"{moment.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC"


def relative(value: str | None, now: datetime) -> str:
    """'in 3 h', '5 min ago', 'just now': the distance from ``now`` (the page's), roughly."""
    moment = parse(value)
    if moment is None:
        return ""
    seconds = (moment - now).total_seconds()
    span = abs(seconds)
    if span < 45:
        return "just now" if seconds <= 0 else "in a few seconds"
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if span >= size or unit == "min":
            amount = round(span / size)
            break
    text = f"{amount} {unit}"
    return f"in {text}" if seconds > 0 else f"{text} ago"


def duration(ms: float | None) -> str:
    """'850 ms', '12.3 s', '4 min 05 s'."""
    if ms is None:
        return "—"
    if ms < 1000:
        return f"{ms:.0f} ms"
    seconds = ms / 1000
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(int(seconds), 60)
    return f"{minutes} min {rest:02d} s"


def pretty(value: Any) -> str:
    """JSON for a <pre>: indented, keys sorted; a string that is JSON is re-indented."""
    if isinstance(value, str):
        text = value
        try:
            value = json.loads(text)
        except ValueError:
            return text
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False, default=str)


def shorten(value: str | None, limit: int = 160) -> str:
    """One line of at most ``limit`` characters, ending in '…' when cut."""
    if not value:
        return ""
    text = " ".join(value.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


# -- what the top of the Planner page says ------------------------------------------------------


def broken_files(load_errors: Iterable[str]) -> dict[str, list[str]]:
    """Load errors (``file:line:col: message``) by file: those files' resources are frozen."""
    out: dict[str, list[str]] = {}
    for error in load_errors:
        file = error.split(":", 1)[0]
        out.setdefault(file, []).append(error)
    return out


def code_spans(text: str) -> Markup:
    """Our messages quote names in `backticks`: shown as code, the rest escaped."""
    parts = str(text).split("`")
    if len(parts) % 2 == 0:  # an odd backtick: show the text as it is
        return Markup.escape(text)
    return Markup("").join(
        Markup("<code>{}</code>").format(part) if index % 2 else Markup.escape(part)
        for index, part in enumerate(parts)
    )


def slug(text: str | None) -> Markup:
    """An event slug that may wrap after its underscores, never inside a word."""
    return Markup("_<wbr>").join(Markup.escape(part) for part in str(text or "").split("_"))


NEXT_FIRES = 10  # the summary's "next fires across all agents"
ATTENTION = 20  # failing and frozen resources named on the Planner page (the rest: counted)
_ATTENTION_RANK = {"error": 0, "drifted": 1, "frozen": 2}


@dataclass(frozen=True)
class Upcoming:
    at: str  # ISO, in the job's timezone
    utc: str
    timezone: str
    key: str
    agent: str
    name: str


def overview(index: Index, fires: NextFires, last: Any, *, now: datetime) -> dict[str, Any]:
    """What the top of the Planner page says, from the catalog alone (no resource is read):
    counts by state, the next fires across all agents, and what needs attention: the failing
    and frozen resources (the first :data:`ATTENTION` of them, errors first) and the last
    reconcile's problems."""
    upcoming = []
    # the index keeps the jobs by next fire (those that never fire last): the first few
    for row in index.ordered("job", "next_fire")[:NEXT_FIRES]:
        if row.job is None or row.next_utc == math.inf:
            break
        first = fires.first(*row.job, now=now)
        if first is not None:
            at = first.at.isoformat(timespec="seconds")
            utc_at = first.utc.isoformat(timespec="seconds")
            upcoming.append(Upcoming(at, utc_at, row.job[1], row.key, row.agent, row.name))
    attention = [r for r in index.rows if r.state in _ATTENTION_RANK]
    attention.sort(key=lambda r: (_ATTENTION_RANK[r.state], r.key))
    return {
        "states": dict(sorted(index.counts().items())),
        "total": len(index.rows),
        "next": upcoming[0] if upcoming else None,
        "upcoming": upcoming,
        "attention": attention[:ATTENTION],
        "attention_total": len(attention),
        "failures": len(last.failures) + len(last.load_errors) if last is not None else 0,
    }


FILTERS = {
    "zoned": zoned,
    "utc": utc,
    "wall": wall,
    "relative": relative,
    "duration": duration,
    "pretty": pretty,
    "shorten": shorten,
    "code_spans": code_spans,
    "slug": slug,
}
