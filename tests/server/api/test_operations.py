"""POST /api/jobs/{agent}/{job}/run and POST /api/triggers/{agent}/{trigger}/test on the real app:
the normal executor and webhook-worker paths, run history, and what is refused."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import Any

import pytest
from fastapi.testclient import TestClient

from planner_operator.core.settings import Settings
from planner_operator.errors import NotFoundError
from planner_operator.runtime.executors import select as executor_select
from planner_operator.runtime.executors.base import Executors
from planner_operator.runtime.executors.local import LocalOutbox
from planner_operator.server.app import create_app
from planner_operator.server.runtime import Runtime
from planner_operator.state.inbox import Inbox
from planner_operator.state.runs import RunStore
from tests.server.api.status_state import BEARER, ENV, applied, applied_once, client, finished

__all__ = ["applied", "applied_once", "client"]  # fixtures


def runs(client: TestClient, **params: Any) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = client.get("/api/runs", params=params).json()["items"]
    return items


def test_run_now_answers_202_with_the_started_run_which_then_finishes(
    client: TestClient, applied: Settings
) -> None:
    answer = client.post("/api/jobs/engineering-agent/on-call-handover/run", headers=BEARER)
    assert answer.status_code == 202
    started = answer.json()
    assert answer.headers["location"] == f"/api/runs/{started['id']}"
    assert started["status"] in ("running", "succeeded") and started["origin"] == "manual"
    assert started["run_id"].startswith("manual-") and started["slot"]
    assert started["summary"].startswith("Prepare the on-call handover for the platform team")
    run = finished(client, answer.headers["location"])
    assert run["status"] == "succeeded" and run["result"]["sink"] == "local"
    with LocalOutbox(applied.state_dir / "outbox.db") as outbox:
        [thread] = outbox.threads(agent="engineering-agent")
    assert thread["thread_id"] == run["result"]["thread_id"]
    assert thread["message"] == run["rendered"]
    job = client.get("/api/jobs/engineering-agent/on-call-handover").json()
    assert job["last_run"]["id"] == run["id"] and job["last_run"]["status"] == "succeeded"


def test_run_now_runs_a_paused_job_through_its_workflow(client: TestClient) -> None:
    job = client.get("/api/jobs/sales-agent/quarterly-forecast").json()
    assert job["state"] == "paused"
    answer = client.post("/api/jobs/sales-agent/quarterly-forecast/run", headers=BEARER)
    assert answer.status_code == 202
    run = finished(client, answer.headers["location"])
    assert run["status"] == "succeeded" and run["action"] == "workflow"
    assert json.loads(run["rendered"])["quarter_start"] == run["slot"][:10]


class SlowChat:
    """A chat platform that takes a while to answer (a ChatExecutor)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.messages: list[str] = []

    def start_thread(self, *, agent: str, message: str, context: Mapping[str, Any]) -> str:
        time.sleep(self.seconds)
        self.messages.append(message)
        return "thr_slow"


def test_shutdown_waits_for_a_run_still_executing(applied: Settings) -> None:
    chat = SlowChat(0.5)
    executors = Executors(chat=chat, workflow=executor_select.from_env(applied, {}).workflow)
    app = create_app(applied, ENV, executors=executors)
    with TestClient(app) as client:
        answer = client.post("/api/jobs/sales-agent/weekly-pipeline-review/run", headers=BEARER)
        assert answer.json()["status"] == "running"  # answered before the platform did
        row = answer.json()["id"]
    with RunStore(applied.state_dir / "runs.db") as store:
        run = store.get(row)
    assert run is not None and run.status == "succeeded" and run.result == {"thread_id": "thr_slow"}
    assert len(chat.messages) == 1


def test_trigger_test_with_a_sample_event_runs_the_action_like_a_real_event(
    client: TestClient,
) -> None:
    sample = client.get("/api/triggers/job-application-agent/recruiter-email/sample").json()
    assert sample["subject"] == "sample subject" and "recruit" in sample["sender"]
    answer = client.post("/api/triggers/job-application-agent/recruiter-email/test", headers=BEARER)
    assert answer.status_code == 202
    run = finished(client, answer.headers["location"])
    assert run["status"] == "succeeded" and run["origin"] == "test" and run["kind"] == "trigger"
    assert run["rendered"].startswith("A new email arrived: sample subject (from sample sender")
    assert run["event"]["trigger_id"] == "job-application-agent/triggers/recruiter-email"
    assert run["event"]["trigger_type"] == "GMAIL_NEW_GMAIL_MESSAGE"
    assert run["event"]["raw_data"] == sample
    assert run["event"]["context"]["source"] == "local"
    assert run["trigger_result"]["success"] is True and run["trigger_result"]["agent_executed"]
    assert run["trigger_result"]["variables"]["subject"] == "sample subject"


def test_trigger_test_with_a_given_body(client: TestClient) -> None:
    body = {"objectId": "4711", "subscriptionType": "deal.propertyChange", "subscription_id": "s"}
    answer = client.post(
        "/api/triggers/sales-agent/deal-stage-changed/test", headers=BEARER, json=body
    )
    assert answer.status_code == 202
    run = finished(client, answer.headers["location"])
    assert run["rendered"] == "Deal 4711 changed stage (deal.propertyChange). Update the forecast."
    assert run["event"]["raw_data"] == body
    qualify = client.post(
        "/api/triggers/sales-agent/new-contact/test",
        headers=BEARER,
        json={"objectId": "99", "email": "ada@example.com", "company": "Analytical Engines"},
    )
    run = finished(client, qualify.headers["location"])  # empty input: the event is the input
    assert run["status"] == "succeeded" and json.loads(run["rendered"])["objectId"] == "99"


def test_a_body_the_filter_rejects_runs_nothing_and_names_the_conditions(
    client: TestClient, applied: Settings
) -> None:
    answer = client.post(
        "/api/triggers/engineering-agent/incident-mention/test",
        headers=BEARER,
        json={"channel": "C0RANDOM", "text": "all quiet"},
    )
    assert answer.status_code == 200
    run = answer.json()
    assert answer.headers["location"] == f"/api/runs/{run['id']}"
    assert run["status"] == "skipped" and run["action"] is None
    assert run["reason"] == (
        'filter did not match: channel equals "C0INCIDENTS" (got "C0RANDOM"); '
        'text contains "sev1" (got "all quiet")'
    )
    stored = client.get(answer.headers["location"]).json()
    assert stored["reason"] == run["reason"] and stored["trigger_result"]["skipped"]
    with LocalOutbox(applied.state_dir / "outbox.db") as outbox:
        assert outbox.threads() == []
    either = client.post(
        "/api/triggers/job-application-agent/recruiter-email/test",
        headers=BEARER,
        json={"sender": "mum@example.com", "subject": "lunch"},
    ).json()
    assert either["reason"].endswith(
        'none of: sender contains "recruit" or subject contains "interview"'
    )


def test_a_body_that_cannot_fill_the_template_is_422_and_nothing_is_stored(
    client: TestClient, applied: Settings
) -> None:
    answer = client.post(
        "/api/triggers/job-application-agent/recruiter-email/test",
        headers=BEARER,
        json={"subject": "interview on Monday"},
    )
    assert answer.status_code == 422
    [error] = answer.json()["detail"]
    assert error["loc"] == ["body"] and "{sender}" in error["msg"]
    assert runs(client) == []
    with Inbox(applied.inbox_db) as box:
        assert box.counts() == {}
    not_an_object = client.post(
        "/api/triggers/job-application-agent/recruiter-email/test", headers=BEARER, json=[1]
    )
    assert not_an_object.status_code == 422


def test_a_generic_webhook_trigger_is_tested_without_a_schema(client: TestClient) -> None:
    assert client.get("/api/triggers/engineering-agent/deploy-hook/sample").json() == {}
    body = {"service": "api", "version": "1.2.3", "environment": "staging", "status": "success"}
    answer = client.post(
        "/api/triggers/engineering-agent/deploy-hook/test", headers=BEARER, json=body
    )
    run = finished(client, answer.headers["location"])
    assert run["status"] == "succeeded" and run["result"]["status"] == "passed"
    assert run["event"]["trigger_type"] == "WEBHOOK"


def test_workflows_run_directly_and_unknown_ones_are_not_found(client: TestClient) -> None:
    runtime: Runtime = client.app.state.runtime  # type: ignore[attr-defined]
    portal = client.portal
    assert portal is not None  # inside the `with TestClient(...)` block
    input_ = {"email": "ada@example.com", "company": "Analytical Engines"}
    started = portal.call(runtime.operations.run_workflow, "qualify-lead", input_)
    assert (started.key, started.kind, started.origin) == (
        "workflows/qualify-lead",
        "workflow",
        "manual",
    )
    run = finished(client, f"/api/runs/{started.id}")
    assert run["status"] == "succeeded" and run["agent"] == "" and run["name"] == "qualify-lead"
    assert json.loads(run["rendered"]) == input_
    assert runs(client, agent="workflows")[0]["id"] == started.id
    with pytest.raises(NotFoundError, match="no-such-flow"):
        portal.call(runtime.operations.run_workflow, "no-such-flow", {})
