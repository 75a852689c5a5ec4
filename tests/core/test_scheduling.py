"""Cron + timezone + DST semantics, pinned to exact instants on both 2026 transitions.

Expected instants are written out by hand; ``test_transition_dates`` re-derives the transition
instants from zoneinfo so a tzdata change shows up as one clear failure, not thirty odd ones.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from croniter import croniter
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from planner_operator.core import scheduling
from planner_operator.errors import ScheduleError

NY, BERLIN, SYDNEY = "America/New_York", "Europe/Berlin", "Australia/Sydney"
ADELAIDE, LORD_HOWE, KOLKATA = "Australia/Adelaide", "Australia/Lord_Howe", "Asia/Kolkata"


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def transitions(zone: str, year: int) -> list[datetime]:
    """Instants in ``year`` where the zone's UTC offset changes, found by scanning zoneinfo."""
    tz, found, step = ZoneInfo(zone), list[datetime](), timedelta(hours=1)
    t, end = datetime(year, 1, 1, tzinfo=UTC), datetime(year + 1, 1, 1, tzinfo=UTC)
    offset = t.astimezone(tz).utcoffset()
    while t < end:
        nxt = t + step
        if nxt.astimezone(tz).utcoffset() != offset:
            while t.astimezone(tz).utcoffset() == offset:
                t += timedelta(minutes=1)
            found.append(t)
            offset = t.astimezone(tz).utcoffset()
        t = nxt
    return found


@pytest.mark.parametrize(
    ("zone", "expected"),
    [
        (NY, ["2026-03-08 07:00", "2026-11-01 06:00"]),
        (BERLIN, ["2026-03-29 01:00", "2026-10-25 01:00"]),
        (SYDNEY, ["2026-04-04 16:00", "2026-10-03 16:00"]),
        (ADELAIDE, ["2026-04-04 16:30", "2026-10-03 16:30"]),
        (LORD_HOWE, ["2026-04-04 15:00", "2026-10-03 15:30"]),
        (KOLKATA, []),
    ],
)
def test_transition_dates(zone: str, expected: list[str]) -> None:
    assert transitions(zone, 2026) == [utc(t) for t in expected]


# (zone, expr, policy, start, fires): times are 2026 UTC; 'f1' = fold 1, 'note' = has a note.
DST_CASES: list[tuple[str, str, scheduling.DstPolicy, str, list[str]]] = [
    # New York, spring: 02:00 EST -> 03:00 EDT at 07:00Z.
    (NY, "30 2 * * *", "vixie", "03-07 12:00", ["03-08 07:00 note", "03-09 06:30"]),
    (NY, "30 2 * * *", "skip", "03-07 12:00", ["03-09 06:30", "03-10 06:30"]),
    (NY, "30 2 * * *", "literal", "03-07 12:00", ["03-09 06:30"]),
    (NY, "*/30 * * * *", "vixie", "03-08 06:00", ["03-08 06:30", "03-08 07:00", "03-08 07:30"]),
    (NY, "@hourly", "vixie", "03-08 05:30", ["03-08 06:00", "03-08 07:00", "03-08 08:00"]),
    # New York, fall: 02:00 EDT -> 01:00 EST at 06:00Z; 01:00-01:59 happens twice.
    (NY, "30 1 * * *", "vixie", "10-31 12:00", ["11-01 05:30 note", "11-02 06:30"]),
    (NY, "30 1 * * *", "skip", "10-31 12:00", ["11-01 05:30 note", "11-02 06:30"]),
    (
        NY,
        "30 1 * * *",
        "literal",
        "10-31 12:00",
        ["11-01 05:30 note", "11-01 06:30 f1 note", "11-02 06:30"],
    ),
    (
        NY,
        "*/30 * * * *",
        "vixie",
        "11-01 04:00",
        [
            "11-01 04:30",
            "11-01 05:00 note",
            "11-01 05:30 note",
            "11-01 06:00 f1 note",
            "11-01 06:30 f1 note",
            "11-01 07:00",
        ],
    ),
    (
        NY,
        "@hourly",
        "vixie",
        "11-01 04:30",
        ["11-01 05:00 note", "11-01 06:00 f1 note", "11-01 07:00"],
    ),
    (NY, "0 * * * *", "skip", "11-01 04:30", ["11-01 05:00 note", "11-01 07:00"]),
    # Berlin: 02:00 CET -> 03:00 CEST at 01:00Z; 03:00 CEST -> 02:00 CET at 01:00Z.
    (BERLIN, "30 2 * * *", "vixie", "03-28 12:00", ["03-29 01:00 note", "03-30 00:30"]),
    (BERLIN, "30 2 * * *", "skip", "03-28 12:00", ["03-30 00:30"]),
    (BERLIN, "*/30 * * * *", "vixie", "03-29 00:00", ["03-29 00:30", "03-29 01:00", "03-29 01:30"]),
    (BERLIN, "30 2 * * *", "vixie", "10-24 12:00", ["10-25 00:30 note", "10-26 01:30"]),
    (
        BERLIN,
        "30 2 * * *",
        "literal",
        "10-24 12:00",
        ["10-25 00:30 note", "10-25 01:30 f1 note", "10-26 01:30"],
    ),
    (
        BERLIN,
        "*/30 * * * *",
        "vixie",
        "10-24 23:30",
        [
            "10-25 00:00 note",
            "10-25 00:30 note",
            "10-25 01:00 f1 note",
            "10-25 01:30 f1 note",
            "10-25 02:00",
        ],
    ),
    # Sydney: DST ends 03:00 AEDT -> 02:00 AEST (16:00Z), starts 02:00 AEST -> 03:00 AEDT.
    (SYDNEY, "30 2 * * *", "vixie", "04-04 00:00", ["04-04 15:30 note", "04-05 16:30"]),
    (
        SYDNEY,
        "30 2 * * *",
        "literal",
        "04-04 00:00",
        ["04-04 15:30 note", "04-04 16:30 f1 note", "04-05 16:30"],
    ),
    (
        SYDNEY,
        "*/30 * * * *",
        "vixie",
        "04-04 14:45",
        [
            "04-04 15:00 note",
            "04-04 15:30 note",
            "04-04 16:00 f1 note",
            "04-04 16:30 f1 note",
            "04-04 17:00",
        ],
    ),
    (SYDNEY, "30 2 * * *", "vixie", "10-03 00:00", ["10-03 16:00 note", "10-04 15:30"]),
    (SYDNEY, "30 2 * * *", "skip", "10-03 00:00", ["10-04 15:30", "10-05 15:30"]),
    (SYDNEY, "*/30 * * * *", "vixie", "10-03 15:00", ["10-03 15:30", "10-03 16:00", "10-03 16:30"]),
    # Adelaide (+10:30 / +09:30): same local rules as Sydney, half-hour UTC instants.
    (ADELAIDE, "30 2 * * *", "vixie", "04-04 00:00", ["04-04 16:00 note", "04-05 17:00"]),
    (
        ADELAIDE,
        "30 2 * * *",
        "literal",
        "04-04 00:00",
        ["04-04 16:00 note", "04-04 17:00 f1 note", "04-05 17:00"],
    ),
    (
        ADELAIDE,
        "@hourly",
        "vixie",
        "04-04 15:00",
        ["04-04 15:30 note", "04-04 16:30 f1 note", "04-04 17:30"],
    ),
    (ADELAIDE, "30 2 * * *", "vixie", "10-03 00:00", ["10-03 16:30 note", "10-04 16:00"]),
    (ADELAIDE, "30 2 * * *", "skip", "10-03 00:00", ["10-04 16:00"]),
    (
        ADELAIDE,
        "*/30 * * * *",
        "vixie",
        "10-03 15:30",
        ["10-03 16:00", "10-03 16:30", "10-03 17:00"],
    ),
    # Lord Howe: a 30-minute shift. 02:00 (+11) -> 01:30 (+10:30); 02:00 (+10:30) -> 02:30 (+11).
    (LORD_HOWE, "45 1 * * *", "vixie", "04-04 00:00", ["04-04 14:45 note", "04-05 15:15"]),
    (
        LORD_HOWE,
        "45 1 * * *",
        "literal",
        "04-04 00:00",
        ["04-04 14:45 note", "04-04 15:15 f1 note", "04-05 15:15"],
    ),
    (
        LORD_HOWE,
        "*/30 * * * *",
        "vixie",
        "04-04 14:15",
        ["04-04 14:30 note", "04-04 15:00 f1 note", "04-04 15:30"],
    ),
    (LORD_HOWE, "15 2 * * *", "vixie", "10-03 00:00", ["10-03 15:30 note", "10-04 15:15"]),
    (LORD_HOWE, "15 2 * * *", "skip", "10-03 00:00", ["10-04 15:15"]),
    (LORD_HOWE, "30 2 * * *", "vixie", "10-03 00:00", ["10-03 15:30", "10-04 15:30"]),
    (
        LORD_HOWE,
        "*/30 * * * *",
        "vixie",
        "10-03 14:45",
        ["10-03 15:00", "10-03 15:30", "10-03 16:00"],
    ),
    # Kolkata has no DST: the same jobs on the same dates are ordinary.
    (KOLKATA, "30 2 * * *", "vixie", "03-07 12:00", ["03-07 21:00", "03-08 21:00"]),
    (KOLKATA, "30 1 * * *", "literal", "10-31 12:00", ["10-31 20:00", "11-01 20:00"]),
]


@pytest.mark.parametrize(
    ("zone", "expr", "dst", "start", "expected"),
    DST_CASES,
    ids=[f"{c[0].split('/')[-1]}-{c[1]}-{c[2]}-{c[3][:5]}" for c in DST_CASES],
)
def test_dst_instants(
    zone: str, expr: str, dst: scheduling.DstPolicy, start: str, expected: list[str]
) -> None:
    fires = scheduling.next_fires(
        expr, zone, start=utc(f"2026-{start}"), count=len(expected), dst=dst
    )
    want = [e.split() for e in expected]
    assert [(f.utc, f.fold, f.note is not None) for f in fires] == [
        (utc(f"2026-{w[0]} {w[1]}"), int("f1" in w), "note" in w) for w in want
    ]
    for fire in fires:
        assert fire.at.tzinfo == ZoneInfo(zone)
        assert fire.at.timestamp() == fire.utc.timestamp()  # ambiguous times never compare ==
        assert fire.utc.tzinfo == UTC


def test_gap_fire_fields_and_note() -> None:
    [fire] = scheduling.next_fires("30 2 * * *", NY, start=utc("2026-03-08 00:00"), count=1)
    assert fire.slot == datetime(2026, 3, 8, 2, 30)
    assert fire.at.isoformat() == "2026-03-08T03:00:00-04:00"
    assert fire.note == "DST gap: 02:30 does not exist, fired at 03:00 (vixie)"


def test_lord_howe_gap_fires_at_half_past() -> None:
    [fire] = scheduling.next_fires("15 2 * * *", LORD_HOWE, start=utc("2026-10-03 00:00"), count=1)
    assert fire.at.isoformat() == "2026-10-04T02:30:00+11:00"
    assert fire.note == "DST gap: 02:15 does not exist, fired at 02:30 (vixie)"


def test_several_gap_slots_collapse_into_one_fire() -> None:
    fires = scheduling.next_fires("0,30 2,3 * * *", NY, start=utc("2026-03-08 00:00"), count=3)
    assert [f.utc for f in fires] == [
        utc("2026-03-08 07:00"),
        utc("2026-03-08 07:30"),
        utc("2026-03-09 06:00"),
    ]
    assert fires[0].slot == datetime(2026, 3, 8, 2, 0)
    assert fires[0].note == "DST gap: 02:00, 02:30 do not exist, fired once at 03:00 (vixie)"
    assert fires[1].note is None


def test_repeat_notes() -> None:
    once = scheduling.next_fires("30 1 * * *", NY, start=utc("2026-11-01 00:00"), count=1)
    assert once[0].note == "DST repeat: 01:30 occurs twice, fired at first occurrence only"
    twice = scheduling.next_fires(
        "30 1 * * *", NY, start=utc("2026-11-01 00:00"), count=2, dst="literal"
    )
    assert [f.note for f in twice] == [
        "DST repeat: first occurrence of 01:30",
        "DST repeat: second occurrence of 01:30",
    ]
    assert [f.at.isoformat() for f in twice] == [
        "2026-11-01T01:30:00-04:00",
        "2026-11-01T01:30:00-05:00",
    ]


def test_start_inside_the_repeated_hour() -> None:
    """From the first 01:50, the second 01:00 is still ahead although its wall time is not."""
    fires = scheduling.next_fires("*/30 * * * *", NY, start=utc("2026-11-01 05:50"), count=3)
    assert [(f.utc, f.fold) for f in fires] == [
        (utc("2026-11-01 06:00"), 1),
        (utc("2026-11-01 06:30"), 1),
        (utc("2026-11-01 07:00"), 0),
    ]


def test_start_is_exclusive_and_any_zone() -> None:
    start = datetime(2026, 6, 1, 9, 0, tzinfo=ZoneInfo(BERLIN))
    fires = scheduling.next_fires("0 9 * * *", BERLIN, start=start, count=1)
    assert fires[0].at == datetime(2026, 6, 2, 9, 0, tzinfo=ZoneInfo(BERLIN))
    tokyo = start.astimezone(ZoneInfo("Asia/Tokyo"))
    assert scheduling.next_fires("0 9 * * *", ZoneInfo(BERLIN), start=tokyo, count=1) == fires


def test_iter_fires_is_lazy_and_crosses_a_whole_year() -> None:
    fires = scheduling.iter_fires("*/30 * * * *", NY, start=utc("2026-01-01 00:00"))
    got = [next(fires) for _ in range(365 * 48 + 10)]
    gaps = {b.utc - a.utc for a, b in itertools.pairwise(got)}
    assert gaps == {timedelta(minutes=30)}  # elapsed time: DST neither adds nor drops a fire
    assert sum(f.note is not None for f in got) == 4  # 01:00 and 01:30, each twice, in November


def test_kolkata_control_is_untouched() -> None:
    fires = scheduling.next_fires("*/30 * * * *", KOLKATA, start=utc("2026-03-07 00:00"), count=200)
    assert all(f.note is None and f.fold == 0 for f in fires)
    assert {b.utc - a.utc for a, b in itertools.pairwise(fires)} == {timedelta(minutes=30)}


def test_day_of_month_or_day_of_week() -> None:
    """Both day fields restricted means either may match, as in every cron."""
    fires = scheduling.next_fires("0 0 13 * fri", "UTC", start=utc("2026-02-01 00:00"), count=4)
    assert [f.slot.day for f in fires] == [6, 13, 20, 27]


def test_weekday_spellings() -> None:
    start = utc("2026-06-01 00:00")  # a Monday
    days = {
        f.slot.isoweekday()
        for f in scheduling.next_fires("0 0 * * fri-sun", "UTC", start=start, count=6)
    }
    assert days == {5, 6, 7}
    sevens = scheduling.next_fires("0 0 * * 7", "UTC", start=start, count=2)
    assert sevens == scheduling.next_fires("0 0 * * SUN", "UTC", start=start, count=2)


def test_leap_day() -> None:
    fires = scheduling.next_fires("0 0 29 2 *", "UTC", start=utc("2026-01-01 00:00"), count=2)
    assert [f.slot for f in fires] == [datetime(2028, 2, 29), datetime(2032, 2, 29)]


# --- parsing --------------------------------------------------------------------------------


def test_macros() -> None:
    assert dict(scheduling.MACROS) == {
        "@yearly": "0 0 1 1 *",
        "@annually": "0 0 1 1 *",
        "@monthly": "0 0 1 * *",
        "@weekly": "0 0 * * 0",
        "@daily": "0 0 * * *",
        "@midnight": "0 0 * * *",
        "@hourly": "0 * * * *",
    }
    assert scheduling.normalize_schedule(" @Daily ") == "0 0 * * *"
    assert scheduling.validate_schedule("@weekly") == "0 0 * * 0"


def test_normalize_collapses_whitespace() -> None:
    assert scheduling.normalize_schedule("  0\t9  * *   1-5 \n") == "0 9 * * 1-5"
    assert scheduling.validate_schedule("*/15  9-17 * * MON-FRI") == "*/15 9-17 * * MON-FRI"


@pytest.mark.parametrize(
    ("expr", "message"),
    [
        ("0 0 * * * *", "has 6 fields, expected 5"),
        ("0 0 0 * * * 2026", "seconds and year fields are not supported"),
        ("@reboot", "'@reboot' is not supported"),
        ("@every 5m", "unknown schedule macro"),
        ("@dayly", "did you mean '@daily'?"),
        ("0 0 L * *", "day-of-month field: 'L' is a non-standard cron extension"),
        ("0 0 15W * *", "'15W' is a non-standard cron extension"),
        ("0 0 * * 5L", "'5L' is a non-standard cron extension"),
        ("0 0 * * 1#2", "'#' is a non-standard cron extension"),
        ("0 0 ? * 1", "'?' is a non-standard cron extension"),
        ("H 0 * * *", "'H' is a non-standard cron extension"),
        ("every day", "is not cron; did you mean '@daily'?"),
        ("every hour", "did you mean '@hourly'?"),
        ("weekly", "did you mean '@weekly'?"),
        ("every fortnight", "has 2 fields, expected 5"),
        ("a b c d e", "minute field: 'a' is not a number"),
        ("0 0 * foo *", "month field: 'foo' is not a number or a month (jan-dec)"),
        ("0 0 * * mon-fri-sat", "'mon-fri-sat' is not a number, range, step or list"),
        ("0 0 30 2 *", "never fires: day 30 never occurs in February"),
        ("0 0 31 4,6,9,11 *", "day 31 never occurs in April, June, September, November"),
        ("60 * * * *", "minute field: 60 is out of range 0-59"),
        ("0 24 * * *", "hour field: 24 is out of range 0-23"),
        ("0 0 0 * *", "day-of-month field: 0 is out of range 1-31"),
        ("0 0 * 13 *", "month field: 13 is out of range 1-12"),
        ("0 0 * * 8", "day-of-week field: 8 is out of range 0-7"),
        ("5-2 * * * *", "range '5-2' runs backwards"),
        ("*/0 * * * *", "step in '*/0' must be a positive number"),
        ("1,,2 * * * *", "'' is not a number, range, step or list"),
        ("", "schedule is empty"),
    ],
)
def test_validate_schedule_errors(expr: str, message: str) -> None:
    with pytest.raises(ScheduleError) as info:
        scheduling.validate_schedule(expr)
    assert message in str(info.value)


def test_never_fires_needs_dow_unrestricted() -> None:
    """With a weekday given, cron ORs the day fields, so Feb 30 plus Mondays still fires."""
    assert scheduling.validate_schedule("0 0 30 2 1") == "0 0 30 2 1"
    fires = scheduling.next_fires("0 0 30 2 1", "UTC", start=utc("2026-01-01 00:00"), count=1)
    assert fires[0].slot == datetime(2026, 2, 2)


@pytest.mark.parametrize(
    ("expr", "fixed"),
    [
        ("30 2 * * *", True),
        ("0 0 1 1 *", True),
        ("0,30 1-3 * * *", True),
        ("@daily", True),
        ("*/15 2 * * *", False),
        ("0 * * * *", False),
        ("0 */2 * * *", False),
        ("@hourly", False),
        ("* * * * *", False),
    ],
)
def test_is_fixed_time(expr: str, fixed: bool) -> None:
    assert scheduling.is_fixed_time(expr) is fixed


@pytest.mark.parametrize(
    ("name", "suggestion"),
    [
        ("europe/berlin", "did you mean 'Europe/Berlin'?"),
        ("Europe/Berln", "did you mean 'Europe/Berlin'"),
        ("America/New York", "did you mean 'America/New_York'?"),
        ("berlin", "did you mean 'Europe/Berlin'?"),
        ("Mars/Olympus_Mons", "use an IANA name"),
    ],
)
def test_validate_timezone_did_you_mean(name: str, suggestion: str) -> None:
    with pytest.raises(ScheduleError, match="unknown timezone") as info:
        scheduling.validate_timezone(name)
    assert suggestion in str(info.value)


def test_validate_timezone_accepts_iana_names() -> None:
    assert scheduling.validate_timezone("Europe/Berlin") == ZoneInfo("Europe/Berlin")
    assert scheduling.validate_timezone("UTC").key == "UTC"


def test_bad_arguments() -> None:
    start = utc("2026-01-01 00:00")
    with pytest.raises(ScheduleError, match="timezone-aware"):
        scheduling.next_fires("0 0 * * *", "UTC", start=datetime(2026, 1, 1))
    with pytest.raises(ScheduleError, match="count must be a positive integer"):
        scheduling.next_fires("0 0 * * *", "UTC", start=start, count=0)
    with pytest.raises(ScheduleError, match="unknown DST policy"):
        scheduling.next_fires("0 0 * * *", "UTC", start=start, dst="spring")  # type: ignore[arg-type]
    with pytest.raises(ScheduleError, match="unknown timezone"):
        scheduling.iter_fires("0 0 * * *", "Nowhere/Town", start=start)  # fails before next()
    with pytest.raises(ScheduleError, match="never fires"):
        scheduling.iter_fires("0 0 31 2 *", "UTC", start=start)


@pytest.mark.parametrize(
    ("expr", "words"),
    [
        ("0 9 * * 1", "At 09:00, only on Monday"),
        ("30 14 * * *", "At 14:30"),
        ("@daily", "At 00:00"),
        ("@hourly", "Every hour"),
        (
            "*/15 9-17 * * mon-fri",
            "Every 15 minutes, between 09:00 and 17:59, Monday through Friday",
        ),
        ("0 0 1 1 *", "At 00:00, on day 1 of the month, only in January"),
    ],
)
def test_describe(expr: str, words: str) -> None:
    assert scheduling.describe(expr) == words


def test_describe_rejects_invalid() -> None:
    with pytest.raises(ScheduleError):
        scheduling.describe("0 0 L * *")


# --- properties -----------------------------------------------------------------------------

ZONES = [NY, BERLIN, SYDNEY, ADELAIDE, LORD_HOWE, KOLKATA, "UTC", "Europe/Dublin",
         "Antarctica/Troll", "Pacific/Chatham", "America/Santiago"]  # fmt: skip
POLICIES: list[scheduling.DstPolicy] = ["vixie", "skip", "literal"]
NEAR = {z: transitions(z, 2026) for z in ZONES}


def _field(low: int, high: int) -> st.SearchStrategy[str]:
    """Plain cron field forms, kept to what croniter reads the same way we do."""
    value = st.integers(low, high)
    pair = st.tuples(value, value).filter(lambda p: p[0] < p[1])
    return st.one_of(
        st.just("*"),
        value.map(str),
        st.integers(1, 7).map(lambda k: f"*/{k}"),
        pair.map(lambda p: f"{p[0]}-{p[1]}"),
        st.lists(value, min_size=2, max_size=3, unique=True).map(lambda v: ",".join(map(str, v))),
    )


crons = st.tuples(
    _field(0, 59),
    _field(0, 23),
    st.one_of(st.just("*"), st.integers(1, 28).map(str)),
    st.one_of(st.just("*"), st.integers(1, 12).map(str), st.just("3,4,10,11")),
    st.one_of(st.just("*"), _field(0, 6)),
).map(" ".join)


@st.composite
def starts(draw: st.DrawFn, zone: str) -> datetime:
    near = draw(st.booleans())
    if NEAR[zone] and near:  # aim at the transitions, where the bugs live
        base = draw(st.sampled_from(NEAR[zone]))
        return base + timedelta(minutes=draw(st.integers(-26 * 60, 3 * 60)))
    return draw(st.datetimes(datetime(2025, 1, 1), datetime(2027, 12, 31), timezones=st.just(UTC)))


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[str, str, datetime, scheduling.DstPolicy]:
    zone = draw(st.sampled_from(ZONES))
    return draw(crons), zone, draw(starts(zone)), draw(st.sampled_from(POLICIES))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios(), st.integers(1, 30))
def test_fire_laws(scenario: tuple[str, str, datetime, scheduling.DstPolicy], count: int) -> None:
    expr, zone, start, dst = scenario
    fires = scheduling.next_fires(expr, zone, start=start, count=count, dst=dst)
    assert len(fires) == count
    instants = [f.utc for f in fires]
    assert instants == sorted(set(instants))  # strictly increasing, no duplicates
    assert instants[0] > start
    assert len({(f.slot, f.fold) for f in fires}) == count
    if dst == "vixie" and scheduling.is_fixed_time(expr):
        assert len({f.slot for f in fires}) == count
    for fire in fires:
        assert croniter.match(expr, fire.slot)
        if fire.note is None:  # ordinary: the wall clock shows the slot, exactly once
            assert fire.at.replace(tzinfo=None) == fire.slot
            assert fire.fold == 0
        else:
            assert fire.note.startswith("DST ")


@settings(max_examples=200, deadline=None)
@given(crons, st.datetimes(datetime(2025, 1, 1), datetime(2030, 12, 31)))
def test_slots_agree_with_croniter_in_utc(expr: str, start: datetime) -> None:
    """Without DST our slot matcher must be croniter on naive datetimes, slot for slot."""
    it = croniter(expr, start, ret_type=datetime)
    expected = [it.get_next(datetime) for _ in range(8)]
    fires = scheduling.next_fires(expr, "UTC", start=start.replace(tzinfo=UTC), count=8)
    assert [f.slot for f in fires] == expected


DST_ZONES = [z for z in ZONES if NEAR[z]]
near_transition = st.sampled_from(DST_ZONES).flatmap(
    lambda z: st.tuples(st.just(z), st.sampled_from(NEAR[z]))
)


@settings(max_examples=200, deadline=None)
@given(near_transition, _field(0, 59), _field(0, 23), st.integers(-180, 180))
def test_literal_is_the_wall_clock(
    transition: tuple[str, datetime], minutes: str, hours: str, shift: int
) -> None:
    """literal fires at every real minute whose wall time matches; vixie wildcards do too."""
    (zone, instant), expr = transition, f"{minutes} {hours} * * *"
    start = instant + timedelta(minutes=shift)
    expanded = croniter.expand(expr)[0]  # croniter's reading of the fields is the oracle
    tz, t, want = ZoneInfo(zone), start.replace(second=0, microsecond=0), list[datetime]()
    while len(want) < 6:
        t += timedelta(minutes=1)
        wall = t.astimezone(tz)
        if all(
            f == ["*"] or v in f for f, v in zip(expanded, (wall.minute, wall.hour), strict=False)
        ):
            want.append(t)
    literal = scheduling.next_fires(expr, zone, start=start, count=6, dst="literal")
    assert [f.utc for f in literal] == want
    if not scheduling.is_fixed_time(expr):
        assert scheduling.next_fires(expr, zone, start=start, count=6) == literal
    first_only = [f.utc for f in literal if f.fold == 0]  # skip: literal minus second times
    skip = scheduling.next_fires(expr, zone, start=start, count=len(first_only) + 1, dst="skip")
    assert [f.utc for f in skip][: len(first_only)] == first_only
