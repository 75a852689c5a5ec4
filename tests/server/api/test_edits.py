"""The edit routes over HTTP: answers (202, 200 dry run, 404, 409 conflict, 422 positions), the
Triggers-module writes mapped onto them, and auth plus the CSRF check on every new route."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from planner_operator.core import clock as clock_mod
from planner_operator.core.clock import ManualClock
from planner_operator.core.settings import Settings
from planner_operator.edit.target import Target
from planner_operator.server import auth
from planner_operator.server.app import create_app
from tests.edit.conftest import JOB
from tests.server.api.status_state import MONDAY

AGENTS = Path(__file__).resolve().parents[3] / "agents"
TOKEN = "edit-api-test-token-0123456789abcdef"
ENV = {auth.ENV_TOKEN: TOKEN, "PLANNER_WORKER": "0", "DEPLOY_WEBHOOK_SECRET": "d-secret"}
BEARER = {"Authorization": f"Bearer {TOKEN}"}
TRIGGER = {
    "toolkit": "gmail",
    "event": "GMAIL_NEW_GMAIL_MESSAGE",
    "connected_account": "ca_sales",
    "action": {"chat": {"template": "Mail from {sender}: {subject}"}},
}
# every write route this slice adds, with a body that would be accepted
WRITES: list[tuple[str, str, Any]] = [
    ("POST", "/api/agents", {"id": "ops", "name": "Ops"}),
    ("POST", "/api/agents/sales-agent/jobs/pipeline-check", JOB),
    ("PUT", "/api/agents/sales-agent/jobs/weekly-pipeline-review", JOB),
    ("DELETE", "/api/agents/sales-agent/jobs/weekly-pipeline-review", None),
    ("POST", "/api/agents/sales-agent/triggers/mail", TRIGGER),
    ("PUT", "/api/agents/sales-agent/triggers/new-contact", TRIGGER),
    ("DELETE", "/api/agents/sales-agent/triggers/new-contact", None),
    ("POST", "/triggers", {"agent": "sales-agent", "name": "mail", **TRIGGER}),
    ("PUT", "/triggers/sales-agent/new-contact", TRIGGER),
    ("PATCH", "/triggers/sales-agent/new-contact", {"enabled": False}),
    ("DELETE", "/triggers/sales-agent/new-contact", None),
]


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    return Path(shutil.copytree(AGENTS, tmp_path / "agents"))


@pytest.fixture
def client(tree: Path, tmp_path: Path) -> Iterator[TestClient]:
    settings = Settings.resolve(state_dir=tmp_path / "state", env={})
    app = create_app(settings, ENV, clock=ManualClock(MONDAY), edits=Target(path=tree))
    with TestClient(app, raise_server_exceptions=True) as test_client:
        yield test_client


def send(client: TestClient, method: str, path: str, body: Any, **kw: Any) -> Any:
    return client.request(method, path, json=body, **kw)


@pytest.mark.parametrize(("method", "path", "body"), WRITES, ids=lambda w: str(w)[:40])
def test_every_write_needs_the_token_or_a_same_origin_session(
    client: TestClient, tree: Path, method: str, path: str, body: Any
) -> None:
    before = {p.name: p.read_bytes() for p in tree.iterdir()}
    assert send(client, method, path, body).status_code == 401
    wrong = send(client, method, path, body, headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    cookie = auth.ApiToken(TOKEN, "env").session(clock_mod.epoch(ManualClock(MONDAY)))
    client.cookies.set(auth.COOKIE_NAME, cookie)
    try:
        cross = send(client, method, path, body, headers={"Origin": "https://evil.example"})
        assert cross.status_code == 403
        assert send(client, method, path, body).status_code == 403  # no Origin, no Referer
        assert {p.name: p.read_bytes() for p in tree.iterdir()} == before  # nothing written
        same = send(client, method, path, body, headers={"Origin": "http://localhost"})
        assert same.status_code == 202, same.text
    finally:
        client.cookies.clear()


def test_a_job_created_over_the_api_is_in_the_file_with_its_plan(
    client: TestClient, tree: Path
) -> None:
    opened = client.get("/api/agents/sales-agent/source").json()
    assert opened["mode"] == "worktree" and opened["file"] == str(tree / "sales-agent.yaml")
    preview = client.post(
        "/api/agents/sales-agent/jobs/pipeline-check",
        json=JOB,
        params={"dry_run": 1, "base": opened["revision"]},
        headers=BEARER,
    )
    assert preview.status_code == 200 and preview.json()["status"] == "preview"
    assert "pipeline-check" not in (tree / "sales-agent.yaml").read_text()
    saved = client.post(
        "/api/agents/sales-agent/jobs/pipeline-check",
        json=JOB,
        headers={**BEARER, "If-Match": f'"{opened["revision"]}"'},
    )
    assert saved.status_code == 202, saved.text
    answer = saved.json()
    assert answer["status"] == "written" and answer["base_revision"] == opened["revision"]
    assert (
        answer["diff"] == preview.json()["diff"] and "+    - name: pipeline-check" in answer["diff"]
    )
    changes = {c["key"]: c["op"] for c in answer["plan"]["changes"]}
    assert changes["sales-agent/jobs/pipeline-check"] == "create"
    assert "Good morning: Monday" in answer["plan_markdown"]
    assert "name: pipeline-check" in (tree / "sales-agent.yaml").read_text()
    assert client.get("/api/agents/sales-agent/source").json()["revision"] == answer["revision"]


def test_a_stale_base_is_a_409_naming_the_newer_revision(client: TestClient, tree: Path) -> None:
    opened = client.get("/api/agents/sales-agent/source").json()["revision"]
    file = tree / "sales-agent.yaml"
    file.write_text(file.read_text().replace("14", "21"))
    newer = client.get("/api/agents/sales-agent/source").json()["revision"]
    refused = client.put(
        "/api/agents/sales-agent/jobs/weekly-pipeline-review",
        json=JOB,
        params={"base": opened},
        headers=BEARER,
    )
    assert refused.status_code == 409
    body = refused.json()
    assert body["reason"] == "conflict" and body["current_revision"] == newer
    assert body["base_revision"] == opened and newer[:19] in body["detail"]
    assert "21" in file.read_text() and str(JOB["description"]) not in file.read_text()


def test_an_invalid_edit_is_a_422_with_file_line_col(client: TestClient, tree: Path) -> None:
    bad = {**JOB, "schedule": "0 25 * * *"}
    answer = client.post("/api/agents/sales-agent/jobs/bad", json=bad, headers=BEARER)
    assert answer.status_code == 422
    error = answer.json()["detail"][0]
    assert error["file"] == str(tree / "sales-agent.yaml") and error["line"] > 1
    assert error["loc"][:2] == ["body", "planner"] and "schedule" in error["loc"]
    assert f"{error['file']}:{error['line']}:{error['col']}" in error["msg"]
    mismatch = client.post(
        "/api/agents/sales-agent/jobs/a", json={**JOB, "name": "b"}, headers=BEARER
    )
    assert mismatch.status_code == 422 and mismatch.json()["detail"][0]["loc"] == ["body", "name"]


def test_unknown_and_existing_names(client: TestClient) -> None:
    missing = client.put("/api/agents/sales-agent/jobs/nope", json=JOB, headers=BEARER)
    assert missing.status_code == 404 and "weekly-pipeline-review" in missing.json()["detail"]
    assert client.get("/api/agents/nobody/source").status_code == 404
    taken = client.post("/api/agents/sales-agent/jobs/quarterly-forecast", json=JOB, headers=BEARER)
    assert taken.status_code == 409 and taken.json()["reason"] == "refused"
    agent = client.post("/api/agents", json={"id": "sales-agent", "name": "S"}, headers=BEARER)
    assert agent.status_code == 409


def test_the_triggers_module_writes_edit_the_file(client: TestClient, tree: Path) -> None:
    file = tree / "sales-agent.yaml"
    made = client.post(
        "/triggers", json={"agent": "sales-agent", "name": "mail", **TRIGGER}, headers=BEARER
    )
    assert made.status_code == 202, made.text
    assert made.json()["key"] == "sales-agent/triggers/mail"
    assert made.json()["change"]["status"] == "written" and "name: mail" in file.read_text()
    patched = client.patch(
        "/triggers/sales-agent/mail", json={"enabled": False, "connected_account": "ca_2"},
        headers=BEARER,
    )  # fmt: skip
    assert patched.status_code == 202, patched.text
    text = file.read_text()
    assert "connected_account: ca_2" in text and "enabled: false" in text
    assert "Mail from {sender}" in text  # the rest of the trigger kept
    gone = client.delete("/triggers/sales-agent/mail", headers=BEARER)
    assert gone.status_code == 202 and "name: mail" not in file.read_text()
    assert client.patch("/triggers/sales-agent/mail", json={}, headers=BEARER).status_code == 404


def test_a_new_agent_then_its_first_job(client: TestClient, tree: Path) -> None:
    made = client.post(
        "/api/agents", json={"id": "ops", "name": "Ops", "timezone": "UTC"}, headers=BEARER
    )
    assert made.status_code == 202 and (tree / "ops.yaml").exists()
    job = client.post("/api/agents/ops/jobs/tick", json=JOB, headers=BEARER)
    assert job.status_code == 202
    assert {c["key"] for c in job.json()["plan"]["changes"] if c["op"] == "create"} >= {
        "ops/jobs/tick"
    }


def test_a_server_with_no_agent_source_refuses_edits(tmp_path: Path) -> None:
    settings = Settings.resolve(state_dir=tmp_path / "state", env={})
    with TestClient(create_app(settings, ENV, clock=ManualClock(MONDAY))) as plain:
        answer = plain.post("/api/agents/sales-agent/jobs/x", json=JOB, headers=BEARER)
        assert answer.status_code == 409 and answer.json()["reason"] == "read-only"
        assert "planner-operator run --path" in answer.json()["detail"]
        compat = plain.put("/triggers/sales-agent/new-contact", json={}, headers=BEARER)
        assert compat.status_code == 409 and "file" in compat.json()  # GitManaged, as before
