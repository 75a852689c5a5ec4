"""A Composio delivery whose trigger runs a Mastra workflow: the event data is the input, and
the Mastra run's result is in run history (the receiver, the inbox and the worker are real)."""

from __future__ import annotations

from pathlib import Path

import httpx
from fastapi.testclient import TestClient

from planner_operator.core.settings import Settings
from planner_operator.runtime.executors import select as executor_select
from planner_operator.runtime.executors.mastra import derived_id
from planner_operator.server.app import create_app
from planner_operator.state.runs import RunStore
from tests.support.builders import trigger_spec
from tests.support.mastra import MastraServer
from tests.support.webhook_env import (
    ENV,
    apply_triggers,
    composio_body,
    composio_headers,
    wait_settled,
)

KEY = "sales-agent/triggers/deal-won"
REMOTE = "ti_deal_won"


def test_a_delivery_runs_the_mastra_workflow_with_the_event_data(
    mastra: MastraServer, tmp_path: Path
) -> None:
    settings = Settings.resolve(state_dir=tmp_path / "state", env={})
    settings.state_dir.mkdir(parents=True)
    spec = trigger_spec(action={"workflow": {"id": "sum-numbers", "input": {}}})
    apply_triggers(settings, {(KEY, "composio", REMOTE): spec})
    executors = executor_select.from_env(settings, {"PLANNER_MASTRA_URL": mastra.url})
    body = composio_body(REMOTE, a=20, b=22)
    with TestClient(create_app(settings, ENV, executors=executors)) as client:
        for _ in range(2):  # the same delivery twice (a sender's retry): one run
            answer = client.post(
                "/webhooks/composio", content=body, headers=composio_headers("msg-w1", body)
            )
            assert answer.status_code in (200, 202), answer.text
        wait_settled(settings, timeout=30)
    with RunStore(settings.runs_db) as runs:
        [run] = runs.list(key=KEY)
    assert run.status == "succeeded", run.error
    assert run.result is not None and run.result["result"] == {"sum": 42}
    mastra_run = httpx.get(
        f"{mastra.url}/workflows/sum-numbers/runs/{derived_id(run.run_id)}"
    ).json()
    assert mastra_run["payload"] == {"a": 20, "b": 22}
