"""The clocks: the system one reads aware UTC, the manual one moves only when told to and is
safe to share between threads, the scaled one runs fast but really sleeps."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta, timezone

import pytest

from planner_operator.core import clock as clock_mod
from planner_operator.core.clock import ManualClock, ScaledClock, SystemClock


def test_system_clock_is_aware_utc_and_monotonic_never_goes_back() -> None:
    clock = SystemClock()
    before = datetime.now(UTC)
    now = clock.now()
    assert now.tzinfo is UTC and before <= now <= datetime.now(UTC)
    first = clock.monotonic()
    assert clock.monotonic() >= first
    assert abs(clock_mod.epoch(clock) - time.time()) < 5.0


def test_manual_clock_stands_still_until_advanced() -> None:
    clock = ManualClock(datetime(2026, 12, 7, 9, 0, tzinfo=UTC))
    assert clock.now() == clock.now() == datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
    start = clock.monotonic()
    assert clock.advance(minutes=5) == datetime(2026, 12, 7, 9, 5, tzinfo=UTC)
    assert clock.advance(timedelta(hours=1), seconds=30) == datetime(
        2026, 12, 7, 10, 5, 30, tzinfo=UTC
    )
    assert clock.advance(0.5) == datetime(2026, 12, 7, 10, 5, 30, 500000, tzinfo=UTC)
    assert clock.monotonic() - start == pytest.approx(3930.5)
    assert clock_mod.epoch(clock) == clock.now().timestamp()
    assert clock_mod.iso(clock, "seconds") == "2026-12-07T10:05:30+00:00"


def test_manual_clock_converts_a_zoned_start_to_utc_and_refuses_naive_times() -> None:
    berlin = timezone(timedelta(hours=1))
    clock = ManualClock(datetime(2026, 12, 7, 10, 0, tzinfo=berlin))
    assert clock.now() == datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
    assert clock.now().tzinfo is UTC
    with pytest.raises(ValueError, match="aware"):
        ManualClock(datetime(2026, 12, 7, 9, 0))
    with pytest.raises(ValueError, match="aware"):
        clock.set(datetime(2026, 12, 7, 9, 0))
    with pytest.raises(ValueError, match="backwards"):
        clock.advance(-1)


def test_a_wall_clock_step_does_not_move_monotonic_time() -> None:
    clock = ManualClock()
    start = clock.monotonic()
    clock.set(datetime(2025, 1, 1, tzinfo=UTC))  # back a year, as NTP might
    assert clock.now() == datetime(2025, 1, 1, tzinfo=UTC)
    assert clock.monotonic() == start


def test_manual_sleep_returns_at_once_and_records_the_wait() -> None:
    clock = ManualClock()
    start, wall = clock.monotonic(), clock.now()
    real = time.monotonic()
    clock.sleep(3600.0)
    clock.sleep(0.25)
    assert time.monotonic() - real < 1.0
    assert clock.slept == [3600.0, 0.25]
    assert clock.monotonic() - start == pytest.approx(3600.25)
    assert clock.now() - wall == timedelta(seconds=3600.25)
    with pytest.raises(ValueError, match="non-negative"):
        clock.sleep(-1)


def test_manual_clock_loses_no_step_when_threads_share_it() -> None:
    clock = ManualClock()
    start = clock.monotonic()

    def tick() -> None:
        for _ in range(1000):
            clock.sleep(0.001)
            clock.advance(0.001)

    threads = [threading.Thread(target=tick) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert clock.monotonic() - start == pytest.approx(16.0)
    assert len(clock.slept) == 8000


def test_scaled_clock_runs_fast_but_really_sleeps() -> None:
    clock = ScaledClock(100.0)
    before, wall, real = clock.monotonic(), clock.now(), time.monotonic()
    clock.sleep(2.0)
    assert clock.monotonic() - before >= 2.0
    assert clock.now() - wall >= timedelta(seconds=2.0)
    assert time.monotonic() - real < 1.0
    with pytest.raises(ValueError, match="positive"):
        ScaledClock(0)


def test_scaled_clock_reads_a_manual_base() -> None:
    base = ManualClock(datetime(2026, 3, 29, 0, 30, tzinfo=UTC))
    clock = ScaledClock(60.0, base=base)
    base.advance(1.0)
    assert clock.monotonic() == pytest.approx(60.0)
    assert clock.now() == datetime(2026, 3, 29, 0, 31, tzinfo=UTC)
    clock.sleep(120.0)  # two scaled minutes are two base seconds
    assert base.slept == [2.0]


def test_scaled_clock_from_a_chosen_start_is_the_real_clock_on_another_date() -> None:
    start = datetime(2026, 10, 25, 0, 59, 59, tzinfo=UTC)
    clock = ScaledClock(start=start)
    first = clock.now()
    assert first.tzinfo is UTC and timedelta(0) <= first - start < timedelta(seconds=1)
    clock.sleep(0.01)
    assert clock.now() > first
    with pytest.raises(ValueError, match="aware"):
        ScaledClock(start=datetime(2026, 10, 25))
