"""Workflow registry and runner, and the shipped example workflows."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx
import pytest

from planner_operator.config import desired
from planner_operator.errors import PermanentError
from planner_operator.reconcile import source
from planner_operator.runtime.executors.local import LocalOutbox
from planner_operator.runtime.executors.workflows import Registry, Target, WorkflowRunner, call
from planner_operator.runtime.workflows import (
    job_application_check,
    post_deploy_checks,
    qualify_lead,
    sales_forecast,
    slack_digest,
)
from planner_operator.state.runs import RunStore

ROOT = Path(__file__).resolve().parents[2]
CALLS: list[dict[str, Any]] = []


def counting(input: Mapping[str, Any], context: Mapping[str, Any]) -> dict[str, Any]:
    CALLS.append(dict(input))
    return {"n": len(CALLS), "state_dir": context["state_dir"]}


def one_arg(input: Mapping[str, Any]) -> str:
    return f"got {sorted(input)}"


def runner(tmp_path: Path, env: dict[str, str] | None = None, **kw: Any) -> WorkflowRunner:
    return WorkflowRunner(
        Registry.discover(env or {}),
        journal=LocalOutbox(tmp_path / "outbox.db"),
        state_dir=tmp_path,
        env=env or {},
        **kw,
    )


def test_every_workflow_used_by_the_example_agents_is_registered() -> None:
    resources = desired.build(source.load(source.read_paths([ROOT / "agents"])))
    used = {
        r.spec["action"]["workflow"]["id"]
        for r in resources.values()
        if "workflow" in r.spec["action"]
    }
    assert len(used) >= 5 and used <= set(Registry.discover({}).ids())


def test_env_registrations_override_and_bad_ones_are_named() -> None:
    env = {
        "PLANNER_WORKFLOWS": "a=tests.runtime.test_workflows:counting; b=https://w.example/run;"
        "c=inngest:app/c.requested"
    }
    registry = Registry.discover(env)
    assert registry.get("a") == Target(
        "python", "tests.runtime.test_workflows:counting", "PLANNER_WORKFLOWS"
    )
    assert registry.get("b") is not None and registry.get("b").kind == "http"  # type: ignore[union-attr]
    assert registry.get("c") == Target("inngest", "app/c.requested", "PLANNER_WORKFLOWS")
    with pytest.raises(PermanentError, match="not id=target"):
        Registry.discover({"PLANNER_WORKFLOWS": "justaname"})
    with pytest.raises(PermanentError, match="module:function"):
        Registry.discover({"PLANNER_WORKFLOWS": "x=nocolon"})
    with pytest.raises(PermanentError, match="cannot load"):
        Registry.discover({"PLANNER_WORKFLOWS": "x=no.such.module:f"}).load("x")


def test_entry_points_register_workflows(monkeypatch: pytest.MonkeyPatch) -> None:
    from importlib import metadata

    point = metadata.EntryPoint(
        "from-plugin", "tests.runtime.test_workflows:one_arg", "planner_operator.workflows"
    )
    monkeypatch.setattr(metadata, "entry_points", lambda group: [point])
    registry = Registry.discover({})
    assert call(registry.load("from-plugin"), {"b": 1, "a": 2}, {}) == "got ['a', 'b']"


def test_local_runs_are_idempotent_by_run_key(tmp_path: Path) -> None:
    CALLS.clear()
    wf = runner(tmp_path, {"PLANNER_WORKFLOWS": "count=tests.runtime.test_workflows:counting"})
    first = wf.run(workflow="count", input={"x": 1}, context={"run_key": "d1"})
    again = wf.run(workflow="count", input={"x": 1}, context={"run_key": "d1"})
    other = wf.run(workflow="count", input={"x": 2}, context={"run_key": "d2"})
    assert first == again == {"n": 1, "state_dir": str(tmp_path)}
    assert other["n"] == 2 and len(CALLS) == 2


def test_unknown_workflows_fail_permanently_unless_a_platform_takes_them(tmp_path: Path) -> None:
    with pytest.raises(PermanentError, match="no workflow registered as 'nope'"):
        runner(tmp_path).run(workflow="nope", input={}, context={"run_key": "k"})

    class Platform:
        def run(self, *, workflow: str, input: Any, context: Any) -> Any:
            return {"platform": workflow}

    wf = runner(tmp_path, fallback=Platform())
    assert wf.run(workflow="nope", input={}, context={}) == {"platform": "nope"}
    assert wf.run(workflow="qualify-lead", input={}, context={}) == {"platform": "qualify-lead"}


def test_http_and_inngest_targets_carry_the_run_key(tmp_path: Path) -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"ids": ["evt-1"], "status": 200})

    env = {
        "PLANNER_WORKFLOWS": "h=http://wf.local/run;i=inngest:sales/qualify",
        "INNGEST_DEV": "http://127.0.0.1:8288",
    }
    wf = runner(tmp_path, env, client=httpx.Client(transport=httpx.MockTransport(handler)))
    wf.run(workflow="h", input={"a": 1}, context={"run_key": "msg_9"})
    result = wf.run(workflow="i", input={"a": 1}, context={"run_key": "msg_9"})
    http_call, event_call = seen
    assert http_call.headers["idempotency-key"] == "msg_9"
    assert str(event_call.url) == "http://127.0.0.1:8288/e/NO_EVENT_KEY_SET"
    [event] = json.loads(event_call.content)
    assert (event["id"], event["name"], event["data"]["input"]) == (
        "msg_9",
        "sales/qualify",
        {"a": 1},
    )
    assert result["event_id"] == "msg_9" and result["event_ids"] == ["evt-1"]


# -- the shipped workflows ------------------------------------------------------------------


def test_job_application_check_reports_new_matches_once(tmp_path: Path) -> None:
    context = {"state_dir": str(tmp_path), "run_key": "r1"}
    postings = str(ROOT / "examples" / "postings.json")
    first = job_application_check.run(
        {"keywords": ["python", "platform"], "postings_file": postings}, context
    )
    assert first["checked"] == 10 and first["matched"] >= 4
    assert {m["id"] for m in first["new_matches"]} >= {"p-1001", "p-1003", "p-1009"}
    assert "new matching posting" in first["report"]
    retried = job_application_check.run(
        {"keywords": ["python", "platform"], "postings_file": postings}, context
    )
    assert retried["new_matches"] == first["new_matches"]  # same run key: same report
    later = job_application_check.run(
        {"keywords": "python, swift", "postings_file": postings}, {**context, "run_key": "r2"}
    )
    assert [m["id"] for m in later["new_matches"]] == ["p-1010"]  # only the swift one is new
    with pytest.raises(PermanentError, match="keywords"):
        job_application_check.run({}, context)
    with pytest.raises(PermanentError, match="does not exist"):
        job_application_check.run(
            {"keywords": ["x"], "postings_file": str(tmp_path / "no")}, context
        )


def test_qualify_lead_scores_or_asks_for_enrichment() -> None:
    bare = qualify_lead.run(
        {"objectId": "112233445566", "subscriptionType": "contact.creation"}, {}
    )
    assert bare["grade"] == "unknown" and bare["needs_enrichment"]
    scored = qualify_lead.run(
        {
            "objectId": "1",
            "properties": {
                "email": "cto@acme.io",
                "jobtitle": "CTO, Chief of Tech",
                "company": "Acme",
                "numemployees": "600",
                "lifecyclestage": "salesqualifiedlead",
            },
        },
        {},
    )
    assert scored["grade"] == "A" and scored["score"] == 100 and len(scored["reasons"]) == 5


def test_post_deploy_checks_and_sales_forecast_stub() -> None:
    ok = post_deploy_checks.run(
        {"service": "api", "version": "1.2", "environment": "staging", "status": "success"}, {}
    )
    assert ok["status"] == "passed"
    prod = post_deploy_checks.run({"data": {"service": "api", "environment": "production"}}, {})
    assert prod["status"] == "attention" and "names the version" in prod["attention"]
    stub = sales_forecast.run({"quarter_start": "2026-01-01"}, {})
    assert stub["stub"] and stub["recorded_input"] == {"quarter_start": "2026-01-01"}


def test_slack_digest_is_composed_from_run_history(tmp_path: Path) -> None:
    with RunStore(tmp_path / "runs.db") as runs:
        row = runs.start(
            key="engineering-agent/triggers/new-issue",
            kind="trigger",
            run_id="d1",
            origin="webhook",
            rendered="New issue #42: Login spec times out",
        )
        runs.finish(row, status="succeeded")
    context = {"state_dir": str(tmp_path), "key": "engineering-agent/jobs/slack-digest"}
    digest = slack_digest.run({"channel": "#eng-platform", "day": "2026-11-23"}, context)
    assert digest["events"] == 1 and digest["posted"] is False
    assert "new-issue: 1 event(s); latest: New issue #42" in digest["text"]
