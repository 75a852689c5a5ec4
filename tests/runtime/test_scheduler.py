"""The embedded scheduler with an injectable clock: fires, DST, catch-up, overlap, restarts."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from planner_operator.core.clock import ManualClock
from planner_operator.runtime.executors.base import Executors
from planner_operator.runtime.executors.local import LocalOutbox
from planner_operator.runtime.jobrun import JobRunner
from planner_operator.runtime.scheduler import Job, Scheduler
from planner_operator.state.runs import RunStore
from tests.support.builders import job_spec


class World:
    def __init__(self, tmp: Path, start: datetime) -> None:
        self.tmp = tmp
        self.clock = ManualClock(start)
        self.jobs: list[Job] = []
        self.runs = RunStore(tmp / "runs.db")
        self.outbox = LocalOutbox(tmp / "outbox.db")
        self.runner = JobRunner(self.runs, Executors(chat=self.outbox, workflow=self.outbox))
        self.scheduler = self.new_scheduler()

    def new_scheduler(self) -> Scheduler:
        return Scheduler(self.runner, lambda: list(self.jobs), clock=self.clock)

    def run_until(self, end: datetime) -> list[str]:
        """Step the clock from fire to fire, firing synchronously; returns fired slots."""
        fired = []
        while (at := self.scheduler.next_at()) is not None and at <= end:
            self.clock.set(max(self.clock.now(), at))
            for job, fire in self.scheduler.due(self.clock.now()):
                self.scheduler.fire(job, fire)
                fired.append(f"{job.key}@{fire.at.isoformat()}")
        self.clock.set(end)
        return fired

    def close(self) -> None:
        self.scheduler.close()
        self.runs.close()
        self.outbox.close()


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    w = World(tmp_path, datetime(2026, 3, 7, 12, 0, tzinfo=UTC))
    yield w
    w.close()


def ny(schedule: str, **extra: Any) -> dict[str, Any]:
    return job_spec(schedule, timezone="America/New_York", **extra)


def test_fires_each_slot_once_through_run_history(world: World) -> None:
    world.jobs = [Job("a/jobs/daily", ny("0 9 * * *"))]
    world.scheduler.reload()
    fired = world.run_until(datetime(2026, 3, 10, 0, 0, tzinfo=UTC))
    assert fired == [  # the clock starts at 07:00 EST on 2026-03-07
        "a/jobs/daily@2026-03-07T09:00:00-05:00",
        "a/jobs/daily@2026-03-08T09:00:00-04:00",
        "a/jobs/daily@2026-03-09T09:00:00-04:00",
    ]
    runs = world.runs.list(key="a/jobs/daily")
    assert [r.slot for r in reversed(runs)] == [
        "2026-03-07T09:00",
        "2026-03-08T09:00",
        "2026-03-09T09:00",
    ]
    assert all(r.status == "succeeded" and r.origin == "scheduler" for r in runs)
    assert len(world.outbox.threads()) == 3


def test_spring_gap_fires_once_right_after_jump(world: World) -> None:
    world.jobs = [Job("a/jobs/gap", ny("30 2 * * *"))]
    world.scheduler.reload()
    fired = world.run_until(datetime(2026, 3, 9, 0, 0, tzinfo=UTC))
    assert fired == ["a/jobs/gap@2026-03-08T03:00:00-04:00"]


def test_fall_back_repeat_fires_once_under_vixie_and_twice_literal(tmp_path: Path) -> None:
    w = World(tmp_path, datetime(2026, 10, 31, 12, 0, tzinfo=UTC))
    try:
        w.jobs = [
            Job("a/jobs/vixie", ny("30 1 * * *")),
            Job("a/jobs/literal", ny("30 1 * * *", dst="literal")),
        ]
        w.scheduler.reload()
        fired = w.run_until(datetime(2026, 11, 1, 12, 0, tzinfo=UTC))
        assert sorted(fired) == [
            "a/jobs/literal@2026-11-01T01:30:00-04:00",
            "a/jobs/literal@2026-11-01T01:30:00-05:00",
            "a/jobs/vixie@2026-11-01T01:30:00-04:00",
        ]
    finally:
        w.close()


def test_restart_resumes_and_catchup_latest_runs_most_recent_missed_slot(world: World) -> None:
    world.jobs = [Job("a/jobs/hourly", job_spec("0 * * * *"))]
    world.scheduler.reload()
    world.run_until(datetime(2026, 3, 7, 14, 30, tzinfo=UTC))  # fired 13:00, 14:00
    world.scheduler.close()
    world.clock.set(datetime(2026, 3, 7, 19, 30, tzinfo=UTC))  # down 15:00..19:00
    world.scheduler = world.new_scheduler()
    world.scheduler.reload()
    fired = world.run_until(datetime(2026, 3, 7, 20, 30, tzinfo=UTC))
    assert fired == [
        "a/jobs/hourly@2026-03-07T19:00:00+00:00",  # the latest missed slot, once
        "a/jobs/hourly@2026-03-07T20:00:00+00:00",
    ]
    counters = world.runs.counters()["a/jobs/hourly"]
    assert counters.missed == 4  # 15, 16, 17, 18 skipped; 19 caught up
    assert counters.fires == 4


def test_catchup_none_skips_missed_slots(world: World) -> None:
    world.jobs = [Job("a/jobs/hourly", job_spec("0 * * * *", catchup="none"))]
    world.scheduler.reload()
    world.run_until(datetime(2026, 3, 7, 13, 30, tzinfo=UTC))
    world.scheduler.close()
    world.clock.set(datetime(2026, 3, 7, 16, 30, tzinfo=UTC))
    world.scheduler = world.new_scheduler()
    world.scheduler.reload()
    fired = world.run_until(datetime(2026, 3, 7, 17, 30, tzinfo=UTC))
    assert fired == ["a/jobs/hourly@2026-03-07T17:00:00+00:00"]
    assert world.runs.counters()["a/jobs/hourly"].missed == 3


def test_overlap_skip_counts_fire_while_previous_run_is_running(tmp_path: Path) -> None:
    release = threading.Event()

    class Slow:
        def start_thread(self, *, agent: str, message: str, context: Any) -> str:
            release.wait(5)
            return "t"

        def run(self, *, workflow: str, input: Any, context: Any) -> Any:
            return None

    with RunStore(tmp_path / "runs.db") as runs:
        clock = ManualClock(datetime(2026, 3, 7, 12, 0, tzinfo=UTC))
        job = Job("a/jobs/min", job_spec("* * * * *"))
        sched = Scheduler(JobRunner(runs, Executors(Slow(), Slow())), lambda: [job], clock=clock)
        sched.reload()
        [(j, first)] = sched.due(clock.advance(minutes=1))
        worker = threading.Thread(target=sched.fire, args=(j, first))
        worker.start()
        while "a/jobs/min" not in sched.running:
            pass
        [(j2, second)] = sched.due(clock.advance(minutes=1))
        assert sched.fire(j2, second) is None  # skipped: previous still running
        release.set()
        worker.join()
        assert sched.counters["a/jobs/min"].overlap_skipped == 1
        sched.close()


def test_reload_applies_changes_and_removals(world: World) -> None:
    world.jobs = [Job("a/jobs/x", job_spec("0 13 * * *")), Job("a/jobs/y", job_spec("0 14 * * *"))]
    world.scheduler.reload()
    world.jobs = [Job("a/jobs/x", job_spec("30 13 * * *"))]  # x changed, y removed
    world.scheduler.reload()
    fired = world.run_until(datetime(2026, 3, 7, 15, 0, tzinfo=UTC))
    assert fired == ["a/jobs/x@2026-03-07T13:30:00+00:00"]
    world.jobs = [Job("a/jobs/x", job_spec("30 13 * * *", enabled=False))]
    world.scheduler.reload()
    assert world.scheduler.next_at() is None


def test_heap_holds_one_entry_per_job_for_many_jobs(world: World) -> None:
    world.jobs = [Job(f"a/jobs/j{i}", job_spec(f"{i % 60} * * * *")) for i in range(2000)]
    world.scheduler.reload()
    assert len(world.scheduler.heap) == 2000
    assert world.scheduler.next_at() == datetime(2026, 3, 7, 12, 1, tzinfo=UTC)


def test_each_fire_is_logged_with_its_slot_and_run(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    world.jobs = [Job("a/jobs/daily", ny("0 9 * * *"))]
    world.scheduler.reload()
    with caplog.at_level("INFO", logger="planner_operator"):
        world.run_until(datetime(2026, 3, 8, 0, 0, tzinfo=UTC))
    [line] = [r.getMessage() for r in caplog.records if "fire for" in r.getMessage()]
    assert line.startswith("a/jobs/daily: fire for 2026-03-07 09:00:00 (sched-")
