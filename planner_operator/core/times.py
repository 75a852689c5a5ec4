"""The one stored time format, and the one way a time is shown to a person.

Every store writes a moment as UTC ISO 8601 with milliseconds and ``Z``
(``2026-12-07T09:00:00.000Z``). The width is fixed, so text order is time order and a store can
compare and sort times in SQL on SQLite and PostgreSQL alike; milliseconds are as fine as any
lease, retry or run needs, and ``Z`` (not ``+00:00``) says UTC in one character that no reader
mistakes for a local offset. Old rows in other formats (microseconds, seconds, ``+00:00``, REAL
epoch seconds) are rewritten by each store's migration; :func:`parse` still reads all of them.

:func:`display` is for humans (CLI output, messages): seconds, a space, and the zone's name.
"""

from __future__ import annotations

from datetime import UTC, datetime, tzinfo

from planner_operator.core import clock as clock_mod

# SQLite's strftime for the stored format (migrations rewrite old rows with it).
SQLITE_FORMAT = "%Y-%m-%dT%H:%M:%fZ"


def utc(value: datetime) -> datetime:
    """``value`` in UTC; a naive datetime is taken to be UTC already (the operator's own)."""
    if value.tzinfo is None or value.utcoffset() is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def stored(value: datetime) -> str:
    """``value`` as the stored text (milliseconds truncated, never rounded into the future)."""
    moment = utc(value)
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{moment.microsecond // 1000:03d}Z"


def now(clock: clock_mod.Clock) -> str:
    """``clock``'s now, as stored text."""
    return stored(clock.now())


def from_epoch(seconds: float) -> str:
    """Unix seconds as stored text (leases and retries are computed in seconds)."""
    return stored(datetime.fromtimestamp(seconds, UTC))


def parse(text: str) -> datetime:
    """Stored text (or any older ISO form a store kept) as an aware UTC datetime."""
    return utc(datetime.fromisoformat(text.strip()))


def epoch(text: str) -> float:
    """Stored text as Unix seconds."""
    return parse(text).timestamp()


def display(value: datetime | str | None, *, zone: tzinfo | None = None) -> str:
    """A moment for a person: ``2026-12-07 09:00:00 UTC`` (or in ``zone``); ``-`` for none."""
    if value is None or value == "":
        return "-"
    moment = parse(value) if isinstance(value, str) else utc(value)
    if zone is not None:
        moment = moment.astimezone(zone)
    name = moment.tzname() or "UTC"
    return f"{moment:%Y-%m-%d %H:%M:%S} {name}"
