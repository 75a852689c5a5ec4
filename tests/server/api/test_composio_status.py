"""The status API on the Composio backend (over the fake Composio API): instance state and
why Composio disabled it (derived from its connected account), the request budget a dashboard
refresh spends, and sample payloads from the live trigger type."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from planner_operator.backends.select import open_backends
from planner_operator.core.settings import Settings
from planner_operator.reconcile.engine import SourceSpec, reconcile
from planner_operator.state.ledger import Ledger
from tests.fakes.composio_server import FakeComposio
from tests.server.api.status_state import AGENTS, BEARER, ENV, finished, serve


@pytest.fixture
def fake() -> Iterator[FakeComposio]:
    with FakeComposio() as server:
        yield server


@pytest.fixture
def applied(fake: FakeComposio, tmp_path: Path) -> Settings:
    settings = Settings.resolve(state_dir=tmp_path / "state", env={})
    env = fake.env(PLANNER_SCHEDULE_BACKEND="local")
    outcome = reconcile(
        SourceSpec(path=AGENTS), settings, backends_factory=lambda s: open_backends(s, env=env)
    )
    assert outcome.applied is not None and outcome.applied.ok, outcome.applied
    return settings


@pytest.fixture
def client(fake: FakeComposio, applied: Settings) -> Iterator[TestClient]:
    with serve(applied, **{**ENV, **fake.env(PLANNER_SCHEDULE_BACKEND="local")}) as test_client:
        yield test_client


def test_composio_instance_state_and_its_disabled_reason(
    fake: FakeComposio, applied: Settings, client: TestClient
) -> None:
    with Ledger(applied.ledger_db) as ledger:
        email = ledger.get("job-application-agent/triggers/recruiter-email")
    assert email is not None and email.backend == "composio"
    fake.expire_account("ca_gmail_jobsearch")  # the API says only disabled_at; the account why
    reads = fake.count("GET", "trigger_instances/active")
    triggers = {t["key"]: t for t in client.get("/api/triggers").json()}
    failing = triggers[email.key]
    assert failing["state"] == "error" and failing["backend"] == "composio"
    assert failing["disabled_reason"] == (
        "connected account ca_gmail_jobsearch is EXPIRED: reconnect it in Composio"
    )
    assert triggers["sales-agent/triggers/new-contact"]["state"] == "active"
    assert triggers["engineering-agent/triggers/deploy-hook"]["state"] == "active"  # local table
    listed = fake.count("GET", "trigger_instances/active") - reads
    assert listed >= 1
    for _ in range(5):  # a dashboard refreshing: answered from the cached read
        client.get("/api/triggers")
        client.get("/api/agents")
    assert fake.count("GET", "trigger_instances/active") - reads == listed


def test_samples_come_from_the_live_trigger_type_once(
    fake: FakeComposio, client: TestClient
) -> None:
    payload = fake.types["HUBSPOT_DEAL_STAGE_UPDATED_TRIGGER"]["payload"]
    payload["properties"]["propertyValue"] = {"type": "string", "title": "New stage"}
    path = "triggers_types/HUBSPOT_DEAL_STAGE_UPDATED_TRIGGER"
    before = fake.count("GET", path)  # the reconcile's preflight read it too
    sample = client.get("/api/triggers/sales-agent/deal-stage-changed/sample").json()
    assert sample["propertyValue"] == "sample propertyValue"  # only the live type has it
    assert sample["objectId"] == "sample objectId"
    client.get("/api/triggers/sales-agent/deal-stage-changed/sample")
    assert fake.count("GET", path) == before + 1
    answer = client.post("/api/triggers/sales-agent/deal-stage-changed/test", headers=BEARER)
    run = finished(client, answer.headers["location"])
    assert run["status"] == "succeeded" and run["event"]["raw_data"] == sample
