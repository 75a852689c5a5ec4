"""GET /api/agents, /api/jobs, /api/triggers, /api/runs, /api/reconcile over the example agents:
what they show, filters and pagination, 404s and 422s, and states when the backends drift or
cannot be read."""

from __future__ import annotations

import time
from typing import Any

from fastapi.testclient import TestClient

from planner_operator.backends.local import LocalScheduleBackend, LocalTriggerBackend
from planner_operator.core.clock import ManualClock
from planner_operator.core.records import Run
from planner_operator.core.settings import Settings
from planner_operator.read import runviews, views
from planner_operator.reconcile.engine import SourceSpec, reconcile
from planner_operator.state.inbox import Inbox
from planner_operator.state.ledger import Ledger
from tests.server.api.status_state import (
    AGENTS,
    BEARER,
    applied,
    applied_once,
    client,
    finished,
    serve,
)

__all__ = ["applied", "applied_once", "client"]  # fixtures


def by_key(items: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {item["key"]: item for item in items}


def test_agents_show_names_files_timezones_and_state_counts(client: TestClient) -> None:
    answer = client.get("/api/agents")
    assert answer.status_code == 200
    agents = {a["id"]: a for a in answer.json()}
    assert set(agents) == {"engineering-agent", "job-application-agent", "sales-agent"}
    jobs_agent = agents["job-application-agent"]
    assert jobs_agent["name"] == "Job Application Agent"
    assert jobs_agent["description"].startswith("Finds matching job postings")
    assert jobs_agent["timezone"] == "Europe/Berlin"
    assert jobs_agent["file"].endswith("agents/job-application-agent.yaml")
    assert (jobs_agent["jobs"], jobs_agent["triggers"]) == (2, 1)
    assert agents["sales-agent"]["states"] == {"active": 3, "paused": 1}  # quarterly-forecast


def test_jobs_show_schedule_in_words_next_fires_and_counters(client: TestClient) -> None:
    jobs = by_key(client.get("/api/jobs").json())
    assert len(jobs) == 6
    digest = jobs["engineering-agent/jobs/slack-digest"]
    assert digest["schedule"] == "30 9 * * 1-5"
    assert "09:30" in digest["schedule_text"] and "Monday through Friday" in digest["schedule_text"]
    assert digest["timezone"] == "Asia/Kolkata" and digest["state"] == "active"
    assert len(digest["next_runs"]) == 5
    assert all(
        r["at"].endswith("+05:30") and r["utc"].endswith("+00:00") for r in digest["next_runs"]
    )
    assert [r["utc"] for r in digest["next_runs"]] == sorted(r["utc"] for r in digest["next_runs"])
    assert (digest["fires"], digest["missed"], digest["overlap_skipped"]) == (0, 0, 0)
    assert digest["last_run"] is None
    assert (digest["action"], digest["action_summary"]) == ("workflow", "slack-digest")
    assert digest["backend"] == "local" and digest["remote_id"].startswith("job_")
    assert digest["revision"] and digest["file"].endswith("engineering-agent.yaml")
    paused = jobs["sales-agent/jobs/quarterly-forecast"]
    assert paused["state"] == "paused" and "enabled: false" in paused["detail"]
    assert paused["next_runs"] == []
    mine = client.get("/api/jobs", params={"agent": "sales-agent"}).json()
    assert {j["name"] for j in mine} == {"weekly-pipeline-review", "quarterly-forecast"}
    assert client.get("/api/jobs", params={"agent": "nobody"}).json() == []


def test_triggers_show_source_filter_state_and_last_event(client: TestClient) -> None:
    triggers = by_key(client.get("/api/triggers").json())
    assert len(triggers) == 6
    incident = triggers["engineering-agent/triggers/incident-mention"]
    assert (incident["source"], incident["toolkit"], incident["event"]) == (
        "composio",
        "slack",
        "SLACK_RECEIVE_MESSAGE",
    )
    assert incident["filter"] == {
        "channel": {"equals": "C0INCIDENTS"},
        "text": {"contains": "sev1"},
    }
    assert incident["state"] == "active" and incident["disabled_reason"] is None
    assert incident["last_event"] is None and incident["last_run"] is None
    hook = triggers["engineering-agent/triggers/deploy-hook"]
    assert hook["source"] == "webhook" and hook["toolkit"] is None
    assert (hook["action"], hook["action_summary"]) == ("workflow", "post-deploy-checks")
    tested = client.post("/api/triggers/engineering-agent/incident-mention/test", headers=BEARER)
    assert tested.status_code == 202
    run = finished(client, tested.headers["location"])
    incident = client.get("/api/triggers/engineering-agent/incident-mention").json()
    assert incident["last_event"]["delivery_id"] == run["run_id"]
    assert incident["last_event"]["status"] == "done"
    assert incident["last_run"]["id"] == run["id"]
    assert [t["name"] for t in client.get("/api/triggers?agent=sales-agent").json()] == [
        "deal-stage-changed",
        "new-contact",
    ]


def test_unknown_names_are_404_saying_how_to_list_what_exists(client: TestClient) -> None:
    cases = {
        "/api/jobs/sales-agent/nightly": "GET /api/jobs?agent=sales-agent",
        "/api/triggers/sales-agent/nope": "GET /api/triggers?agent=sales-agent",
        "/api/triggers/nobody/nope/sample": "GET /api/triggers?agent=nobody",
        "/api/runs/12345": "GET /api/runs",
    }
    for path, hint in cases.items():
        answer = client.get(path)
        assert answer.status_code == 404, path
        assert hint in answer.json()["detail"]
    assert client.get("/api/jobs/sales-agent/new-contact").status_code == 404  # a trigger
    for path in ("/api/jobs/sales-agent/nightly/run", "/api/triggers/a/b/test"):
        answer = client.post(path, headers=BEARER)
        assert answer.status_code == 404 and "lists" in answer.json()["detail"]


def test_runs_filter_by_agent_job_trigger_and_status(client: TestClient) -> None:
    started = [
        client.post("/api/jobs/sales-agent/weekly-pipeline-review/run", headers=BEARER),
        client.post("/api/jobs/engineering-agent/on-call-handover/run", headers=BEARER),
        client.post("/api/triggers/sales-agent/new-contact/test", headers=BEARER),
        client.post(
            "/api/triggers/engineering-agent/incident-mention/test",
            headers=BEARER,
            json={"channel": "C0GENERAL", "text": "lunch?"},
        ),
    ]
    runs = [finished(client, s.headers["location"]) for s in started]
    assert [r["status"] for r in runs] == ["succeeded", "succeeded", "succeeded", "skipped"]

    def ids(**params: Any) -> list[int]:
        answer = client.get("/api/runs", params=params)
        assert answer.status_code == 200, answer.text
        return [r["id"] for r in answer.json()["items"]]

    assert ids() == sorted((r["id"] for r in runs), reverse=True)
    assert ids(agent="sales-agent") == [runs[2]["id"], runs[0]["id"]]
    assert ids(agent="sales-agent", job="weekly-pipeline-review") == [runs[0]["id"]]
    assert ids(agent="sales-agent", trigger="new-contact") == [runs[2]["id"]]
    assert ids(agent="sales-agent", job="new-contact") == []  # a trigger, not a job
    assert ids(status="skipped") == [runs[3]["id"]]
    assert ids(agent="engineering-agent", status="succeeded") == [runs[1]["id"]]
    assert ids(agent="sales") == []  # a whole agent id, not a prefix of one


def test_runs_page_with_next_before_until_the_last_page(client: TestClient) -> None:
    for _ in range(5):
        answer = client.post("/api/jobs/sales-agent/weekly-pipeline-review/run", headers=BEARER)
        finished(client, answer.headers["location"])
    seen: list[int] = []
    before = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": 2, **({"before": before} if before else {})}
        page = client.get("/api/runs", params=params).json()
        seen += [r["id"] for r in page["items"]]
        pages += 1
        before = page["next_before"]
        if before is None:
            break
        assert before == page["items"][-1]["id"]
    assert pages == 3 and len(seen) == 5 == len(set(seen)) and seen == sorted(seen, reverse=True)
    assert client.get("/api/runs", params={"limit": 5}).json()["next_before"] is None


def test_bad_run_queries_are_422_naming_the_parameter(client: TestClient) -> None:
    cases: list[tuple[dict[str, Any], str]] = [
        ({"job": "weekly-pipeline-review"}, "job"),
        ({"trigger": "new-contact"}, "trigger"),
        ({"agent": "a", "job": "x", "trigger": "y"}, "trigger"),
        ({"limit": 0}, "limit"),
        ({"limit": 501}, "limit"),
        ({"status": "done"}, "status"),
        ({"before": 0}, "before"),
        ({"before": 2**64}, "before"),
    ]
    for params, name in cases:
        answer = client.get("/api/runs", params=params)
        assert answer.status_code == 422, params
        [error] = answer.json()["detail"]
        assert error["loc"] == ["query", name], params
    detail = client.get("/api/runs", params={"job": "x"}).json()["detail"][0]["msg"]
    assert "add `agent=<id>`" in detail
    assert client.get("/api/runs/0").status_code == 422
    assert client.get(f"/api/runs/{2**64}").status_code == 422


def test_run_detail_has_what_was_sent_what_came_back_and_timing(client: TestClient) -> None:
    # the app's clock is pinned to a Monday (status_state.MONDAY): the message names that day
    # whatever day the tests run on, and stays under the 160-character summary limit
    answer = client.post("/api/jobs/job-application-agent/morning-job-check/run", headers=BEARER)
    run = finished(client, answer.headers["location"])
    assert run["key"] == "job-application-agent/jobs/morning-job-check" and run["kind"] == "job"
    assert run["rendered"].startswith("Good morning! Check job boards for new postings matching")
    assert "senior Python roles" in run["rendered"]
    assert "Today is Monday, 2026-12-07." in run["rendered"]
    assert run["started_at"].startswith("2026-12-07T08:00:00")
    assert run["summary"] == run["rendered"]  # under 160 characters: whole
    assert run["result"]["thread_id"].startswith("thr_") and run["result"]["sink"] == "local"
    assert run["error"] is None and run["event"] is None
    assert run["finished_at"] >= run["started_at"] and run["duration_ms"] >= 0


def test_drifted_error_and_disabled_states_come_from_the_backends(applied: Settings) -> None:
    with Ledger(applied.ledger_db) as ledger:
        digest = ledger.get("engineering-agent/jobs/slack-digest")
        email = ledger.get("job-application-agent/triggers/recruiter-email")
        issue = ledger.get("engineering-agent/triggers/new-issue")
        hubspot = ledger.get("sales-agent/triggers/new-contact")
    assert digest and email and issue and hubspot
    with LocalScheduleBackend(applied.state_db) as jobs:
        jobs.update(digest.remote_id, digest.key, {**digest.spec, "schedule": "0 7 * * *"})
    with LocalTriggerBackend(applied.state_db) as backend:
        backend.set_state(email.remote_id, "error", "poller failing: token revoked")
        backend.delete(hubspot.remote_id)
    with Inbox(applied.inbox_db) as box:  # a composio.trigger.disabled event
        box.set_trigger_status(
            f"trigger:{issue.remote_id}",
            "disabled",
            "too many errors",
            delivery_id="d1",
            at=time.time(),
        )
    with serve(applied) as client:
        job = client.get("/api/jobs/engineering-agent/slack-digest").json()
        triggers = by_key(client.get("/api/triggers").json())
        agents = {a["id"]: a for a in client.get("/api/agents").json()}
    assert job["state"] == "drifted" and "changed remotely: schedule" in job["detail"]
    failing = triggers[email.key]
    assert failing["state"] == "error" and failing["detail"] == "poller failing: token revoked"
    assert failing["disabled_reason"] == "poller failing: token revoked"
    disabled = triggers[issue.key]
    assert disabled["state"] == "error" and disabled["detail"] == "disabled: too many errors"
    assert disabled["disabled_reason"] == "too many errors"
    gone = triggers[hubspot.key]
    assert gone["state"] == "drifted" and "missing remotely" in gone["detail"]
    assert agents["engineering-agent"]["states"] == {"active": 3, "drifted": 1, "error": 1}


def test_a_backend_that_cannot_be_read_shows_the_ledger_view_in_error(applied: Settings) -> None:
    # Composio forced as the trigger backend without its API key: every backend read fails
    with serve(applied, PLANNER_TRIGGER_BACKEND="composio") as client:
        jobs = client.get("/api/jobs")
        triggers = client.get("/api/triggers")
        agents = client.get("/api/agents")
    assert jobs.status_code == triggers.status_code == agents.status_code == 200
    rows = jobs.json() + triggers.json()
    assert len(rows) == 12 and {r["state"] for r in rows} == {"error"}
    assert all("cannot read the backend" in r["detail"] for r in rows)
    assert all("COMPOSIO_API_KEY is not set" in r["detail"] for r in rows)
    digest = by_key(jobs.json())["engineering-agent/jobs/slack-digest"]
    assert digest["schedule_text"] and len(digest["next_runs"]) == 5  # still the ledger's view
    assert {a["id"]: a["states"] for a in agents.json()}["sales-agent"] == {"error": 4}


def test_the_backend_read_is_cached_until_the_ttl_or_a_reconcile(applied: Settings) -> None:
    clock = ManualClock()
    reader = views.Reader(applied, backends_ttl=15.0, env={}, clock=clock)
    key = "engineering-agent/jobs/on-call-handover"
    assert reader.job("engineering-agent", "on-call-handover").state == "active"
    with Ledger(applied.ledger_db) as ledger:
        entry = ledger.get(key)
    assert entry is not None
    with LocalScheduleBackend(applied.state_db) as jobs:
        jobs.set_state(entry.remote_id, "paused")
    clock.advance(14.0)
    assert reader.job("engineering-agent", "on-call-handover").state == "active"  # cached
    clock.advance(1.0)
    assert reader.job("engineering-agent", "on-call-handover").state == "drifted"  # re-read
    # a reconcile changes the ledger: the next answer reads the backends again at once
    reconcile(SourceSpec(path=AGENTS), applied)
    assert reader.job("engineering-agent", "on-call-handover").state == "active"


def test_agent_names_fall_back_to_the_id_without_recorded_metadata(applied: Settings) -> None:
    with Ledger(applied.ledger_db) as ledger:
        ledger.set_meta("agents", "{}")  # a ledger written before agent metadata was recorded
    agents = views.Reader(applied, env={}).agents()
    assert (agents[0].id, agents[0].name, agents[0].timezone) == (
        "engineering-agent",
        "engineering-agent",
        None,
    )
    assert agents[0].file.endswith("engineering-agent.yaml") and agents[0].jobs == 2


def test_last_reconcile_and_openapi_document_the_routes(client: TestClient) -> None:
    last = client.get("/api/reconcile").json()
    assert last["counts"]["create"] == 12 and last["counts"]["delete"] == 0
    assert last["load_errors"] == [] and last["failures"] == [] and last["blocked"] == 0
    assert last["revision"] == last["last_applied_revision"] and last["at"]
    spec = client.get("/openapi.json", headers=BEARER).json()
    paths = spec["paths"]
    for path in (
        "/api/agents",
        "/api/jobs",
        "/api/jobs/{agent}/{job}",
        "/api/jobs/{agent}/{job}/run",
        "/api/triggers",
        "/api/triggers/{agent}/{trigger}",
        "/api/triggers/{agent}/{trigger}/test",
        "/api/triggers/{agent}/{trigger}/sample",
        "/api/runs",
        "/api/runs/{run_id}",
        "/api/reconcile",
    ):
        for operation in paths[path].values():
            assert operation["summary"] and operation["description"], path
            ok = operation["responses"].get("200") or operation["responses"]["202"]
            assert "schema" in ok["content"]["application/json"], path
    assert "404" in paths["/api/runs/{run_id}"]["get"]["responses"]
    run_now = paths["/api/jobs/{agent}/{job}/run"]["post"]["responses"]
    assert "Location" in run_now["202"]["headers"]


def test_listed_runs_shorten_long_messages() -> None:
    long = "Review\n\n" + "every deal " * 40
    run = Run(
        id=7,
        key="sales-agent/triggers/new-contact",
        kind="trigger",
        run_id=f"{runviews.TEST_PREFIX}0123",
        attempt=1,
        origin="test",
        slot=None,
        status="succeeded",
        reason=None,
        action="chat",
        rendered=long,
        result={"thread_id": "thr_1"},
        error=None,
        started_at="2026-03-29T01:00:00.000+00:00",
        finished_at="2026-03-29T01:00:01.250+00:00",
    )
    listed = views.summary(run)
    assert listed.summary is not None and len(listed.summary) == 160
    assert listed.summary.startswith("Review every deal every deal") and listed.summary[-1] == "…"
    assert listed.origin == "test" and listed.duration_ms == 1250.0
    assert (listed.agent, listed.name) == ("sales-agent", "new-contact")
    assert views.detail(run).rendered == long
