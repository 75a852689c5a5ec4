"""Job runs on real stores: DST de-duplication by slot, rendering, recording, idempotency."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from planner_operator.errors import NotFound, RetryableError
from planner_operator.runtime.executors import actions
from planner_operator.runtime.executors.base import Executors
from planner_operator.runtime.executors.local import LocalOutbox
from planner_operator.runtime.jobrun import Fire, JobRunner
from planner_operator.state.runs import RunStore
from tests.support.builders import job_spec

KEY = "job-application-agent/jobs/morning-job-check"


@pytest.fixture
def runner(tmp_path: Path) -> Iterator[JobRunner]:
    with RunStore(tmp_path / "runs.db") as runs, LocalOutbox(tmp_path / "outbox.db") as outbox:
        yield JobRunner(runs, Executors(chat=outbox, workflow=outbox))


def ny(schedule: str, dst: str = "vixie", **extra: Any) -> dict[str, Any]:
    return job_spec(schedule, timezone="America/New_York", dst=dst, **extra)


# 2026-11-01 01:30 happens twice in New York: 05:30Z (EDT) and 06:30Z (EST)
FIRST = datetime(2026, 11, 1, 5, 30, tzinfo=UTC)
SECOND = datetime(2026, 11, 1, 6, 30, tzinfo=UTC)


def test_second_fire_of_repeated_slot_is_skipped_under_vixie(runner: JobRunner) -> None:
    spec = ny("30 1 * * *")
    first = runner.run(KEY, spec, Fire.of(spec, FIRST), run_id="r1", origin="inngest")
    second = runner.run(KEY, spec, Fire.of(spec, SECOND), run_id="r2", origin="inngest")
    assert "thread_id" in first
    assert (
        "DST repeat: slot 2026-11-01T01:30 already fired at 2026-11-01T05:30:00Z as run r1"
        in second["skipped"]
    )
    runs = runner.runs.list(key=KEY)
    assert [r.status for r in runs] == ["skipped", "succeeded"]
    assert runs[1].slot == "2026-11-01T01:30"


def test_literal_policy_runs_both_occurrences(runner: JobRunner) -> None:
    spec = ny("30 1 * * *", dst="literal")
    runner.run(KEY, spec, Fire.of(spec, FIRST), run_id="r1", origin="inngest")
    runner.run(KEY, spec, Fire.of(spec, SECOND), run_id="r2", origin="inngest")
    assert [r.status for r in runner.runs.list(key=KEY)] == ["succeeded", "succeeded"]


def test_wildcard_schedule_follows_elapsed_time_under_vixie(runner: JobRunner) -> None:
    spec = ny("*/30 * * * *")
    runner.run(KEY, spec, Fire.of(spec, FIRST), run_id="r1", origin="inngest")
    runner.run(KEY, spec, Fire.of(spec, SECOND), run_id="r2", origin="inngest")
    assert [r.status for r in runner.runs.list(key=KEY)] == ["succeeded", "succeeded"]


def test_retry_of_same_run_is_not_a_duplicate(runner: JobRunner) -> None:
    spec = ny("30 1 * * *")
    fire = Fire.of(spec, FIRST)
    assert runner.claim(KEY, fire, "r1") is None
    assert runner.claim(KEY, fire, "r1") is None  # same run again (step re-invocation, retry)


def test_rerun_of_a_fire_runs_again_under_a_new_run_key(runner: JobRunner) -> None:
    """Inngest's Rerun/Replay: the same scheduled fire (same event) under a new run id."""
    spec = ny("30 1 * * *")
    fire = Fire.of(spec, FIRST)
    first = runner.run(KEY, spec, fire, run_id="r1", origin="inngest")
    again = runner.run(KEY, spec, fire, run_id="r1-rerun", origin="inngest")
    assert "skipped" not in again and again != first  # the outbox did not dedupe it away
    assert [r.status for r in runner.runs.list(key=KEY)] == ["succeeded", "succeeded"]
    outbox = runner.executors.chat
    assert isinstance(outbox, LocalOutbox)
    assert sorted(t["context"]["run_key"] for t in outbox.threads()) == [
        f"{KEY}@2026-11-01T01:30",
        f"{KEY}@2026-11-01T01:30:rerun:r1-rerun",
    ]
    # the other occurrence of the repeated wall time is still a repeat, rerun or not
    assert (
        "DST repeat"
        in runner.run(KEY, spec, Fire.of(spec, SECOND), run_id="r2", origin="inngest")["skipped"]
    )


class Flaky:
    """A chat platform that fails ``failures`` times (retryably), then starts threads."""

    def __init__(self, failures: int, error: Exception | None = None) -> None:
        self.failures = failures
        self.error = error or RetryableError("platform answered 503", backend="chat")
        self.calls = 0

    def start_thread(self, *, agent: str, message: str, context: Any) -> str:
        self.calls += 1
        if self.calls <= self.failures:
            raise self.error
        return f"thread-{self.calls}"

    def run(self, *, workflow: str, input: Any, context: Any) -> Any:
        return self.start_thread(agent="", message="", context=context)


def test_attempts_of_a_durable_run_share_one_row_that_ends(tmp_path: Path) -> None:
    with RunStore(tmp_path / "runs.db") as runs:
        flaky = Flaky(failures=2)
        runner = JobRunner(runs, Executors(chat=flaky, workflow=flaky))
        spec = job_spec()
        fire = Fire.of(spec, FIRST)
        for attempt in (0, 1):
            started = runner.start(KEY, spec, fire, run_id="inn-1", origin="inngest")
            assert not isinstance(started, str)
            with pytest.raises(RetryableError):
                runner.execute(started, attempt=attempt, final=False)
            [run] = runs.list(key=KEY)
            assert run.status == "running" and run.attempt == attempt
            assert (
                run.error == f"attempt {attempt + 1} failed, retrying: chat: platform answered 503"
            )
        started = runner.start(KEY, spec, fire, run_id="inn-1", origin="inngest")
        assert not isinstance(started, str)
        assert runner.execute(started, attempt=2, final=False) == {"thread_id": "thread-3"}
        [run] = runs.list(key=KEY)
        assert (run.status, run.attempt, run.error) == ("succeeded", 2, None)


def test_permanent_error_ends_a_durable_run_at_once(tmp_path: Path) -> None:
    with RunStore(tmp_path / "runs.db") as runs:
        gone = Flaky(failures=9, error=NotFound("POST /chat answered 404", backend="executor"))
        runner = JobRunner(runs, Executors(chat=gone, workflow=gone))
        spec = job_spec()
        started = runner.start(KEY, spec, Fire.of(spec, FIRST), run_id="inn-2", origin="inngest")
        assert not isinstance(started, str)
        with pytest.raises(NotFound):
            runner.execute(started, attempt=0, final=False)
        [run] = runs.list(key=KEY)
        assert run.status == "failed" and run.error == "executor: POST /chat answered 404"


def test_last_attempt_failure_ends_the_run(tmp_path: Path) -> None:
    with RunStore(tmp_path / "runs.db") as runs:
        down = Flaky(failures=9)
        runner = JobRunner(runs, Executors(chat=down, workflow=down))
        spec = job_spec()
        started = runner.start(KEY, spec, Fire.of(spec, FIRST), run_id="inn-3", origin="inngest")
        assert not isinstance(started, str)
        with pytest.raises(RetryableError):
            runner.execute(started, attempt=3, final=True)
        [run] = runs.list(key=KEY)
        assert (run.status, run.attempt) == ("failed", 3)


def test_rendered_message_uses_slot_time_in_job_timezone(runner: JobRunner) -> None:
    spec = job_spec(
        "0 9 * * 1",
        timezone="Europe/Berlin",
        action={
            "chat": {"template": "Today is {weekday} {date} {time}, {x}", "variables": {"x": 1}}
        },
    )
    fire = Fire.of(spec, datetime(2026, 11, 23, 8, 0, tzinfo=UTC))
    runner.run(KEY, spec, fire, run_id="r9", origin="manual")
    [run] = runner.runs.list(key=KEY)
    assert run.rendered == "Today is Monday 2026-11-23 09:00, 1"
    outbox = runner.executors.chat
    assert isinstance(outbox, LocalOutbox)
    [thread] = outbox.threads()
    assert thread["agent"] == "job-application-agent"
    assert thread["message"] == run.rendered
    assert thread["context"]["run_key"] == f"{KEY}@2026-11-23T09:00"


def test_workflow_input_is_rendered_and_recorded(runner: JobRunner) -> None:
    spec = job_spec(
        "@daily", action={"workflow": {"id": "check", "input": {"on": "{date}", "n": [1, 2]}}}
    )
    result = runner.run(
        KEY, spec, Fire.of(spec, datetime(2026, 1, 2, 0, 0, tzinfo=UTC)), run_id="w", origin="m"
    )
    assert result["status"] == "queued"
    [run] = runner.runs.list(key=KEY)
    assert run.action == "workflow"
    assert run.rendered == '{"n": [1, 2], "on": "2026-01-02"}'
    assert run.result == result


def test_failed_execution_is_recorded_with_error(tmp_path: Path) -> None:
    class Refusing:
        def start_thread(self, *, agent: str, message: str, context: Any) -> str:
            raise RuntimeError("platform down")

        def run(self, *, workflow: str, input: Any, context: Any) -> Any:
            raise RuntimeError("platform down")

    with RunStore(tmp_path / "runs.db") as runs:
        runner = JobRunner(runs, Executors(chat=Refusing(), workflow=Refusing()))
        spec = job_spec()
        with pytest.raises(RuntimeError):
            runner.run(KEY, spec, Fire.of(spec, FIRST), run_id="x", origin="manual")
        [run] = runs.list(key=KEY)
        assert run.status == "failed" and run.error == "platform down"


def test_outbox_is_idempotent_by_run_key(tmp_path: Path) -> None:
    with LocalOutbox(tmp_path / "o.db") as outbox:
        a = outbox.start_thread(agent="a", message="m", context={"run_key": "k"})
        b = outbox.start_thread(agent="a", message="m", context={"run_key": "k"})
        assert a == b and len(outbox.threads()) == 1


def test_trigger_actions_render_payload_fields() -> None:
    spec = {"action": {"chat": {"template": "From {sender}: {subject}", "variables": {}}}}
    prepared = actions.prepare_trigger("a/triggers/mail", spec, {"sender": "x@y", "subject": "hi"})
    assert prepared.message == "From x@y: hi"
    wf = {"action": {"workflow": {"id": "qualify-lead", "input": {}}}}
    assert actions.prepare_trigger("a/triggers/t", wf, {"objectId": 7}).input == {"objectId": 7}


def test_run_store_filters_and_pages(tmp_path: Path) -> None:
    with RunStore(tmp_path / "runs.db") as runs:
        for i in range(5):
            row = runs.start(key=f"a/jobs/j{i % 2}", kind="job", run_id=f"r{i}", origin="m")
            runs.finish(row, status="succeeded" if i % 2 else "failed")
        assert len(runs.list(prefix="a/jobs/")) == 5
        assert {r.key for r in runs.list(status="failed")} == {"a/jobs/j0"}
        newest = runs.list(limit=2)
        older = runs.list(limit=10, before_id=newest[-1].id)
        assert len(newest) + len(older) == 5
        assert runs.last("a/jobs/j1") is not None
