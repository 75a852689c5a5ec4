"""The embedded scheduler at 10,000 jobs: shared fire computations give the same fires.

Building the heap used to cost 3.5 s for 10,000 jobs (a croniter per job and a query per job);
now jobs of one (schedule, timezone, DST policy) share one computation of each fire. That is
only allowed because starting a new fire iterator after an instant and continuing the old one
give the same fires, which the property test checks across DST transitions.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from planner_operator.core import scheduling, specs
from planner_operator.core.clock import ManualClock
from planner_operator.runtime.executors.base import Executors
from planner_operator.runtime.executors.local import LocalOutbox
from planner_operator.runtime.jobrun import JobRunner
from planner_operator.runtime.scheduler import Job, Scheduler, _NextFires
from planner_operator.state.runs import RunStore
from tests.support.builders import job_spec

SCHEDULES = [
    "30 2 * * *",
    "0 2 * * *",
    "*/20 * * * *",
    "45 1,2,3 * * *",
    "0 * * * 0",
    "59 23 * * *",
]
ZONES = ["Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "UTC"]
TRANSITIONS = [datetime(2026, 3, 8, tzinfo=UTC), datetime(2026, 3, 29, tzinfo=UTC)]
TRANSITIONS += [datetime(2026, 10, 4, tzinfo=UTC), datetime(2026, 10, 25, tzinfo=UTC)]
TRANSITIONS += [datetime(2026, 11, 1, tzinfo=UTC)]


@settings(max_examples=150, deadline=None)
@given(
    schedule=st.sampled_from(SCHEDULES),
    zone=st.sampled_from(ZONES),
    dst=st.sampled_from(["vixie", "skip", "literal"]),
    day=st.sampled_from(TRANSITIONS),
    minutes=st.integers(min_value=-36 * 60, max_value=12 * 60),
    jobs=st.integers(min_value=1, max_value=3),
)
def test_shared_fires_are_the_fires_of_one_iterator(
    schedule: str, zone: str, dst: specs.DstPolicy, day: datetime, minutes: int, jobs: int
) -> None:
    start = day + timedelta(minutes=minutes, seconds=17)
    expected = list(
        itertools.islice(scheduling.iter_fires(schedule, zone, start=start, dst=dst), 8)
    )
    spec = specs.JobSpec.from_dict(job_spec(schedule, timezone=zone, dst=dst))
    shared = _NextFires(size=4)  # small: evictions must not change the answers either
    cursors = [start] * jobs
    seen: list[list[scheduling.FireTime]] = [[] for _ in range(jobs)]
    for _ in expected:
        for j in range(jobs):  # the jobs of one series ask in turn, as they pop off the heap
            fire = shared.after(spec, cursors[j])
            assert fire is not None
            seen[j].append(fire)
            cursors[j] = fire.utc
    assert all(s == expected for s in seen)


class World:
    def __init__(self, tmp: Path, start: datetime) -> None:
        self.clock = ManualClock(start)
        self.runs = RunStore(tmp / "runs.db")
        self.outbox = LocalOutbox(tmp / "outbox.db")
        self.runner = JobRunner(self.runs, Executors(chat=self.outbox, workflow=self.outbox))
        self.jobs: list[Job] = []

    def scheduler(self) -> Scheduler:
        return Scheduler(self.runner, lambda: list(self.jobs), clock=self.clock)

    def close(self) -> None:
        self.runs.close()
        self.outbox.close()


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    w = World(tmp_path, datetime(2026, 3, 7, 12, 0, 30, tzinfo=UTC))
    yield w
    w.close()


def test_ten_thousand_jobs_share_one_computation_per_schedule(world: World) -> None:
    world.jobs = [Job(f"a/jobs/j{i}", job_spec(f"{i % 60} * * * *")) for i in range(10_000)]
    scheduler = world.scheduler()
    cpu = time.process_time()
    scheduler.reload()
    spent = time.process_time() - cpu
    assert len(scheduler.heap) == 10_000
    assert scheduler._next.started == 60  # one per distinct schedule, not one per job
    assert spent < 1.5  # 3.5 s before; about 0.15 s on the 2-core bench machine
    world.clock.set(datetime(2026, 3, 7, 12, 1, tzinfo=UTC))
    due = scheduler.due(world.clock.now())
    assert len(due) == 167 and {f.at for _, f in due} == {datetime(2026, 3, 7, 12, 1, tzinfo=UTC)}
    assert len(scheduler.heap) == 10_000  # each fired job queued its next hour
    assert scheduler.next_at() == datetime(2026, 3, 7, 12, 2, tzinfo=UTC)
    assert scheduler._next.started == 60  # the next hour continued the same iterator


def test_a_restart_resumes_every_job_from_its_own_last_slot(world: World) -> None:
    """One read of every job's last run; jobs that share a last slot share the catch-up."""
    world.jobs = [Job(f"a/jobs/j{i}", job_spec("0 * * * *")) for i in range(300)]
    for i in range(0, 300, 3):  # a third last ran at 09:00: 10:00, 11:00 and 12:00 were missed
        slot = "2026-03-07T09:00"
        world.runs.start(key=f"a/jobs/j{i}", kind="job", run_id="r", origin="x", slot=slot)
    scheduler = world.scheduler()
    scheduler.reload()
    catch_ups = [e for e in scheduler.heap if not e.advances]
    assert len(catch_ups) == 100 and {e.fire.at.hour for e in catch_ups} == {12}
    assert scheduler.counters["a/jobs/j0"].missed == 2  # 10:00, 11:00 skipped; 12:00 caught up
    assert "a/jobs/j1" not in scheduler.counters
    assert scheduler._next.started == 2  # from 09:00 (shared by 100 jobs) and from now


def test_an_unchanged_job_keeps_its_entry_and_a_changed_one_is_requeued(world: World) -> None:
    world.jobs = [Job("a/jobs/x", job_spec("5 * * * *")), Job("a/jobs/y", job_spec("7 * * * *"))]
    scheduler = world.scheduler()
    scheduler.reload()
    before = {e.job.key: e for e in scheduler.heap}
    # new objects with equal specs: y is unchanged, x changed its schedule
    world.jobs = [Job("a/jobs/x", job_spec("9 * * * *")), Job("a/jobs/y", job_spec("7 * * * *"))]
    scheduler.reload()
    after = {e.job.key: e for e in scheduler.heap}
    assert after["a/jobs/y"] is before["a/jobs/y"]
    assert after["a/jobs/x"].fire.at.minute == 9 and len(scheduler.heap) == 2
