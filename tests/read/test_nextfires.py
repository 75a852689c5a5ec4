"""The next-fire cache: one cron walk per (schedule, timezone, DST policy) until its first fire
passes, on the injected clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from planner_operator.core import scheduling
from planner_operator.core.clock import ManualClock
from planner_operator.read.nextfires import NextFires

MONDAY = datetime(2026, 12, 7, 8, 0, tzinfo=UTC)


def test_the_cache_serves_until_the_first_fire_passes_then_recomputes_once() -> None:
    clock = ManualClock(MONDAY)
    fires = NextFires(clock)
    first = fires.get("30 9 * * *", "Europe/Berlin", "vixie")
    assert [f.at.hour for f in first] == [9] * 5 and first[0].utc == datetime(
        2026, 12, 7, 8, 30, tzinfo=UTC
    )
    assert fires.computed == 1
    clock.advance(29 * 60 + 59)  # 08:29:59 UTC: the 09:30 Berlin fire is still ahead
    assert fires.get("30 9 * * *", "Europe/Berlin", "vixie") == first
    assert fires.get("30 9 * * *", "Europe/Berlin", "vixie", count=1) == first[:1]
    assert fires.computed == 1  # served from the cache
    clock.advance(1)  # 08:30:00: that fire is now, not strictly after now
    moved = fires.get("30 9 * * *", "Europe/Berlin", "vixie")
    assert fires.computed == 2
    assert moved[0].utc == first[1].utc and moved[:4] == first[1:]
    assert moved == tuple(
        scheduling.next_fires("30 9 * * *", "Europe/Berlin", start=clock.now(), count=5)
    )
    assert fires.get("30 9 * * *", "Europe/Berlin", "vixie") == moved and fires.computed == 2


def test_each_schedule_timezone_and_policy_is_its_own_entry() -> None:
    clock = ManualClock(MONDAY)
    fires = NextFires(clock)
    for _ in range(3):  # many jobs of one team share one walk
        fires.get("0 9 * * 1-5", "Europe/Berlin", "vixie")
    assert fires.computed == 1
    fires.get("0 9 * * 1-5", "America/New_York", "vixie")
    fires.get("0 9 * * 1-5", "Europe/Berlin", "skip")
    fires.get("0 10 * * 1-5", "Europe/Berlin", "vixie")
    assert fires.computed == 4


def test_a_schedule_that_cannot_be_walked_has_no_fires_and_is_not_retried() -> None:
    clock = ManualClock(MONDAY)
    fires = NextFires(clock)
    assert fires.get("61 * * * *", "UTC", "vixie") == ()
    assert fires.get("0 0 30 2 *", "UTC", "vixie") == ()  # February 30th never comes
    clock.advance(timedelta(days=400).total_seconds())
    assert fires.get("61 * * * *", "UTC", "vixie") == () and fires.computed == 2


def test_the_cache_is_bounded() -> None:
    fires = NextFires(ManualClock(MONDAY), size=10)
    for minute in range(30):
        fires.get(f"{minute} 9 * * *", "UTC", "vixie")
    assert len(fires._cache) == 10
    fires.get("29 9 * * *", "UTC", "vixie")  # the newest are kept
    assert fires.computed == 30
