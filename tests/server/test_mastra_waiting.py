"""A Mastra workflow that suspends, end to end on a real Mastra server (tests/mastra).

The receiver, inbox, worker (with its poller of waiting runs), run history API and dashboard are
the operator's own; the workflow `await-approval` suspends in its step until the test resumes
or cancels it through Mastra's API, as a person would:

- suspended → the run is ``waiting`` (API and dashboard), with Mastra's suspended step and its
  ``suspendPayload``; resumed (``POST /workflows/{id}/resume-async?runId=``) → succeeded with
  the result;
- the operator restarted while the run waits → the new one polls on from run history, and the
  delivery never starts a second Mastra run;
- cancelled (``POST /workflows/{id}/runs/{runId}/cancel``) → cancelled.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from fastapi.testclient import TestClient

from planner_operator.core.records import Run
from planner_operator.core.settings import Settings
from planner_operator.runtime.executors import select as executor_select
from planner_operator.runtime.executors.mastra import derived_id
from planner_operator.server.app import create_app
from planner_operator.state.runs import RunStore
from tests.support.builders import trigger_spec
from tests.support.mastra import MastraServer
from tests.support.webhook_env import ENV, apply_triggers, composio_body, composio_headers

KEY = "sales-agent/triggers/approval"
REMOTE = "ti_approval"
WORKFLOW = "awaitApproval"  # the key of Mastra workflow `await-approval`
# poll every half second (the pump looks once a second): the default starts at 5 s
FAST = {**ENV, "PLANNER_WAITING_POLL_CAP": "0.5"}


def make_settings(tmp_path: Path) -> Settings:
    settings = Settings.resolve(state_dir=tmp_path / "state", env={})
    settings.state_dir.mkdir(parents=True)
    spec = trigger_spec(action={"workflow": {"id": "await-approval", "input": {}}})
    apply_triggers(settings, {(KEY, "composio", REMOTE): spec})
    return settings


@contextmanager
def operator(settings: Settings, mastra: MastraServer) -> Iterator[TestClient]:
    """One operator process (app, worker loop, poller); leaving it is an operator stop."""
    executors = executor_select.from_env(settings, {"PLANNER_MASTRA_URL": mastra.url})
    with TestClient(create_app(settings, FAST, executors=executors)) as client:
        yield client


def deliver(client: TestClient, item: str) -> None:
    delivery = f"msg-{uuid.uuid4().hex[:10]}"
    body = composio_body(REMOTE, item=item)
    answer = client.post(
        "/webhooks/composio", content=body, headers=composio_headers(delivery, body)
    )
    assert answer.status_code in (200, 202), answer.text


def the_run(settings: Settings, until: Callable[[Run], bool], timeout: float = 30.0) -> Run:
    deadline = time.monotonic() + timeout
    with RunStore(settings.runs_db) as runs:
        while True:
            found = runs.list(key=KEY)
            if found and until(found[0]):
                assert len(found) == 1, found
                return found[0]
            if time.monotonic() > deadline:
                raise AssertionError(f"run never got there: {found}")
            time.sleep(0.05)


def mastra_runs(mastra: MastraServer, item: str) -> list[dict[str, Any]]:
    listed = httpx.get(f"{mastra.url}/workflows/{WORKFLOW}/runs").json()["runs"]
    return [r for r in listed if _payload(r).get("item") == item]


def _payload(run: dict[str, Any]) -> dict[str, Any]:
    snapshot = run.get("snapshot")
    payload = run.get("payload") or (
        snapshot.get("context", {}).get("input") if isinstance(snapshot, dict) else None
    )
    return payload if isinstance(payload, dict) else {}


def resume(mastra: MastraServer, run_id: str, approved: bool) -> None:
    answer = httpx.post(
        f"{mastra.url}/workflows/{WORKFLOW}/resume-async",
        params={"runId": run_id},
        json={"step": "approve", "resumeData": {"approved": approved}},
        timeout=30,
    )
    assert answer.status_code == 200 and answer.json()["status"] == "success", answer.text


def test_a_suspended_run_is_waiting_then_succeeds_once_resumed_in_mastra(
    mastra: MastraServer, tmp_path: Path
) -> None:
    settings = make_settings(tmp_path)
    item = f"laptop-{uuid.uuid4().hex[:6]}"
    with operator(settings, mastra) as client:
        deliver(client, item)
        run = the_run(settings, lambda r: r.status == "waiting")
        mastra_id = derived_id(run.run_id)  # the delivery id is the run's idempotency key
        api = client.get(f"/api/runs/{run.id}").json()
        assert api["status"] == "waiting" and api["finished_at"] is None
        awaiting = api["result"]["awaiting"]
        assert awaiting["steps"] == ["approve"] and awaiting["status"] == "suspended"
        assert awaiting["suspend_payload"] == {"approve": {"ask": f"approve {item}?"}}
        assert awaiting["mastra_run_id"] == mastra_id
        assert client.get("/api/runs", params={"status": "waiting"}).json()["items"][0]["id"] == (
            run.id
        )
        page = client.get(f"/planner/runs/{run.id}").text
        assert 'class="badge b-waiting"' in page and 'id="waiting"' in page
        assert f"approve {item}?" in page and "not yet: waiting" in page
        resume(mastra, mastra_id, approved=True)
        done = the_run(settings, lambda r: r.status != "waiting")
        assert done.status == "succeeded", done.error
        assert done.result["result"] == {"item": item, "approved": True}
        assert done.trigger_result["success"] and done.trigger_result["workflow_executed"]
        assert client.get(f"/api/runs/{run.id}").json()["status"] == "succeeded"
    assert len(mastra_runs(mastra, item)) == 1


def test_an_operator_restart_while_waiting_polls_on_without_a_second_mastra_run(
    mastra: MastraServer, tmp_path: Path
) -> None:
    settings = make_settings(tmp_path)
    item = f"desk-{uuid.uuid4().hex[:6]}"
    with operator(settings, mastra) as client:
        deliver(client, item)
        first = the_run(settings, lambda r: r.status == "waiting")
    resume(mastra, derived_id(first.run_id), approved=False)  # while no operator runs
    with operator(settings, mastra) as client:
        done = the_run(settings, lambda r: r.status != "waiting")
        assert done.id == first.id and done.status == "succeeded", done.error
        assert done.result["result"] == {"item": item, "approved": False}
        assert client.get(f"/api/runs/{done.id}").json()["status"] == "succeeded"
    assert [r["runId"] for r in mastra_runs(mastra, item)] == [derived_id(first.run_id)]


def test_a_run_cancelled_in_mastra_is_cancelled(mastra: MastraServer, tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    item = f"chair-{uuid.uuid4().hex[:6]}"
    with operator(settings, mastra) as client:
        deliver(client, item)
        run = the_run(settings, lambda r: r.status == "waiting")
        cancel = httpx.post(
            f"{mastra.url}/workflows/{WORKFLOW}/runs/{derived_id(run.run_id)}/cancel", timeout=30
        )
        assert cancel.status_code == 200, cancel.text
        done = the_run(settings, lambda r: r.status != "waiting")
        assert done.status == "cancelled" and "cancelled in Mastra" in (done.error or "")
        api = client.get(f"/api/runs/{done.id}").json()
        assert api["status"] == "cancelled" and api["finished_at"] is not None
        assert 'class="badge b-cancelled"' in client.get(f"/planner/runs/{done.id}").text
