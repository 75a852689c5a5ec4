"""The fake's cron dialect is the real server's: robfig/cron v3 as Inngest configures it."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from tests.fakes import robfig_cron

NY = ZoneInfo("America/New_York")


@pytest.mark.parametrize(
    "cron",
    [
        "0 9 * * 7",  # day-of-week is 0-6
        "0 9 * * 0-7",
        "0 9 * * 1-7",
        "0 9 * * fri-sun",  # a range may not wrap
        "@hourly",  # sync validation has no descriptors
        "0 9 L * *",
        "0 9 * * 5#2",
        "0 0 9 * * *",  # six fields
        "*/0 * * * *",
        "TZ=Mars/Olympus 0 9 * * 1",
        "60 * * * *",
    ],
)
def test_sync_validation_rejects_what_robfig_rejects(cron: str) -> None:
    with pytest.raises(robfig_cron.CronParseError):
        robfig_cron.parse(cron)


@pytest.mark.parametrize(
    "cron",
    [
        "0 9 * * 0",
        "0 9 * * 0-6",
        "0 9 * * MON-FRI",  # names, any case
        "0 9 ? * mon",  # ? is *
        "5/15 * * * *",  # N/step = N-max/step
        "0 0 1 jan,jul *",
        "TZ=Europe/Berlin 0 9 * * 1",
        "CRON_TZ=UTC 0 9 * * 1",
    ],
)
def test_sync_validation_accepts_what_robfig_accepts(cron: str) -> None:
    robfig_cron.parse(cron)


def test_scheduler_accepts_descriptors_that_sync_validation_refuses() -> None:
    schedule = robfig_cron.parse("TZ=UTC @hourly", robfig_cron.SCHEDULER)
    assert schedule.next(datetime(2026, 1, 1, 0, 30, tzinfo=UTC)) == datetime(
        2026, 1, 1, 1, tzinfo=UTC
    )


def chain(cron: str, start: datetime, count: int) -> list[str]:
    schedule = robfig_cron.parse(cron, robfig_cron.SCHEDULER)
    out, moment = [], start
    for _ in range(count):
        nxt = schedule.next(moment)
        assert nxt is not None
        out.append(nxt.astimezone(NY).isoformat())
        moment = nxt
    return out


def test_spring_forward_skips_a_time_that_does_not_exist() -> None:
    """The reference: for 30 2 * * * in New York, 2026-03-07 goes straight to 03-09."""
    assert chain("TZ=America/New_York 30 2 * * *", datetime(2026, 3, 7, tzinfo=UTC), 2) == [
        "2026-03-07T02:30:00-05:00",
        "2026-03-09T02:30:00-04:00",
    ]


def test_fall_back_fires_a_fixed_time_in_the_repeated_hour_twice() -> None:
    assert chain("TZ=America/New_York 30 1 * * *", datetime(2026, 10, 31, 12, tzinfo=UTC), 3) == [
        "2026-11-01T01:30:00-04:00",
        "2026-11-01T01:30:00-05:00",
        "2026-11-02T01:30:00-05:00",
    ]


def test_day_of_month_and_week_combine_like_cron() -> None:
    either = robfig_cron.parse("0 0 13 * 5", robfig_cron.SCHEDULER)  # 13th OR Friday
    assert either.fires_at(datetime(2026, 11, 6, tzinfo=UTC))  # a Friday, not the 13th
    both = robfig_cron.parse("0 0 13 * *", robfig_cron.SCHEDULER)  # * in dow: the 13th only
    assert not both.fires_at(datetime(2026, 11, 6, tzinfo=UTC))
    assert both.fires_at(datetime(2026, 11, 13, tzinfo=UTC))
