"""Times on the dashboard always say which zone they are in, and odd input never breaks a page."""

from __future__ import annotations

from datetime import UTC, datetime

from planner_operator.server.dashboard import display

NOW = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


def test_zoned_shows_the_job_zone_abbreviation_and_offset() -> None:
    winter = display.zoned("2026-03-02T09:00:00+01:00", "Europe/Berlin")
    summer = display.zoned("2026-07-06T07:00:00+00:00", "Europe/Berlin")
    assert winter == "Mon 2 Mar 2026, 09:00 CET (UTC+01:00)"
    assert summer == "Mon 6 Jul 2026, 09:00 CEST (UTC+02:00)"


def test_zoned_names_numeric_zones_by_offset_only() -> None:
    # Asia/Kolkata's abbreviation is "IST"; a zone without one (e.g. America/Sao_Paulo: "-03")
    # must not print "-03 (UTC-03:00)".
    assert display.zoned("2026-03-02T12:00:00+00:00", "America/Sao_Paulo") == (
        "Mon 2 Mar 2026, 09:00 UTC\u221203:00"
    )
    assert display.zoned("2026-03-02T04:00:00+00:00", "Asia/Kolkata").endswith(
        "09:30 IST (UTC+05:30)"
    )


def test_zoned_without_a_zone_keeps_the_value_offset_and_passes_garbage_through() -> None:
    assert display.zoned("2026-03-02T09:00:00+05:30") == "Mon 2 Mar 2026, 09:00 UTC+05:30"
    assert display.zoned("not a time") == "not a time"
    assert display.zoned(None) == "—"
    assert display.zoned("2026-03-02T09:00:00+00:00", "No/Such_Zone").startswith("Mon 2 Mar")


def test_utc_and_wall_clock_slots() -> None:
    assert display.utc("2026-03-02T09:00:12.5+01:00") == "2026-03-02 08:00:12 UTC"
    assert display.utc("2026-03-02T08:00:00") == "2026-03-02 08:00:00 UTC"  # naive = UTC
    assert display.wall("2026-03-02T09:00") == "Mon 2 Mar 2026, 09:00 (job's local time)"
    assert display.wall("garbage") == "garbage"


def test_relative_rounds_to_the_unit_a_person_reads() -> None:
    assert display.relative("2026-03-02T11:10:00+00:00", NOW) == "in 3 h"
    assert display.relative("2026-03-02T07:55:00+00:00", NOW) == "5 min ago"
    assert display.relative("2026-03-09T08:00:00+00:00", NOW) == "in 7 d"
    assert display.relative("2026-03-02T08:00:10+00:00", NOW) == "in a few seconds"
    assert display.relative("2026-03-02T07:59:50+00:00", NOW) == "just now"
    assert display.relative("", NOW) == ""


def test_duration_pretty_and_shorten() -> None:
    assert [display.duration(v) for v in (None, 850, 12_300, 245_000)] == [
        "—",
        "850 ms",
        "12.3 s",
        "4 min 05 s",
    ]
    assert display.pretty('{"b": 1, "a": [1]}') == '{\n  "a": [\n    1\n  ],\n  "b": 1\n}'
    assert display.pretty("plain text") == "plain text"
    assert display.shorten("a  b\nc", 10) == "a b c"
    assert display.shorten("x" * 20, 10) == "x" * 9 + "…"


def test_zoned_utc_and_fixed_offsets_are_not_repeated() -> None:
    assert display.zoned("2026-03-02T09:00:00+00:00", "UTC") == "Mon 2 Mar 2026, 09:00 UTC"
    assert display.zoned("2026-03-02T09:00:00-03:00") == "Mon 2 Mar 2026, 09:00 UTC\u221203:00"
    assert display.zoned("2026-01-05T09:00:00+00:00", "Europe/London").endswith(
        "09:00 GMT (UTC+00:00)"
    )
