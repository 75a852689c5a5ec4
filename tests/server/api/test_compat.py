"""The Triggers module's routes on the real app: reads and runs work, every configuration write
answers 409 naming the file to edit in git (after the token check)."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from planner_operator.backends.select import open_backends
from planner_operator.core.settings import Settings
from planner_operator.reconcile.engine import SourceSpec, reconcile
from planner_operator.server.app import create_app

ROOT = Path(__file__).resolve().parents[3]
TOKEN = "compat-test-token-5d1c0b7e9a"
ENV = {"PLANNER_API_TOKEN": TOKEN, "DEPLOY_WEBHOOK_SECRET": "s3cret", "PLANNER_WORKER": "0"}
BEARER = {"Authorization": f"Bearer {TOKEN}"}
SALES = "agents/sales-agent.yaml"


@pytest.fixture(scope="module")
def applied(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    settings = Settings.resolve(state_dir=tmp_path_factory.mktemp("applied"), env={})
    outcome = reconcile(
        SourceSpec(path=ROOT / "agents"),
        settings,
        backends_factory=lambda s: open_backends(s, env={}),
    )
    assert outcome.applied is not None and outcome.applied.ok
    return settings


@pytest.fixture(scope="module")
def settings(applied: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """One served copy of the applied state for the module: the tests here only add runs."""
    state = tmp_path_factory.mktemp("served") / "state"
    shutil.copytree(applied.state_dir, state)
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(ROOT)  # the operator runs from the repo: files are shown relative to it
        yield Settings.resolve(state_dir=state, env={})


def serve(settings: Settings, **env: str) -> TestClient:
    return TestClient(create_app(settings, {**ENV, **env}), headers=BEARER)


@pytest.fixture(scope="module")
def client(settings: Settings) -> Iterator[TestClient]:
    with serve(settings) as test_client:
        yield test_client


def finished(client: TestClient, location: str) -> dict[str, Any]:
    deadline = time.monotonic() + 10
    while (run := client.get(location).json())["status"] == "running":
        assert time.monotonic() < deadline, run
        time.sleep(0.02)
    result: dict[str, Any] = run
    return result


def test_trigger_reads_match_the_status_api(client: TestClient) -> None:
    listed = client.get("/triggers").json()
    assert [t["key"] for t in listed] == [t["key"] for t in client.get("/api/triggers").json()]
    assert "sales-agent/triggers/new-contact" in {t["key"] for t in listed}
    sales = client.get("/triggers", params={"agent": "sales-agent"}).json()
    assert {t["name"] for t in sales} == {"new-contact", "deal-stage-changed"}

    one = client.get("/triggers/sales-agent/new-contact").json()
    assert one["action"] == "workflow" and one["action_summary"] == "qualify-lead"
    missing = client.get("/triggers/sales-agent/nope")
    assert missing.status_code == 404 and "sales-agent/triggers/nope" in missing.json()["detail"]


def test_trigger_test_runs_the_action_and_lands_in_run_history(client: TestClient) -> None:
    event = {"objectId": "42", "subscriptionType": "deal.propertyChange"}
    answer = client.post("/triggers/sales-agent/deal-stage-changed/test", json=event)
    assert answer.status_code == 202, answer.text
    run = finished(client, answer.headers["location"])
    assert run["status"] == "succeeded" and run["origin"] == "test"
    assert "Deal 42 changed stage (deal.propertyChange)" in run["rendered"]
    assert client.post("/triggers/sales-agent/nope/test", json={}).status_code == 404


def test_workflows_list_registrations_and_their_users(client: TestClient) -> None:
    listed = {w["id"]: w for w in client.get("/workflows").json()}
    assert {"job-application-check", "qualify-lead", "slack-digest", "post-deploy-checks"} <= set(
        listed
    )
    lead = listed["qualify-lead"]
    assert lead["registered"] and lead["runs_on"] == "python" and lead["origin"] == "builtin"
    assert lead["target"] == "planner_operator.runtime.workflows.qualify_lead:run"
    assert lead["used_by"] == [
        {
            "key": "sales-agent/triggers/new-contact",
            "kind": "trigger",
            "agent": "sales-agent",
            "name": "new-contact",
            "file": SALES,
        }
    ]
    digest = client.get("/workflows/slack-digest").json()
    assert digest["files"] == ["agents/engineering-agent.yaml"]
    assert digest["used_by"][0]["kind"] == "job"
    assert client.get("/workflows/nope").status_code == 404


def test_workflow_targets_never_show_credentials(settings: Settings) -> None:
    custom = "custom=https://user:pw@hooks.example:8443/run?key=abc123"
    with serve(settings, PLANNER_WORKFLOWS=custom) as client:
        shown = client.get("/workflows/custom").json()
    assert shown["runs_on"] == "http" and shown["origin"] == "PLANNER_WORKFLOWS"
    assert shown["target"] == "https://hooks.example:8443/run"
    assert shown["used_by"] == [] and shown["files"] == []


def test_with_a_platform_the_examples_run_there(settings: Settings) -> None:
    with serve(settings, PLANNER_WORKFLOW_URL="http://127.0.0.1:9/run") as client:
        listed = {w["id"]: w for w in client.get("/workflows").json()}
    assert listed["qualify-lead"]["runs_on"] == "platform"


def test_workflow_run_uses_the_body_as_input_and_is_recorded(client: TestClient) -> None:
    body = {"objectId": "7", "properties": {"email": "cto@acme.example", "jobtitle": "CTO"}}
    answer = client.post("/workflows/qualify-lead/run", json=body)
    assert answer.status_code == 202, answer.text
    run = finished(client, answer.headers["location"])
    assert run["key"] == "workflows/qualify-lead" and run["origin"] == "manual"
    assert run["status"] == "succeeded" and run["result"]["contact_id"] == "7"
    history = client.get("/api/runs").json()["items"]
    assert run["id"] in {r["id"] for r in history}

    assert client.post("/workflows/nope/run", json={}).status_code == 404
    assert client.post("/workflows/qualify-lead/run", json=[1]).status_code == 422


def conflict(answer: Any) -> dict[str, Any]:
    assert answer.status_code == 409, answer.text
    body: dict[str, Any] = answer.json()
    return body


@pytest.mark.parametrize("method", ["PUT", "PATCH", "DELETE"])
def test_trigger_writes_name_the_agent_file(client: TestClient, method: str) -> None:
    body = conflict(client.request(method, "/triggers/sales-agent/new-contact", json={"x": 1}))
    assert body["file"] == SALES and body["files"] == [SALES] and body["new_file"] is False
    assert body["key"] == "sales-agent/triggers/new-contact"
    assert SALES in body["detail"] and "reconcile" in body["detail"]
    if method == "DELETE":
        assert "remove it from" in body["detail"]

    unknown = conflict(client.request(method, "/triggers/sales-agent/not-yet"))
    assert unknown["file"] == SALES and unknown["key"] is None and not unknown["new_file"]
    fresh = conflict(client.request(method, "/triggers/brand-new/x", content=b"not json"))
    assert fresh["file"] == "agents/brand-new.yaml" and fresh["new_file"] is True


def test_trigger_create_names_the_file_from_the_body(client: TestClient) -> None:
    known = conflict(client.post("/triggers", json={"agent": "sales-agent", "name": "churn"}))
    assert known["file"] == SALES and not known["new_file"]
    assert "`- name: churn`" in known["detail"]
    new = conflict(client.post("/triggers", json={"agentId": "ops-agent", "toolkit": "slack"}))
    assert new["file"] == "agents/ops-agent.yaml" and new["new_file"] is True
    assert "a new file" in new["detail"]
    blind = conflict(client.post("/triggers"))
    assert blind["file"] is None and "agents/<agent-id>.yaml" in blind["detail"]
    odd = conflict(client.post("/triggers", json={"agent": "../../etc/passwd"}))
    assert odd["file"] is None  # only slugs become paths


@pytest.mark.parametrize("method", ["PUT", "PATCH", "DELETE"])
def test_workflow_writes_name_the_files_that_use_it(client: TestClient, method: str) -> None:
    body = conflict(client.request(method, "/workflows/qualify-lead", json={}))
    assert body["files"] == [SALES] and body["file"] == SALES
    assert "planner_operator/runtime/workflows/__init__.py" in body["registered_in"]
    unknown = conflict(client.request(method, "/workflows/nope"))
    assert unknown["files"] == [] and unknown["file"] is None
    assert "PLANNER_WORKFLOWS" in unknown["registered_in"]


def test_workflow_create_explains_registration(client: TestClient) -> None:
    body = conflict(client.post("/workflows", json={"id": "churn-check", "agent": "sales-agent"}))
    assert body["file"] == SALES
    assert "planner_operator.workflows" in body["detail"]  # the entry point group
    assert "{workflow: {id: churn-check}}" in body["detail"]


def test_writes_check_the_token_first(settings: Settings) -> None:
    with TestClient(create_app(settings, ENV)) as anonymous:
        assert anonymous.get("/workflows").status_code == 200  # loopback read
        for method, path in [
            ("POST", "/triggers"),
            ("DELETE", "/triggers/sales-agent/new-contact"),
            ("POST", "/workflows"),
            ("PUT", "/workflows/qualify-lead"),
            ("POST", "/workflows/qualify-lead/run"),
            ("POST", "/triggers/sales-agent/new-contact/test"),
        ]:
            assert anonymous.request(method, path).status_code == 401, (method, path)


def test_openapi_documents_the_refusals(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    for path, method in [
        ("/triggers", "post"),
        ("/triggers/{agent}/{trigger}", "put"),
        ("/triggers/{agent}/{trigger}", "patch"),
        ("/triggers/{agent}/{trigger}", "delete"),
        ("/workflows", "post"),
        ("/workflows/{workflow_id}", "delete"),
    ]:
        answer = paths[path][method]["responses"]["409"]
        assert answer["content"]["application/json"]["schema"]["$ref"].endswith("/GitManaged")
    run = paths["/workflows/{workflow_id}/run"]["post"]
    assert {"202", "401", "404"} <= set(run["responses"])
