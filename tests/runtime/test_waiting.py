"""Runs their platform suspended: ``waiting`` in run history, polled (durably) to their end.

The platform here is the worker tests' ``Recorder`` (both executor Protocols, idempotent by run
key) told what to answer; the real Mastra server's suspend, resume and cancel are in
``tests/runtime/test_mastra_waiting.py``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from planner_operator.core import clock as clock_mod
from planner_operator.core import times
from planner_operator.errors import RetryableError, RunCancelled, RunWaiting
from planner_operator.runtime import waiting
from planner_operator.runtime.jobrun import Fire, JobRunner
from planner_operator.runtime.worker import Routes, Worker, WorkerConfig
from planner_operator.state.inbox import Inbox
from planner_operator.state.runs import RunStore
from tests.runtime.test_worker import Rig, make_rig
from tests.support.builders import job_spec
from tests.support.webhook_env import GITHUB_KEY

AWAITING = {"steps": ["approve"], "suspend_payload": {"approve": {"ask": "ship it?"}}}


def suspended() -> RunWaiting:
    return RunWaiting("suspended at step approve", backend="mastra", awaiting=AWAITING)


@pytest.fixture
def clock() -> clock_mod.ManualClock:
    return clock_mod.ManualClock()


@pytest.fixture
def rig(tmp_path: Path, clock: clock_mod.ManualClock) -> Iterator[Rig]:
    r = make_rig(tmp_path)
    r.inbox.clock = r.runs.clock = r.worker.clock = r.worker.waiting.clock = clock
    yield r
    r.inbox.close()
    r.runs.close()


def put_push(rig: Rig, delivery_id: str = "g1") -> None:
    body = json.dumps({"ref": "refs/heads/main"}).encode()
    rig.put(delivery_id, body=body, source="local", trigger_key=GITHUB_KEY)


def test_a_suspended_workflow_is_waiting_and_burns_no_attempt(rig: Rig) -> None:
    rig.recorder.fail = [suspended()]
    put_push(rig)
    assert rig.worker.drain() == 1
    [run] = rig.runs.list(key=GITHUB_KEY)
    assert run.status == "waiting" and run.finished_at is None
    assert run.result["awaiting"] == AWAITING and run.result["polls"] == 0
    assert run.result["call"]["context"]["run_key"] == "g1"
    assert "suspended at step approve" in (run.error or "")
    delivery = rig.inbox.get("g1")
    assert delivery is not None and delivery.status == "done" and delivery.attempts == 1
    assert rig.worker.drain() == 0 and rig.recorder.keys == ["g1"]  # not due: no call


def test_polls_back_off_then_settle_the_run_with_its_result(
    rig: Rig, clock: clock_mod.ManualClock
) -> None:
    rig.recorder.fail = [suspended()] * 4
    put_push(rig)
    rig.worker.drain()
    [run] = rig.runs.list(key=GITHUB_KEY)
    since = times.parse(run.result["waiting_since"])
    pauses = []
    for _ in range(2):
        due = times.parse(run.result["next_poll_at"])
        clock.set(due)
        assert rig.worker.poll_waiting() == 1
        [run] = rig.runs.list(key=GITHUB_KEY)
        assert run.status == "waiting" and run.result["waiting_since"] == times.stored(since)
        pauses.append((times.parse(run.result["next_poll_at"]) - due).total_seconds())
    assert pauses == [5.0, 5.0]  # the first polls: 5 s apart, until half the wait is more
    clock.advance(hours=1)
    assert rig.worker.poll_waiting() == 1
    [run] = rig.runs.list(key=GITHUB_KEY)
    assert run.status == "waiting" and run.result["polls"] == 3
    left = times.parse(run.result["next_poll_at"]) - clock.now()
    assert left == timedelta(seconds=300)  # half of an hour waited, capped at 300 s
    clock.advance(seconds=300)
    assert rig.worker.poll_waiting() == 1
    [run] = rig.runs.list(key=GITHUB_KEY)
    assert run.status == "succeeded" and run.result == {
        "ok": True,
        "workflow": "post-deploy-checks",
    }
    assert run.error is None and run.finished_at is not None
    assert run.trigger_result["success"] and run.trigger_result["workflow_executed"]
    assert run.trigger_result["workflow_data"]["result"] == run.result
    assert rig.recorder.keys == ["g1"] * 5  # every poll is the same call: one remote run
    assert rig.worker.poll_waiting() == 0


def test_a_redelivered_event_while_waiting_starts_no_second_attempt(rig: Rig) -> None:
    rig.recorder.fail = [suspended()]
    put_push(rig)
    rig.worker.drain()
    with rig.inbox._db.transaction() as tx:  # its settle lost (a crash): the delivery is back
        tx.execute("UPDATE deliveries SET status = 'failed' WHERE id = 'g1'")
    rig.make_due("g1")
    assert rig.worker.drain() == 1
    assert [r.status for r in rig.runs.list(key=GITHUB_KEY)] == ["waiting"]
    assert rig.recorder.keys == ["g1"]


def test_a_poll_that_fails_transiently_waits_on_and_a_cancel_ends_it_cancelled(
    rig: Rig, clock: clock_mod.ManualClock
) -> None:
    rig.recorder.fail = [
        suspended(),
        RetryableError("connection refused", backend="mastra"),
        RunCancelled("run po-1 was cancelled in Mastra", backend="mastra"),
    ]
    put_push(rig)
    rig.worker.drain()
    clock.advance(seconds=5)
    assert rig.worker.poll_waiting() == 1
    [run] = rig.runs.list(key=GITHUB_KEY)
    assert run.status == "waiting" and run.attempt == 1  # no attempt counted
    assert "poll failed, polling on: mastra: connection refused" in (run.error or "")
    assert run.result["awaiting"] == AWAITING  # still what it waits for
    clock.advance(seconds=5)
    rig.worker.poll_waiting()
    [run] = rig.runs.list(key=GITHUB_KEY)
    assert run.status == "cancelled" and "cancelled in Mastra" in (run.error or "")
    assert run.trigger_result["success"] is False


def test_past_the_maximum_wait_the_run_fails_saying_why(
    tmp_path: Path, clock: clock_mod.ManualClock
) -> None:
    rig = make_rig(tmp_path, waiting=waiting.WaitPolicy(max_wait=3600))
    rig.inbox.clock = rig.runs.clock = rig.worker.clock = rig.worker.waiting.clock = clock
    rig.recorder.fail = [suspended(), suspended()]
    put_push(rig)
    rig.worker.drain()
    clock.advance(hours=2)
    rig.worker.poll_waiting()
    [run] = rig.runs.list(key=GITHUB_KEY)
    assert run.status == "failed"
    assert "gave up after waiting 2.0 h (PLANNER_WAITING_MAX)" in (run.error or "")
    assert "resume or cancel it there" in (run.error or "")


def test_polling_resumes_from_run_history_after_a_restart(
    rig: Rig, tmp_path: Path, clock: clock_mod.ManualClock
) -> None:
    rig.recorder.fail = [suspended()]
    put_push(rig)
    rig.worker.drain()
    rig.worker.inbox.close()
    rig.runs.close()
    with (
        Inbox(tmp_path / "inbox.db", clock=clock) as inbox,
        RunStore(tmp_path / "runs.db", clock=clock) as runs,
    ):
        again = Worker(
            inbox=inbox,
            routes=Routes(rig.settings),
            runs=runs,
            executors=rig.recorder.executors(),
            config=WorkerConfig(),
        )
        clock.advance(seconds=10)
        assert again.drain() == 0  # no delivery to run again: the poll finishes the run
        [run] = runs.list(key=GITHUB_KEY)
        assert run.status == "succeeded"
    assert rig.recorder.keys == ["g1", "g1"]


def test_a_job_run_waits_too_and_the_worker_polls_it(tmp_path: Path) -> None:
    clock = clock_mod.ManualClock()
    rig = make_rig(tmp_path)
    rig.runs.clock = rig.worker.clock = rig.worker.waiting.clock = clock
    runner = JobRunner(rig.runs, rig.recorder.executors(), clock=clock)
    spec = job_spec("0 9 * * 1", action={"workflow": {"id": "report", "input": {"n": 1}}})
    rig.recorder.fail = [suspended()]
    key = "sales-agent/jobs/weekly"
    answer = runner.run(key, spec, runner.fire_now(spec), run_id="r1", origin="scheduler")
    assert answer["waiting"] == AWAITING
    [run] = rig.runs.list(key=key)
    assert run.status == "waiting" and run.result["call"]["input"] == {"n": 1}
    clock.advance(seconds=5)
    assert rig.worker.poll_waiting() == 1
    [run] = rig.runs.list(key=key)
    assert run.status == "succeeded" and run.trigger_result is None
    assert rig.recorder.keys[0] == rig.recorder.keys[1]  # the same run key: one remote run


def test_a_cancelled_job_run_is_cancelled_not_failed(tmp_path: Path) -> None:
    with RunStore(tmp_path / "runs.db") as runs:
        rig = make_rig(tmp_path / "r")
        runner = JobRunner(runs, rig.recorder.executors())
        spec = job_spec("0 9 * * 1", action={"workflow": {"id": "report", "input": {}}})
        rig.recorder.fail = [RunCancelled("cancelled in Mastra", backend="mastra")]
        fire = Fire.of(spec, clock_mod.ManualClock().now())
        with pytest.raises(RunCancelled):
            runner.run("a/jobs/j", spec, fire, run_id="r1", origin="scheduler")
        [run] = runs.list(key="a/jobs/j")
        assert run.status == "cancelled" and run.error == "mastra: cancelled in Mastra"


def test_the_poll_policy_backs_off_to_half_the_wait_and_caps() -> None:
    policy = waiting.WaitPolicy(cap=300)
    assert [policy.delay(w) for w in (0, 8, 20, 100, 10_000)] == [5, 5, 10, 50, 300]


def test_every_waiting_run_is_polled_however_many_there_are(tmp_path: Path) -> None:
    rig = make_rig(tmp_path)
    rows = []
    for n in range(5):
        row = rig.runs.start(key=f"a/jobs/j{n}", kind="job", run_id="r", origin="scheduler")
        made = waiting.call(workflow="w", input={}, context={"run_key": f"k{n}"})
        rig.runs.wait(row, result={"awaiting": None, "next_poll_at": "", "call": made})
        rows.append(row)
    poller = waiting.Poller(rig.runs, rig.recorder.executors())
    assert poller.poll(page=2) == 5
    assert rig.recorder.keys == [f"k{n}" for n in range(5)]  # oldest first
    assert all(rig.runs.get(r).status == "succeeded" for r in rows)  # type: ignore[union-attr]
