"""The cron dialect the real Inngest server speaks: a port of robfig/cron v3 (v3.0.1).

Inngest validates every cron trigger at sync with ``cron.NewParser(Minute | Hour | Dom | Month |
Dow).Parse`` (GO ``pkg/inngest/trigger.go`` ``CronTrigger.Validate``: no descriptors such as
``@hourly``) and schedules with the same parser plus ``Descriptor`` (``pkg/execution/cron``).
The fake used croniter, which accepts more (day-of-week 7, ``L``, seconds), so it could not
catch a sync the real server refuses. This module follows ``vendor/github.com/robfig/cron/v3``
``parser.go`` (``Parse``, ``getRange``, ``parseIntOrName``) and ``spec.go`` (bounds, ``Next``,
``dayMatches``) line by line, including Go's ``time.Date`` rule for wall times that do not
exist or exist twice (``time.go``: the offset in effect at the local time read as UTC, checked
once). It is the independent stand-in: product code never imports it.
"""

from __future__ import annotations

import zoneinfo
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo

MINUTE, HOUR, DOM, MONTH, DOW, DESCRIPTOR = 1, 2, 4, 8, 16, 32
STANDARD = MINUTE | HOUR | DOM | MONTH | DOW  # what CronTrigger.Validate accepts
SCHEDULER = STANDARD | DESCRIPTOR  # what pkg/execution/cron schedules with
STAR_BIT = 1 << 63

_MONTHS = {
    m: i + 1
    for i, m in enumerate(
        ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
    )
}
_DAYS = {d: i for i, d in enumerate(["sun", "mon", "tue", "wed", "thu", "fri", "sat"])}


class CronParseError(ValueError):
    """What ``Parse`` returns as an error (messages as robfig words them)."""


@dataclass(frozen=True)
class _Bounds:
    low: int
    high: int
    names: dict[str, int] | None = None


SECONDS = _Bounds(0, 59)
MINUTES = _Bounds(0, 59)
HOURS = _Bounds(0, 23)
DOMS = _Bounds(1, 31)
MONTHS = _Bounds(1, 12, _MONTHS)
DOWS = _Bounds(0, 6, _DAYS)


@dataclass(frozen=True)
class Schedule:
    """``SpecSchedule``: one bit set per field (bit 63 = the field was ``*`` or ``?``)."""

    second: int
    minute: int
    hour: int
    dom: int
    month: int
    dow: int
    location: tzinfo

    def next(self, t: datetime) -> datetime | None:
        """``SpecSchedule.Next``: the first activation strictly after ``t`` (aware), in UTC."""
        loc = self.location
        t = _go_add(t.astimezone(loc), timedelta(seconds=1)).replace(microsecond=0)
        added = False
        year_limit = t.year + 5
        while True:  # WRAP:
            if t.year > year_limit:
                return None
            wrapped = False
            while not (1 << t.month) & self.month:
                if not added:
                    added = True
                    t = go_date(t.year, t.month, 1, 0, 0, 0, loc)
                t = go_date(t.year, t.month + 1, t.day, t.hour, t.minute, t.second, loc)
                if t.month == 1:
                    wrapped = True
                    break
            if wrapped:
                continue
            while not _day_matches(self, t):
                if not added:
                    added = True
                    t = go_date(t.year, t.month, t.day, 0, 0, 0, loc)
                t = go_date(t.year, t.month, t.day + 1, t.hour, t.minute, t.second, loc)
                if t.hour != 0:  # midnight did not exist (DST): robfig's own correction
                    hours = 24 - t.hour if t.hour > 12 else -t.hour
                    t = _go_add(t, timedelta(hours=hours))
                if t.day == 1:
                    wrapped = True
                    break
            if wrapped:
                continue
            while not (1 << t.hour) & self.hour:
                if not added:
                    added = True
                    t = go_date(t.year, t.month, t.day, t.hour, 0, 0, loc)
                t = _go_add(t, timedelta(hours=1))
                if t.hour == 0:
                    wrapped = True
                    break
            if wrapped:
                continue
            while not (1 << t.minute) & self.minute:
                if not added:
                    added = True
                    t = t.replace(second=0)
                t = _go_add(t, timedelta(minutes=1))
                if t.minute == 0:
                    wrapped = True
                    break
            if wrapped:
                continue
            while not (1 << t.second) & self.second:
                if not added:
                    added = True
                t = _go_add(t, timedelta(seconds=1))
                if t.second == 0:
                    wrapped = True
                    break
            if wrapped:
                continue
            return t.astimezone(UTC)

    def following(self, after: datetime, count: int) -> list[datetime]:
        """The next ``count`` activations after ``after``, each ``Next`` of the previous one,
        as ``pkg/execution/cron`` schedules a function (fewer if the schedule ends)."""
        out: list[datetime] = []
        moment: datetime | None = after
        while moment is not None and len(out) < count:
            moment = self.next(moment)
            if moment is not None:
                out.append(moment)
        return out

    def fires_at(self, instant: datetime) -> bool:
        """Whether the scheduler activates at exactly ``instant``."""
        return self.next(instant - timedelta(seconds=1)) == instant.astimezone(UTC)


def _day_matches(s: Schedule, t: datetime) -> bool:
    dom_match = bool((1 << t.day) & s.dom)
    dow_match = bool((1 << ((t.weekday() + 1) % 7)) & s.dow)  # Go: Sunday = 0
    if s.dom & STAR_BIT or s.dow & STAR_BIT:
        return dom_match and dow_match
    return dom_match or dow_match


def _go_add(t: datetime, delta: timedelta) -> datetime:
    """``t.Add(d)``: elapsed time, not wall time."""
    return (t.astimezone(UTC) + delta).astimezone(t.tzinfo)


def go_date(
    year: int, month: int, day: int, hour: int, minute: int, second: int, loc: tzinfo
) -> datetime:
    """Go's ``time.Date``: fields normalised (month 13 is January next year, day 32 the 1st of
    the next month...), then the zone offset in effect at the wall time read as UTC, unless the
    result falls outside that offset's period, in which case the offset at the result."""
    year += (month - 1) // 12
    month = (month - 1) % 12 + 1
    base = datetime(year, month, 1, tzinfo=UTC)
    wall = base + timedelta(days=day - 1, hours=hour, minutes=minute, seconds=second)
    offset = _offset_at(loc, wall)
    utc = wall - offset
    if _offset_at(loc, utc) != offset:
        utc = wall - _offset_at(loc, utc)
    return utc.astimezone(loc)


def _offset_at(loc: tzinfo, instant: datetime) -> timedelta:
    offset = instant.astimezone(loc).utcoffset()
    assert offset is not None
    return offset


def parse(spec: str, options: int = STANDARD) -> Schedule:
    """``Parser.Parse`` with the given options (default: the one sync validation uses)."""
    if not spec:
        raise CronParseError("empty spec string")
    loc: tzinfo = UTC  # time.Local of the server; Inngest runs in UTC
    if spec.startswith(("TZ=", "CRON_TZ=")):
        space, eq = spec.find(" "), spec.find("=")
        if space < 0:  # Go would slice with -1 and panic: the request fails either way
            raise CronParseError(f"provided bad location {spec[eq + 1 :]}: no schedule")
        name = spec[eq + 1 : space]
        try:
            loc = UTC if name in ("", "UTC") else ZoneInfo(name)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
            raise CronParseError(f"provided bad location {name}: {exc}") from None
        spec = spec[space:].strip()
    if spec.startswith("@"):
        if not options & DESCRIPTOR:
            raise CronParseError(f"parser does not accept descriptors: {spec}")
        return _descriptor(spec, loc)
    fields = spec.split()
    places = [MINUTE, HOUR, DOM, MONTH, DOW]
    wanted = sum(1 for p in places if options & p)
    if len(fields) != wanted:
        raise CronParseError(f"expected exactly {wanted} fields, found {len(fields)}: {fields}")
    minute, hour, dom, month, dow = (
        _field(text, bounds)
        for text, bounds in zip(fields, (MINUTES, HOURS, DOMS, MONTHS, DOWS), strict=True)
    )
    return Schedule(1 << 0, minute, hour, dom, month, dow, loc)


def _field(text: str, bounds: _Bounds) -> int:
    bits = 0
    for expr in (part for part in text.split(",") if part):  # strings.FieldsFunc drops empties
        bits |= _range(expr, bounds)
    return bits


def _range(expr: str, r: _Bounds) -> int:
    range_and_step = expr.split("/")
    low_and_high = range_and_step[0].split("-")
    single = len(low_and_high) == 1
    extra = 0
    if low_and_high[0] in ("*", "?"):
        start, end, extra = r.low, r.high, STAR_BIT
    else:
        start = _int_or_name(low_and_high[0], r.names)
        if len(low_and_high) == 1:
            end = start
        elif len(low_and_high) == 2:
            end = _int_or_name(low_and_high[1], r.names)
        else:
            raise CronParseError(f"too many hyphens: {expr}")
    if len(range_and_step) == 1:
        step = 1
    elif len(range_and_step) == 2:
        step = _int(range_and_step[1])
        if single:  # "N/step" means "N-max/step"
            end = r.high
        if step > 1:
            extra = 0
    else:
        raise CronParseError(f"too many slashes: {expr}")
    if start < r.low:
        raise CronParseError(f"beginning of range ({start}) below minimum ({r.low}): {expr}")
    if end > r.high:
        raise CronParseError(f"end of range ({end}) above maximum ({r.high}): {expr}")
    if start > end:
        raise CronParseError(f"beginning of range ({start}) beyond end of range ({end}): {expr}")
    if step == 0:
        raise CronParseError(f"step of range should be a positive number: {expr}")
    return _bits(start, end, step) | extra


def _int_or_name(expr: str, names: dict[str, int] | None) -> int:
    if names is not None and expr.lower() in names:
        return names[expr.lower()]
    return _int(expr)


def _int(expr: str) -> int:
    """``strconv.Atoi`` (an optional sign, ASCII digits), then no negatives."""
    body = expr[1:] if expr[:1] in "+-" else expr
    if not body or not all("0" <= c <= "9" for c in body):
        raise CronParseError(f'failed to parse int from {expr}: strconv.Atoi: parsing "{expr}"')
    number = int(expr)
    if number < 0:
        raise CronParseError(f"negative number ({number}) not allowed: {expr}")
    return number


def _bits(low: int, high: int, step: int) -> int:
    if step == 1:
        return ((1 << (high + 1)) - 1) & ~((1 << low) - 1)
    bits = 0
    for i in range(low, high + 1, step):
        bits |= 1 << i
    return bits


def _all(r: _Bounds) -> int:
    return _bits(r.low, r.high, 1) | STAR_BIT


def _descriptor(descriptor: str, loc: tzinfo) -> Schedule:
    sec, mi, hr, dm, mo, dw = (1 << b.low for b in (SECONDS, MINUTES, HOURS, DOMS, MONTHS, DOWS))
    if descriptor in ("@yearly", "@annually"):
        fields = (mi, hr, dm, mo, _all(DOWS))
    elif descriptor == "@monthly":
        fields = (mi, hr, dm, _all(MONTHS), _all(DOWS))
    elif descriptor == "@weekly":
        fields = (mi, hr, _all(DOMS), _all(MONTHS), dw)
    elif descriptor in ("@daily", "@midnight"):
        fields = (mi, hr, _all(DOMS), _all(MONTHS), _all(DOWS))
    elif descriptor == "@hourly":
        fields = (mi, _all(HOURS), _all(DOMS), _all(MONTHS), _all(DOWS))
    else:  # "@every <duration>" is a ConstantDelaySchedule: not a calendar the fake fires
        raise CronParseError(f"unrecognized descriptor: {descriptor}")
    return Schedule(sec, *fields, location=loc)
