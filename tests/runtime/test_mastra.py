"""Chats and workflows on a real Mastra server (tests/mastra, started by tests/support/mastra).

The whole path is real: the executors from ``PLANNER_MASTRA_URL`` (runtime/executors/select),
the job runner and run history on a real store, and a Mastra 1.x server whose only stand-in is
its model (an offline echo). Each test keeps apart from the others by its own run keys.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from planner_operator.core.settings import Settings
from planner_operator.errors import PermanentError, RetryableError, UnknownOutcome
from planner_operator.runtime import waiting
from planner_operator.runtime.executors import actions
from planner_operator.runtime.executors import select as executor_select
from planner_operator.runtime.executors.base import Executors
from planner_operator.runtime.executors.mastra import derived_id
from planner_operator.runtime.jobrun import Fire, JobRunner
from planner_operator.state.runs import RunStore
from tests.support.builders import job_spec, trigger_spec
from tests.support.mastra import MastraServer

SLOT = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)


def executors_for(server: MastraServer, tmp_path: Path, **extra: str) -> Executors:
    env = {"PLANNER_MASTRA_URL": server.url, "PLANNER_MASTRA_WAIT": "20", **extra}
    return executor_select.from_env(Settings.at(tmp_path), env)


@pytest.fixture
def runner(mastra: MastraServer, tmp_path: Path) -> Iterator[JobRunner]:
    with RunStore(tmp_path / "runs.db") as runs:
        yield JobRunner(runs, executors_for(mastra, tmp_path))


def chat_job(template: str, agent: str | None = None) -> dict[str, Any]:
    chat: dict[str, Any] = {"template": template, "variables": {}}
    if agent:
        chat["agent"] = agent
    return job_spec("0 9 * * 1", action={"chat": chat})


def workflow_job(workflow: str, data: dict[str, Any]) -> dict[str, Any]:
    return job_spec("0 9 * * 1", action={"workflow": {"id": workflow, "input": data}})


def key() -> str:
    return f"sales-agent/jobs/j-{uuid.uuid4().hex[:8]}"


def test_a_job_chat_is_a_new_thread_with_the_message_and_the_reply(
    runner: JobRunner, mastra: MastraServer
) -> None:
    job = key()
    spec = chat_job("pipeline for {date}")
    result = runner.run(job, spec, Fire.of(spec, SLOT), run_id="r1", origin="scheduler")
    assert result["reply"] == "echo: pipeline for 2026-12-07"
    assert result["finish_reason"] == "stop"
    assert result["usage"] == {"inputTokens": 3, "outputTokens": 5, "totalTokens": 8}
    thread = result["thread_id"]
    got = httpx.get(f"{mastra.url}/memory/threads/{thread}", params={"agentId": "sales-agent"})
    assert got.status_code == 200
    body = got.json()
    assert body["resourceId"] == job
    assert body["metadata"]["planner_key"] == job and body["metadata"]["planner_run_id"] == "r1"
    messages = httpx.get(
        f"{mastra.url}/memory/threads/{thread}/messages", params={"agentId": "sales-agent"}
    ).json()["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant"]
    [run] = runner.runs.list(key=job)
    assert run.status == "succeeded" and run.rendered == "pipeline for 2026-12-07"
    assert run.result is not None and run.result["reply"] == "echo: pipeline for 2026-12-07"


def test_a_retried_chat_answers_from_its_thread_and_generates_nothing_twice(
    mastra: MastraServer, tmp_path: Path
) -> None:
    executors = executors_for(mastra, tmp_path)
    prepared = actions.prepare_job(key(), chat_job("hello"), slot=SLOT, run_id="r1")
    context = {"run_key": f"retry-{uuid.uuid4()}", "key": "sales-agent/jobs/x"}
    first = actions.execute(prepared, executors, context=context)
    second = actions.execute(prepared, executors, context=context)
    assert first["thread_id"] == second["thread_id"] == derived_id(context["run_key"])
    assert second["reply"] == "echo: hello"
    messages = httpx.get(
        f"{mastra.url}/memory/threads/{first['thread_id']}/messages",
        params={"agentId": "sales-agent"},
    ).json()["messages"]
    assert len(messages) == 2  # one question, one answer: the retry generated nothing


def test_a_trigger_workflow_gets_the_event_data_as_input_and_keeps_the_result(
    mastra: MastraServer, tmp_path: Path
) -> None:
    spec = trigger_spec(action={"workflow": {"id": "sum-numbers", "input": {}}})
    prepared = actions.prepare_trigger("sales-agent/triggers/t", spec, {"a": 2, "b": 40})
    run_key = f"composio:{uuid.uuid4()}"
    result = actions.execute(
        prepared, executors_for(mastra, tmp_path), context={"run_key": run_key}
    )
    assert result["result"] == {"sum": 42} and result["status"] == "success"
    run = httpx.get(f"{mastra.url}/workflows/sum-numbers/runs/{derived_id(run_key)}").json()
    assert run["payload"] == {"a": 2, "b": 40} and run["result"] == {"sum": 42}


def test_the_same_delivery_twice_is_one_mastra_run(mastra: MastraServer, tmp_path: Path) -> None:
    executors = executors_for(mastra, tmp_path)
    spec = trigger_spec(action={"workflow": {"id": "slowMaybeFail", "input": {}}})
    prepared = actions.prepare_trigger("sales-agent/triggers/t", spec, {"ms": 10})
    run_key = f"composio:{uuid.uuid4()}"
    for _ in range(2):
        assert actions.execute(prepared, executors, context={"run_key": run_key})["result"] == {
            "ok": True
        }
    assert mastra.executions.read_text().splitlines().count(derived_id(run_key)) == 1


def test_a_failing_workflow_is_a_failed_run_with_mastras_error(runner: JobRunner) -> None:
    job = key()
    spec = workflow_job("slow-maybe-fail", {"fail": True})
    with pytest.raises(PermanentError, match="asked to fail"):
        runner.run(job, spec, Fire.of(spec, SLOT), run_id="r1", origin="scheduler")
    [run] = runner.runs.list(key=job)
    assert run.status == "failed" and run.error is not None and "asked to fail" in run.error


def test_invalid_input_is_permanent_and_starts_no_run(mastra: MastraServer, tmp_path: Path) -> None:
    executors = executors_for(mastra, tmp_path)
    prepared = actions.prepare_job(
        key(), workflow_job("sum-numbers", {"a": "x"}), slot=SLOT, run_id="r1"
    )
    run_key = f"job-{uuid.uuid4()}"
    with pytest.raises(PermanentError, match=r"invalid at a: 'x' is not of type 'number'"):
        actions.execute(prepared, executors, context={"run_key": run_key})
    got = httpx.get(f"{mastra.url}/workflows/sum-numbers/runs/{derived_id(run_key)}")
    assert got.status_code == 404  # refused before a run existed: nothing to clean up


def test_an_unknown_agent_is_permanent(mastra: MastraServer, tmp_path: Path) -> None:
    prepared = actions.prepare_job(key(), chat_job("hi", agent="nobody"), slot=SLOT, run_id="r")
    with pytest.raises(PermanentError, match="404"):
        actions.execute(prepared, executors_for(mastra, tmp_path), context={"run_key": "k-x"})


def test_a_server_stopped_mid_run_is_retried_and_runs_once_in_the_end(
    own_mastra: MastraServer, tmp_path: Path
) -> None:
    """The first attempt is cut short with the server; the retry, after a restart, finds no
    finished run (Mastra lost the in-flight one with its process) and runs it once."""
    executors = executors_for(own_mastra, tmp_path, PLANNER_MASTRA_WAIT="30")
    spec = trigger_spec(action={"workflow": {"id": "slow-maybe-fail", "input": {}}})
    prepared = actions.prepare_trigger("sales-agent/triggers/t", spec, {"ms": 3000})
    run_key = f"composio:{uuid.uuid4()}"
    errors: list[BaseException] = []

    def first_attempt() -> None:
        try:
            actions.execute(prepared, executors, context={"run_key": run_key})
        except BaseException as exc:  # the test inspects it
            errors.append(exc)

    attempt = threading.Thread(target=first_attempt)
    attempt.start()
    deadline = 100
    while not own_mastra.executions.exists() and deadline:
        attempt.join(0.1)
        deadline -= 1
    assert own_mastra.executions.exists(), own_mastra.log_tail()
    own_mastra.stop()
    attempt.join(30)
    assert len(errors) == 1 and isinstance(errors[0], RetryableError | UnknownOutcome)
    own_mastra.start()
    prepared_fast = actions.prepare_trigger("sales-agent/triggers/t", spec, {"ms": 3000})
    result = actions.execute(prepared_fast, executors, context={"run_key": run_key})
    assert result["result"] == {"ok": True}
    run = httpx.get(f"{own_mastra.url}/workflows/slow-maybe-fail/runs/{derived_id(run_key)}")
    assert run.json()["status"] == "success"


def test_a_job_workflow_mastra_suspends_is_waiting_until_resumed_there(
    runner: JobRunner, mastra: MastraServer
) -> None:
    """The embedded scheduler's path: the job run is ``waiting`` with what Mastra awaits, and
    the poller (the worker's loop in ``serve``) ends it with Mastra's result."""
    job = key()
    spec = workflow_job("await-approval", {"item": "budget"})
    answer = runner.run(job, spec, Fire.of(spec, SLOT), run_id="r1", origin="scheduler")
    assert answer["waiting"]["steps"] == ["approve"]
    [run] = runner.runs.list(key=job)
    assert run.status == "waiting" and run.result is not None
    awaiting = run.result["awaiting"]
    assert awaiting["suspend_payload"] == {"approve": {"ask": "approve budget?"}}
    poller = waiting.Poller(runner.runs, runner.executors)
    assert poller.poll(due_only=False) == 1  # still suspended: waits on
    still = runner.runs.get(run.id)
    assert still is not None and still.status == "waiting", still
    resumed = httpx.post(
        f"{mastra.url}/workflows/awaitApproval/resume-async",
        params={"runId": awaiting["mastra_run_id"]},
        json={"step": "approve", "resumeData": {"approved": True}},
        timeout=30,
    )
    assert resumed.json()["status"] == "success", resumed.text
    assert poller.poll(due_only=False) == 1
    done = runner.runs.get(run.id)
    assert done is not None and done.status == "succeeded", done
    assert done.result["result"] == {"item": "budget", "approved": True}
