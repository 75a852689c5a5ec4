"""A job fired by Inngest runs its chat on Mastra inside the function's step.

The fake Inngest server drives the real SDK endpoint of `serve`; the chat goes to a real Mastra
server (tests/mastra). A Mastra that is down is a step failure, retried by Inngest; once it is
back the same run completes with the reply, one thread for all attempts. A workflow Mastra
suspends is no failure: the step returns ``{"waiting": ...}``, the Inngest run completes without
a retry, and the operator's poller of waiting runs ends the run once Mastra's run ends.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from planner_operator.core.settings import Settings
from planner_operator.reconcile.engine import SourceSpec, reconcile
from planner_operator.runtime.executors import select as executor_select
from planner_operator.state.runs import RunStore
from tests.fakes.inngest_server import FakeInngest
from tests.support.inngest_serve import inngest_env, operator_server, wait_served
from tests.support.mastra import MastraServer

APP = "planner-operator"
KEY = "sales-agent/jobs/daily"
FN = f"{APP}-sales-agent--daily"
SLOT = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
AGENT = (
    "name: Sales\nplanner:\n  jobs:\n    - name: daily\n      schedule: '0 9 * * *'\n"
    "      action: {chat: {template: 'Good morning, it is {date}'}}\n"
)


@pytest.fixture
def fake() -> Iterator[FakeInngest]:
    with FakeInngest() as server:
        yield server


@contextlib.contextmanager
def serve_on_mastra(
    fake: FakeInngest,
    url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    agent: str = AGENT,
) -> Iterator[Settings]:
    settings = Settings.resolve(state_dir=tmp_path / "state", env={})
    agents = tmp_path / "agents"
    agents.mkdir(exist_ok=True)
    (agents / "sales-agent.yaml").write_text(agent)
    env = inngest_env(fake, monkeypatch)
    env["PLANNER_INNGEST_RETRIES"] = "3"
    env["PLANNER_WAITING_POLL_CAP"] = "0.5"  # the operator's poller looks every second
    monkeypatch.setenv("PLANNER_INNGEST_RETRIES", "3")
    executors = executor_select.from_env(settings, {"PLANNER_MASTRA_URL": url})
    with operator_server(settings, env, executors=executors) as origin:
        monkeypatch.setenv("INNGEST_SERVE_ORIGIN", origin)
        outcome = reconcile(SourceSpec(path=agents), settings)
        assert outcome.applied is not None and outcome.applied.ok, outcome.applied
        wait_served(origin)
        yield settings


def test_an_inngest_cron_run_starts_a_mastra_thread_and_records_the_reply(
    fake: FakeInngest, mastra: MastraServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with serve_on_mastra(fake, mastra.url, tmp_path, monkeypatch) as settings:
        run = fake.fire_cron(FN, SLOT)
    assert run.status == "completed", run.error
    with RunStore(settings.runs_db) as runs:
        [row] = runs.list(key=KEY)
    assert row.status == "succeeded" and row.result is not None
    assert row.result["reply"] == "echo: Good morning, it is 2026-11-23"
    thread = httpx.get(
        f"{mastra.url}/memory/threads/{row.result['thread_id']}", params={"agentId": "sales-agent"}
    )
    assert thread.json()["resourceId"] == KEY


def test_mastra_down_is_a_step_failure_that_inngest_retries(
    fake: FakeInngest, own_mastra: MastraServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    own_mastra.stop()
    with serve_on_mastra(fake, own_mastra.url, tmp_path, monkeypatch) as settings:
        run = fake.fire_cron(FN, SLOT)
    assert run.status == "failed" and run.attempts == 4  # the first call and three retries
    with RunStore(settings.runs_db) as runs:
        [row] = runs.list(key=KEY)
    assert row.status == "failed" and row.error is not None
    assert "is the Mastra server" in row.error and row.attempt == 3


def test_a_suspended_mastra_workflow_completes_the_inngest_run_and_is_polled_to_its_end(
    fake: FakeInngest, mastra: MastraServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Retrying a suspended run would burn Inngest's retries in seconds and fail a run that is
    only waiting for a person; so the step answers "waiting", and the operator polls on."""
    item = f"lamp-{uuid.uuid4().hex[:6]}"
    agent = AGENT.replace(
        "action: {chat: {template: 'Good morning, it is {date}'}}",
        f"action: {{workflow: {{id: await-approval, input: {{item: {item}}}}}}}",
    )
    with serve_on_mastra(fake, mastra.url, tmp_path, monkeypatch, agent) as settings:
        run = fake.fire_cron(FN, SLOT)
        assert run.status == "completed" and run.attempts == 1, run.error
        output = run.output
        assert isinstance(output, dict) and output["waiting"]["steps"] == ["approve"]
        with RunStore(settings.runs_db) as runs:
            [row] = runs.list(key=KEY)
            assert row.status == "waiting" and row.origin == "inngest"
            mastra_id = row.result["awaiting"]["mastra_run_id"]
            answer = httpx.post(
                f"{mastra.url}/workflows/awaitApproval/resume-async",
                params={"runId": mastra_id},
                json={"step": "approve", "resumeData": {"approved": True}},
                timeout=30,
            )
            assert answer.json()["status"] == "success", answer.text
            deadline = time.monotonic() + 30
            while (got := runs.get(row.id)) is not None and got.status == "waiting":
                assert time.monotonic() < deadline, "the poller never ended the run"
                time.sleep(0.1)
    assert got is not None and got.status == "succeeded", got
    assert got.result["result"] == {"item": item, "approved": True}
