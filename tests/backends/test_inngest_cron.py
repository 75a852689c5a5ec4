"""Crons we send Inngest are ones its scheduler (robfig/cron) accepts and reads as we do."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from planner_operator.backends.inngest.cron import for_robfig
from planner_operator.backends.inngest.sdk import cron_of
from planner_operator.core import scheduling
from planner_operator.core.settings import Settings
from planner_operator.errors import ScheduleError
from planner_operator.reconcile.engine import SourceSpec, reconcile
from tests.fakes import robfig_cron
from tests.fakes.inngest_server import FakeInngest
from tests.support.inngest_serve import inngest_env, operator_server, wait_served

DAYS = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"]


def robfig_days(cron: str) -> frozenset[int]:
    schedule = robfig_cron.parse(cron)
    return frozenset(d for d in range(7) if schedule.dow & (1 << d))


@pytest.mark.parametrize(
    ("schedule", "sent"),
    [
        ("0 9 * * 7", "0 9 * * 0"),
        ("0 9 * * 1-7", "0 9 * * 0-6"),
        ("0 9 * * 0-7", "0 9 * * 0-6"),
        ("0 9 * * fri-sun", "0 9 * * 0,5-6"),
        ("0 9 * * 5/2", "0 9 * * 0,5"),  # Vixie: 5-7 step 2; robfig would read 5-6 step 2
        ("0 9 * * 1,3,7", "0 9 * * 0-1,3"),
        ("0 9 * * mon-fri", "0 9 * * mon-fri"),  # already robfig's: sent as written
        ("0 15 * * fri", "0 15 * * fri"),
        ("0 9 * * *", "0 9 * * *"),
        ("0 9 1 * */2", "0 9 1 * */2"),
    ],
)
def test_day_of_week_is_sent_as_robfig_reads_it(schedule: str, sent: str) -> None:
    assert for_robfig(schedule) == sent
    assert robfig_days(sent) == scheduling.days_of_week(schedule)


_day = st.one_of(st.integers(0, 7).map(str), st.sampled_from(DAYS))
_item = st.one_of(
    _day,
    st.tuples(_day, _day).map(lambda t: f"{t[0]}-{t[1]}"),
    st.tuples(_day, _day, st.integers(1, 8)).map(lambda t: f"{t[0]}-{t[1]}/{t[2]}"),
    st.tuples(_day, st.integers(1, 8)).map(lambda t: f"{t[0]}/{t[1]}"),
    st.integers(1, 8).map(lambda n: f"*/{n}"),
)


@given(st.lists(_item, min_size=1, max_size=4).map(",".join))
def test_every_valid_day_of_week_field_syncs_and_means_the_same(field: str) -> None:
    schedule = f"0 9 1 * {field}"
    try:
        scheduling.validate_schedule(schedule)
    except ScheduleError:
        return  # the loader refuses it before anything is sent
    sent = for_robfig(schedule)
    assert robfig_days(f"TZ=UTC {sent}") == scheduling.days_of_week(schedule)
    # '*' (and only '*') makes robfig AND the day fields, as the operator's scheduler does
    assert bool(robfig_cron.parse(sent).dow & robfig_cron.STAR_BIT) == (field == "*")


def test_sunday_as_7_syncs_fires_and_is_not_drift(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    agents = tmp_path / "agents"
    agents.mkdir()
    (agents / "a.yaml").write_text(
        "name: A\nplanner:\n  jobs:\n"
        "    - name: sunday\n      schedule: '0 9 * * 7'\n      action: {chat: {template: hi}}\n"
        "    - name: week\n      schedule: '0 8 * * 1-7'\n      action: {workflow: {id: wf}}\n"
    )
    settings = Settings.resolve(state_dir=tmp_path / "state", env={})
    with FakeInngest() as fake:
        env = inngest_env(fake, monkeypatch)
        with operator_server(settings, env) as origin:
            monkeypatch.setenv("INNGEST_SERVE_ORIGIN", origin)
            outcome = reconcile(SourceSpec(path=agents), settings)
            assert outcome.applied is not None and outcome.applied.ok, outcome.applied
            crons = {
                f["id"]: [t["cron"] for t in f["config"]["triggers"]]
                for f in fake.functions("planner-operator")
            }
            assert crons == {
                "planner-operator-a--sunday": ["TZ=UTC 0 9 * * 0"],
                "planner-operator-a--week": ["TZ=UTC 0 8 * * 0-6"],
            }
            assert cron_of({"schedule": "0 9 * * 7"}) == "TZ=UTC 0 9 * * 0"
            again = reconcile(SourceSpec(path=agents), settings, dry_run=True)
            assert not again.plan.has_changes, [c.reason for c in again.plan.actionable]
            wait_served(origin)
            sunday = datetime(2026, 11, 22, 9, tzinfo=UTC)
            assert sunday.weekday() == 6
            [slot] = fake.next_slots("planner-operator-a--sunday", sunday - timedelta(days=7), 1)
            assert slot == sunday
            assert fake.fire_cron("planner-operator-a--sunday", sunday).status == "completed"


SPRING = {
    "America/New_York": datetime(2026, 3, 7, tzinfo=UTC),
    "Europe/Berlin": datetime(2026, 3, 28, tzinfo=UTC),
}
AUTUMN = {
    "America/New_York": datetime(2026, 10, 31, tzinfo=UTC),
    "Europe/Berlin": datetime(2026, 10, 24, tzinfo=UTC),
}


def robfig_fires(cron: str, after: datetime, count: int) -> list[datetime]:
    """When Inngest's cron service fires ``cron``: robfig's ``Next``, chained."""
    return robfig_cron.parse(cron, robfig_cron.SCHEDULER).following(after, count)


@pytest.mark.parametrize("zone", sorted(SPRING))
@pytest.mark.parametrize("schedule", ["30 2 * * *", "0 2 * * *", "45 2 * * 0", "*/20 * * * *"])
@pytest.mark.parametrize("dst", ["vixie", "skip", "literal"])
def test_predicted_spring_forward_fires_are_what_inngest_fires(
    zone: str, schedule: str, dst: scheduling.DstPolicy
) -> None:
    """Issue 16.6: under ``vixie`` next-runs predicted a fire at the jump that robfig never
    makes. Predictions for Inngest now equal robfig's own schedule across the gap."""
    start = SPRING[zone]
    predicted = scheduling.next_fires(
        schedule, zone, start=start, count=12, dst=dst, backend="inngest"
    )
    cron = cron_of({"schedule": schedule, "timezone": zone})
    assert [f.utc for f in predicted] == robfig_fires(cron, start, 12)


@pytest.mark.parametrize("zone", sorted(AUTUMN))
@pytest.mark.parametrize("schedule", ["30 1 * * *", "30 2 * * *", "*/30 * * * *"])
@pytest.mark.parametrize("dst", ["vixie", "skip", "literal"])
def test_predicted_fall_back_fires_are_the_runs_inngest_fires_make(
    zone: str, schedule: str, dst: scheduling.DstPolicy
) -> None:
    """robfig fires a repeated wall time twice; the job runner records the second as skipped
    unless the policy (``literal``, or ``vixie`` on a wildcard) wants both: what is predicted
    is exactly the fires that run."""
    start = AUTUMN[zone]
    predicted = scheduling.next_fires(
        schedule, zone, start=start, count=60, dst=dst, backend="inngest"
    )
    cron = cron_of({"schedule": schedule, "timezone": zone})
    fired = robfig_fires(cron, start, 80)
    both = dst == "literal" or (dst == "vixie" and not scheduling.is_fixed_time(schedule))
    walls = [f.astimezone(ZoneInfo(zone)).replace(tzinfo=None) for f in fired]
    ran = [f for i, f in enumerate(fired) if both or walls[i] not in walls[:i]]
    assert [f.utc for f in predicted] == ran[:60]


def test_vixie_on_inngest_is_skip_for_fixed_times_only() -> None:
    assert scheduling.effective_dst("vixie", "30 2 * * *", "inngest") == "skip"
    assert scheduling.effective_dst("vixie", "30 2 * * *", "local") == "vixie"
    assert scheduling.effective_dst("vixie", "*/15 * * * *", "inngest") == "vixie"
    assert scheduling.effective_dst("literal", "30 2 * * *", "inngest") == "literal"
    fires = scheduling.next_fires(
        "30 2 * * *", "America/New_York", start=SPRING["America/New_York"], count=2
    )
    assert fires[1].note and "fired at 03:00 (vixie)" in fires[1].note  # embedded: it fires
