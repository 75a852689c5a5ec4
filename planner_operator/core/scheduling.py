"""Cron, timezone and DST semantics shared by every backend.

Backends disagree about what a schedule means on the two nights a year the wall clock jumps, so
the operator decides once, here, and previews, diffs and the embedded scheduler all agree.
Slots are matched on naive *local wall-clock* time (what a human reads on the crontab) and only
then resolved to instants in the zone; that is where the DST policy applies:

* ``vixie`` (default, what Vixie/ISC cron does): a fixed-time job whose slot falls in the spring
  gap fires once, at the transition; in the repeated autumn hour it fires once, at the first
  occurrence. Wildcard jobs (minute or hour field starting with ``*``) follow elapsed time: no
  fire for wall times that never happen, a fire for both occurrences of a repeated one.
* ``skip``: gap slots never fire; repeated slots fire at the first occurrence only.
* ``literal``: a slot fires whenever the wall clock shows it: never in a gap, twice in a repeat.

A backend may not be able to follow a policy: Inngest schedules with robfig/cron, which never
fires a wall time that does not exist, so there a fixed-time ``vixie`` job acts as ``skip``
(``effective_dst``). Predictions take the backend (``next_fires(..., backend=)``), so previews,
``status``, the API and ``explain`` show what will happen rather than what was asked for.

Slots come from croniter on naive datetimes. Expressions are first checked against standard
5-field cron here (croniter also accepts seconds, years, ``L``/``W``/``#`` and more, which other
backends would reject), then handed to croniter in a canonical form: explicit value lists, with
``*`` kept where the user wrote it (it decides how day-of-month and day-of-week combine). The
canonical form also sidesteps croniter 7 reading a one-value range such as ``5-5`` as ``*``.
"""

from __future__ import annotations

import calendar
import difflib
import heapq
import itertools
import re
import zoneinfo
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from types import MappingProxyType
from typing import get_args
from zoneinfo import ZoneInfo

from croniter import CroniterBadDateError, croniter

from planner_operator.core import specs
from planner_operator.errors import ScheduleError

DstPolicy = specs.DstPolicy

MACROS: Mapping[str, str] = MappingProxyType(
    {
        "@yearly": "0 0 1 1 *",
        "@annually": "0 0 1 1 *",
        "@monthly": "0 0 1 * *",
        "@weekly": "0 0 * * 0",
        "@daily": "0 0 * * *",
        "@midnight": "0 0 * * *",
        "@hourly": "0 * * * *",
    }
)

# Schedules people write in words, and the cron they mean ("every " is dropped first).
_IN_WORDS: Mapping[str, str] = MappingProxyType(
    {
        "day": "@daily",
        "daily": "@daily",
        "night": "@midnight",
        "midnight": "@midnight",
        "hour": "@hourly",
        "hourly": "@hourly",
        "week": "@weekly",
        "weekly": "@weekly",
        "month": "@monthly",
        "monthly": "@monthly",
        "year": "@yearly",
        "yearly": "@yearly",
        "minute": "* * * * *",
        "weekday": "0 9 * * 1-5",
        "weekdays": "0 9 * * 1-5",
    }
)

_POLICIES: tuple[str, ...] = get_args(DstPolicy)
_FIELDS = (("minute", 0, 59), ("hour", 0, 23), ("day-of-month", 1, 31), ("month", 1, 12))
_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
_MONTH_DAYS = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)  # Feb 29 exists, in leap years
_ITEM = re.compile(r"(?P<lo>[a-z0-9]+)(?:-(?P<hi>[a-z0-9]+))?(?:/(?P<step>[a-z0-9]+))?")
_EXTENSION = re.compile(r"l|lw|\d+[lw]|w\d*|l\d*|h(\(.*\))?|r")
_DAY = timedelta(days=1)


@dataclass(frozen=True)
class FireTime:
    """One fire; ``slot`` and ``fold`` say which cron slot it stands for.

    Compare instants through ``utc``: Python never treats an ``at`` inside a repeated hour as
    equal to a datetime in another zone (PEP 495).
    """

    at: datetime
    slot: datetime
    fold: int
    note: str | None

    @property
    def utc(self) -> datetime:
        return self.at.astimezone(UTC)


@dataclass(frozen=True)
class _Spec:
    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    doms: frozenset[int]
    months: frozenset[int]
    dows: frozenset[int]  # 0 = Sunday
    day_and: bool  # a day field is '*': the other one decides alone (else cron ORs them)
    fixed: bool
    cron: str  # canonical expression handed to croniter


def normalize_schedule(expr: str) -> str:
    """Canonical text, so the same schedule written two ways never shows up as a diff."""
    if not isinstance(expr, str):
        raise ScheduleError(f"schedule must be a string, not {type(expr).__name__}")
    text = " ".join(expr.split())
    if not text:
        raise ScheduleError("schedule is empty")
    if not text.startswith("@"):
        words = _IN_WORDS.get(text.lower().removeprefix("every ").strip())
        if words is not None:
            raise ScheduleError(f"schedule {text!r} is not cron; did you mean {words!r}?")
        return text
    key = text.lower()
    if key == "@reboot":
        raise ScheduleError("'@reboot' is not supported: remote schedulers never boot; use a time")
    if key not in MACROS:
        near = difflib.get_close_matches(key, list(MACROS), n=1)
        hint = f"did you mean {near[0]!r}?" if near else f"use one of {', '.join(MACROS)}"
        raise ScheduleError(f"unknown schedule macro {text!r}; {hint}")
    return MACROS[key]


def validate_schedule(expr: str) -> str:
    """Reject anything not every backend understands, and schedules that can never fire."""
    text = normalize_schedule(expr)
    _compile(text)
    return text


def is_fixed_time(expr: str) -> bool:
    """Vixie's rule for who gets DST catch-up: jobs naming a specific hour and minute."""
    minute, hour = [*normalize_schedule(expr).split(), "", ""][:2]
    return not (minute.startswith("*") or hour.startswith("*"))


def days_of_week(expr: str) -> frozenset[int]:
    """The weekdays a schedule's fifth field names, 0 = Sunday (7 and wrapping ranges folded)."""
    return _compile(normalize_schedule(expr)).dows


def validate_timezone(name: str) -> ZoneInfo:
    """A zone by IANA name, or an error naming the zone the user most likely meant."""
    if not isinstance(name, str):
        raise ScheduleError(f"timezone must be a string, not {type(name).__name__}")
    return _zone(name)


INNGEST = "inngest"  # the backend name (backends.inngest.backend.NAME) whose cron is robfig's


def effective_dst(dst: DstPolicy, expr: str, backend: str | None) -> DstPolicy:
    """The policy a job follows in fact on ``backend`` (None or "": as declared).

    Inngest's scheduler is robfig/cron: its ``Next`` steps the hour from 01 straight to 03 on a
    spring-forward day, so a fixed time in the gap never fires (``30 2 * * *`` in New York goes
    from 03-07 to 03-09), and a repeated time fires twice, of which the job runner records the
    second as skipped under ``vixie`` and ``skip``. A fixed-time ``vixie`` job therefore runs
    exactly as ``skip`` does there; wildcard schedules and the other policies run as declared.
    Making Inngest fire the catch-up would need a one-off cron per job and DST day, re-synced
    every year; predicting what it does is honest and cheap.
    """
    if backend == INNGEST and dst == "vixie" and is_fixed_time(expr):
        return "skip"
    return dst


def next_fires(
    expr: str,
    tz: str | ZoneInfo,
    *,
    start: datetime,
    count: int = 5,
    dst: DstPolicy = specs.DEFAULT_DST,
    backend: str | None = None,
) -> list[FireTime]:
    """The first ``count`` fires strictly after ``start``: what previews and ``plan`` show,
    on ``backend`` when it is known (``effective_dst``)."""
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise ScheduleError(f"count must be a positive integer, got {count!r}")
    fires = iter_fires(expr, tz, start=start, dst=dst, backend=backend)
    return list(itertools.islice(fires, count))


def iter_fires(
    expr: str,
    tz: str | ZoneInfo,
    *,
    start: datetime,
    dst: DstPolicy = specs.DEFAULT_DST,
    backend: str | None = None,
) -> Iterator[FireTime]:
    """Fires strictly after ``start``, lazily and in real-time order, forever.

    Arguments are checked now, not at the first ``next()``, so a bad job fails where it is
    registered rather than inside the scheduler loop.
    """
    if dst in _POLICIES:
        dst = effective_dst(dst, expr, backend)
    spec = _compile(normalize_schedule(expr))
    zone = tz if isinstance(tz, ZoneInfo) else validate_timezone(tz)
    if dst not in _POLICIES:
        raise ScheduleError(f"unknown DST policy {dst!r}; use one of {', '.join(_POLICIES)}")
    if not isinstance(start, datetime) or start.utcoffset() is None:
        raise ScheduleError(f"start must be a timezone-aware datetime, got {start!r}")
    start_utc = start.astimezone(UTC).replace(tzinfo=None)
    return _fires(spec, zone, start_utc, dst)


def describe(expr: str) -> str:
    """The schedule in words, for plans and ``explain``; falls back to the raw text."""
    return _describe(validate_schedule(expr))


# --- parsing ---------------------------------------------------------------------------------


@lru_cache(maxsize=4096)
def _compile(text: str) -> _Spec:
    fields = text.split()
    if len(fields) != 5:
        extra = " (seconds and year fields are not supported)" if len(fields) in (6, 7) else ""
        raise ScheduleError(
            f"schedule {text!r} has {len(fields)} field{'s' * (len(fields) != 1)}, expected 5: "
            f"minute hour day-of-month month day-of-week{extra}"
        )
    try:
        minute, hour, dom, month = (
            _field(f.lower(), *spec) for f, spec in zip(fields, _FIELDS, strict=False)
        )
        dow = frozenset(d % 7 for d in _field(fields[4].lower(), "day-of-week", 0, 7))
    except ScheduleError as exc:
        raise ScheduleError(f"schedule {text!r}: {exc}") from None
    spec = _Spec(
        minutes=tuple(sorted(minute)),
        hours=tuple(sorted(hour)),
        doms=frozenset(dom),
        months=frozenset(month),
        dows=dow,
        day_and=fields[2] == "*" or fields[4] == "*",
        fixed=is_fixed_time(text),
        cron=" ".join(
            "*" if field == "*" else ",".join(str(v) for v in sorted(values))
            for field, values in zip(fields, (minute, hour, dom, month, dow), strict=True)
        ),
    )
    if fields[4] == "*" and not any(d <= _MONTH_DAYS[m - 1] for m in month for d in dom):
        days = ", ".join(str(d) for d in sorted(dom))
        months = ", ".join(calendar.month_name[m] for m in sorted(month))
        raise ScheduleError(f"schedule {text!r} never fires: day {days} never occurs in {months}")
    return spec


def _field(text: str, name: str, low: int, high: int) -> set[int]:
    """One field's values; errors name the field so a 5-field line is easy to fix."""
    if "#" in text or "?" in text:
        char = "#" if "#" in text else "?"
        raise ScheduleError(f"{name} field {text!r}: {char!r} is a non-standard cron extension")
    values: set[int] = set()
    for item in text.split(","):
        match = _ITEM.fullmatch(item)
        if item == "*" or item.startswith("*/"):
            lo, hi, step_text = low, high, item[2:] if item.startswith("*/") else "1"
        elif match:
            step_text = match["step"] or "1"
            lo = _value(match["lo"], name, low, high)
            hi = _value(match["hi"], name, low, high) if match["hi"] else lo
            if match["step"] and not match["hi"]:
                hi = high  # "5/15" means 5-max/15, as most crons read it
            if name == "day-of-week" and hi == 0 < lo:
                hi = 7  # "fri-sun" ends on the Sunday that cron also spells 7
            if hi < lo:
                raise ScheduleError(
                    f"{name} field: range {item!r} runs backwards; split it into two ranges"
                )
        else:
            raise ScheduleError(f"{name} field: {item!r} is not a number, range, step or list")
        if not step_text.isdigit() or int(step_text) < 1:
            raise ScheduleError(f"{name} field: step in {item!r} must be a positive number")
        values.update(range(lo, hi + 1, int(step_text)))
    return values


def _value(token: str, name: str, low: int, high: int) -> int:
    if token.isdigit():
        if not low <= int(token) <= high:
            raise ScheduleError(f"{name} field: {int(token)} is out of range {low}-{high}")
        return int(token)
    names = _MONTHS if name == "month" else _DAYS if name == "day-of-week" else ()
    if token in names:
        return names.index(token) + (1 if name == "month" else 0)
    if _EXTENSION.fullmatch(token):
        raise ScheduleError(
            f"{name} field: {token.upper()!r} is a non-standard cron extension; "
            "only numbers, names, *, ranges, steps and lists are supported"
        )
    kind = {"month": "a month (jan-dec)", "day-of-week": "a weekday (sun-sat)"}.get(name)
    raise ScheduleError(f"{name} field: {token!r} is not a number{' or ' + kind if kind else ''}")


@lru_cache(maxsize=1024)
def _zone(name: str) -> ZoneInfo:
    if name in _available():
        try:
            return ZoneInfo(name)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError) as exc:
            raise ScheduleError(f"timezone {name!r} cannot be loaded: {exc}") from exc
    zones = {z.lower(): z for z in _available()}
    key = "_".join(name.strip().split()).lower()
    guesses = [zones[key]] if key in zones else []
    guesses = guesses or sorted(z for z in _available() if z.rsplit("/", 1)[-1].lower() == key)
    guesses = guesses or [zones[z] for z in difflib.get_close_matches(key, zones, n=3)]
    others = f" (or {', '.join(repr(g) for g in guesses[1:3])})" if guesses[1:] else ""
    hint = f"did you mean {guesses[0]!r}{others}?" if guesses else "use an IANA name, e.g. 'UTC'"
    raise ScheduleError(f"unknown timezone {name!r}; {hint}")


@lru_cache(maxsize=1)
def _available() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


@lru_cache(maxsize=4096)
def _describe(text: str) -> str:
    from cron_descriptor import Options, get_description

    options = Options(use_24hour_time_format=True, locale_code="en_US")
    try:
        return str(get_description(text, options))
    except Exception:  # a describer quirk must never break a plan; the raw text still informs
        return f"cron '{text}'"


# --- iteration -------------------------------------------------------------------------------


def _slots(spec: _Spec, after: datetime) -> Iterator[datetime]:
    """Naive wall-clock slots strictly after ``after``, in order (croniter on naive time)."""
    cron = croniter(spec.cron, after.replace(second=0, microsecond=0))
    try:
        while True:
            yield cron.get_next(datetime)
    except (CroniterBadDateError, OverflowError, ValueError):  # past year 9999: nothing left
        return


def _offset(zone: ZoneInfo, utc: datetime) -> timedelta:
    offset = utc.replace(tzinfo=UTC).astimezone(zone).utcoffset()
    assert offset is not None  # a ZoneInfo always knows its offset
    return offset


@lru_cache(maxsize=1024)
def _transition(zone: ZoneInfo, lo: datetime, hi: datetime) -> datetime:
    """First UTC second in (lo, hi] whose offset differs from lo's; exact for 30-min shifts."""
    before = _offset(zone, lo)
    lo_s, hi_s = 0, int((hi - lo).total_seconds())
    while hi_s - lo_s > 1:
        mid = (lo_s + hi_s) // 2
        if _offset(zone, lo + timedelta(seconds=mid)) == before:
            lo_s = mid
        else:
            hi_s = mid
    return lo + timedelta(seconds=hi_s)


def _fires(spec: _Spec, zone: ZoneInfo, start: datetime, dst: str) -> Iterator[FireTime]:
    """Resolve wall-clock slots to instants; a heap restores real-time order.

    A slot's first instant never precedes an earlier slot's first instant, so anything queued
    at or before it is final. Only the second occurrence of a repeated wall time overtakes
    later slots, and it waits in the heap until their instants pass it.
    """
    both = dst == "literal" or (dst == "vixie" and not spec.fixed)
    catch_up = dst == "vixie" and spec.fixed
    # A wall time before start's own can still lie after start when the clock falls back.
    begin = start + min(_offset(zone, start), _offset(zone, start + _DAY))
    heap: list[tuple[datetime, int, FireTime]] = []
    seq = itertools.count()
    last: datetime | None = None
    gap: tuple[datetime, list[datetime]] | None = None  # pending catch-up: (instant, slots)
    for slot in _slots(spec, begin):
        first, second = _offsets(zone, slot)
        aware = slot.replace(tzinfo=zone)
        if first == second:
            fires = [(slot - first, FireTime(aware, slot, 0, None))]
        elif aware.astimezone(UTC).astimezone(zone).replace(tzinfo=None) == slot:  # repeated
            fires = _repeat(zone, slot, first, second, both=both)
        elif not catch_up:
            continue  # a wall time the clock never shows
        else:
            instant = _transition(zone, slot - second, slot - first)
            if gap is not None and gap[0] == instant:
                gap[1].append(slot)
                continue
            if gap is not None:
                heapq.heappush(heap, (gap[0], next(seq), _gap_fire(zone, *gap)))
            gap = (instant, [slot])
            continue
        if gap is not None:
            heapq.heappush(heap, (gap[0], next(seq), _gap_fire(zone, *gap)))
            gap = None
        for instant, fire in fires:
            heapq.heappush(heap, (instant, next(seq), fire))
        while heap and heap[0][0] <= fires[0][0]:
            instant, _, fire = heapq.heappop(heap)
            if instant > start and instant != last:  # equal: catch-up met the slot at the jump
                last = instant
                yield fire


def _offsets(zone: ZoneInfo, slot: datetime) -> tuple[timedelta, timedelta]:
    """A wall time's UTC offset read as before (fold=0) and after (fold=1) a transition."""
    first, second = zone.utcoffset(slot), zone.utcoffset(slot.replace(fold=1))
    assert first is not None  # ZoneInfo always answers
    assert second is not None
    return first, second


def _repeat(
    zone: ZoneInfo, slot: datetime, first: timedelta, second: timedelta, *, both: bool
) -> list[tuple[datetime, FireTime]]:
    aware, hm = slot.replace(tzinfo=zone), f"{slot:%H:%M}"
    if not both:
        note = f"DST repeat: {hm} occurs twice, fired at first occurrence only"
        return [(slot - first, FireTime(aware, slot, 0, note))]
    again = aware.replace(fold=1)
    return [
        (slot - first, FireTime(aware, slot, 0, f"DST repeat: first occurrence of {hm}")),
        (slot - second, FireTime(again, slot, 1, f"DST repeat: second occurrence of {hm}")),
    ]


def _gap_fire(zone: ZoneInfo, instant: datetime, slots: list[datetime]) -> FireTime:
    at = instant.replace(tzinfo=UTC).astimezone(zone)
    verb = "does not exist" if len(slots) == 1 else "do not exist"
    once = "" if len(slots) == 1 else "once "
    wall = ", ".join(f"{s:%H:%M}" for s in slots)
    note = f"DST gap: {wall} {verb}, fired {once}at {at:%H:%M} (vixie)"
    return FireTime(at, slots[0], 0, note)
