"""Our cron, written the way Inngest's scheduler (robfig/cron v3) reads it.

The config format follows Vixie cron: day-of-week 0-7 (7 is Sunday again), ranges such as
``1-7`` or ``fri-sun`` and ``5/2`` meaning 5-7 step 2. robfig accepts 0-6 only, rejects a range
that wraps, and reads ``N/step`` as N-6: one such cron makes Inngest refuse the whole app's sync
(``pkg/inngest/trigger.go`` ``CronTrigger.Validate``). So the day-of-week field is sent as it
was written when robfig reads it the same way, else as the explicit list of the days the
operator's own semantics (``core.scheduling``) name. Every other field already means the same
in both, and ``@macros`` were expanded when the config was loaded.
"""

from __future__ import annotations

import re

from planner_operator.core import scheduling

# A day-of-week item robfig reads as Vixie does: one day, or a range that does not wrap, with an
# optional step on the range or on '*' (a '*' item keeps its meaning only when it stands alone).
_DAY = r"(?:[0-6]|sun|mon|tue|wed|thu|fri|sat)"
_SAFE_ITEM = re.compile(rf"{_DAY}(?:-{_DAY}(?:/[1-9][0-9]*)?)?|\*/(?:[2-9]|[1-9][0-9]+)")
_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")


def for_robfig(schedule: str) -> str:
    """``schedule`` (5 fields, validated) with a day-of-week field robfig accepts as meant."""
    fields = schedule.split()
    if len(fields) != 5:
        return schedule  # not ours to fix: validation upstream names the problem
    dow = fields[4]
    if dow == "*" or all(_safe(item) for item in dow.lower().split(",")):
        return schedule
    days = sorted(scheduling.days_of_week(schedule))
    return " ".join([*fields[:4], _ranges(days)])


def _safe(item: str) -> bool:
    if not _SAFE_ITEM.fullmatch(item):
        return False
    low, _, rest = item.partition("-")
    if not rest or item.startswith("*"):
        return True
    high = rest.partition("/")[0]
    return _number(low) <= _number(high)


def _number(day: str) -> int:
    return int(day) if day.isdigit() else _DAYS.index(day)


def _ranges(days: list[int]) -> str:
    """``[0, 1, 2, 5]`` -> ``"0-2,5"``; never ``*``, which changes how the day fields combine."""
    parts: list[str] = []
    start = prev = days[0]
    for day in [*days[1:], None]:
        if day is not None and day == prev + 1:
            prev = day
            continue
        parts.append(str(start) if start == prev else f"{start}-{prev}")
        if day is not None:
            start = prev = day
    return ",".join(parts)
