"""GET /metrics on the real app: reconciles, webhooks, job fires, scheduler counters, the inbox.

Process metrics are shared by every app in the test process (as in production: one registry per
process), so those assertions compare a scrape after the action with one before it; state
metrics belong to one app's state dir and are compared as absolute values.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import prometheus_client
import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from planner_operator.backends.select import open_backends
from planner_operator.core.clock import ManualClock
from planner_operator.core.records import NewDelivery
from planner_operator.core.settings import Settings
from planner_operator.errors import SourceError
from planner_operator.reconcile.engine import SourceSpec, reconcile
from planner_operator.reconcile.plan import Op
from planner_operator.runtime.jobrun import Fire, JobRunner
from planner_operator.runtime.scheduler import Job, Scheduler
from planner_operator.server import metrics
from planner_operator.server.app import create_app
from planner_operator.state.inbox import Inbox
from planner_operator.state.runs import RunStore
from tests.support.builders import job_spec
from tests.support.webhook_env import (
    ENV,
    GITHUB_KEY,
    Recorder,
    apply_triggers,
    composio_body,
    composio_headers,
    default_triggers,
    github_headers,
    wait_settled,
)

ROOT = Path(__file__).resolve().parents[2]
KEY = "sales-agent/jobs/weekly-pipeline-review"
LOCAL = {"PLANNER_SCHEDULE_BACKEND": "local", "PLANNER_TRIGGER_BACKEND": "local"}
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(client: TestClient, accept: str | None = None) -> Samples:
    answer = client.get("/metrics", headers={"accept": accept} if accept else {})
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/plain; version=0.0.4")
    out: Samples = {}
    for family in text_string_to_metric_families(answer.text):
        for sample in family.samples:
            out[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return out


def value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


def delta(after: Samples, before: Samples, name: str, **labels: str) -> float:
    return (value(after, name, **labels) or 0.0) - (value(before, name, **labels) or 0.0)


def local_backends(settings: Settings) -> Any:
    return open_backends(settings, LOCAL)


@pytest.fixture
def state(tmp_path: Path) -> Settings:
    return Settings.resolve(state_dir=tmp_path / "state", env={})


@pytest.fixture
def client(state: Settings, recorder: Recorder) -> Iterator[TestClient]:
    app = create_app(state, {**ENV, **LOCAL}, executors=recorder.executors(), worker=False)
    with TestClient(app) as test_client:
        yield test_client


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


def test_reconciles_count_runs_changes_and_load_errors(
    tmp_path: Path, state: Settings, client: TestClient
) -> None:
    agents = tmp_path / "agents"
    shutil.copytree(ROOT / "agents", agents)
    before = scrape(client)

    first = reconcile(SourceSpec(path=agents), state, backends_factory=local_backends)
    after = scrape(client)
    made = [c for c in first.plan.changes if c.op is Op.CREATE]
    jobs = sum(1 for c in made if c.kind == "job")
    assert jobs > 0 and len(made) > jobs  # the examples have both jobs and triggers
    assert delta(after, before, "planner_reconcile_runs_total", result="success") == 1
    created = {"op": "create", "result": "applied"}
    assert delta(after, before, "planner_reconcile_changes_total", kind="job", **created) == jobs
    assert (
        delta(after, before, "planner_reconcile_changes_total", kind="trigger", **created)
        == len(made) - jobs
    )
    assert delta(after, before, "planner_reconcile_duration_seconds_count") == 1
    # the ledger's view, which a CLI reconcile in another process would produce as well
    assert value(after, "planner_last_reconcile_success") == 1
    assert value(after, "planner_last_reconcile_changes", op="create") == len(made)
    stamp = value(after, "planner_last_reconcile_timestamp_seconds")
    assert stamp is not None and abs(stamp - time.time()) < 60
    assert value(after, "planner_managed_resources", kind="job", backend="local") == jobs
    info = [k for k in after if k[0] == "planner_last_applied_revision_info"]
    assert len(info) == 1 and dict(info[0][1])["revision"].startswith("work tree")

    (agents / "broken.yaml").write_text("id: broken\nname: [unterminated\n")
    reconcile(SourceSpec(path=agents), state, backends_factory=local_backends)
    with pytest.raises(SourceError):  # a file where a directory belongs: stops before planning
        reconcile(SourceSpec(path=agents / "broken.yaml"), state, backends_factory=local_backends)
    last = scrape(client)
    assert delta(last, after, "planner_reconcile_runs_total", result="incomplete") == 1
    assert delta(last, after, "planner_reconcile_runs_total", result="error") == 1
    assert delta(last, after, "planner_reconcile_load_errors_total") >= 1
    noop = {"op": "noop", "kind": "job", "result": "unchanged"}
    unchanged = delta(last, after, "planner_reconcile_changes_total", **noop)
    assert unchanged == jobs  # the second run found every job as applied
    assert value(last, "planner_last_reconcile_success") == 0
    assert (value(last, "planner_last_reconcile_load_errors") or 0) >= 1


def test_webhook_deliveries_by_outcome_and_the_work_they_cause(tmp_path: Path) -> None:
    settings = Settings.resolve(state_dir=tmp_path / "state", env={})
    apply_triggers(settings, default_triggers())
    recorder = Recorder()
    app = create_app(settings, ENV, executors=recorder.executors())
    body = composio_body()
    with TestClient(app) as client:
        before = scrape(client)
        sent = [
            client.post("/webhooks/composio", content=body, headers=composio_headers("m1", body)),
            client.post("/webhooks/composio", content=body, headers=composio_headers("m1", body)),
            client.post(
                "/webhooks/composio",
                content=body,
                headers=composio_headers("m2", body, secret="whsec_" + "A" * 32),
            ),
            client.post(
                "/webhooks/composio",
                content=body,
                headers=composio_headers("m3", body, ts=int(time.time()) - 3600),
            ),
            client.post(
                "/webhooks/composio",
                content=body,
                headers={**composio_headers("m4", body), "content-type": "text/plain"},
            ),
            client.post(
                "/webhooks/engineering-agent/nope", content=body, headers=github_headers("g0", body)
            ),
            client.post(
                "/webhooks/engineering-agent/gh-push",
                content=body,
                headers=github_headers("g1", body),
            ),
        ]
        assert [r.status_code for r in sent] == [202, 200, 401, 401, 415, 404, 202]
        wait_settled(settings)
        after = scrape(client)

    def deliveries(source: str, outcome: str, reason: str = "none") -> float:
        labels = {"source": source, "outcome": outcome, "reason": reason}
        return delta(after, before, "planner_webhook_deliveries_total", **labels)

    assert deliveries("composio", "accepted") == 1
    assert deliveries("composio", "duplicate") == 1
    assert deliveries("composio", "rejected", "bad_signature") == 1
    assert deliveries("composio", "rejected", "stale") == 1
    assert deliveries("composio", "rejected", "unsupported_media") == 1
    assert deliveries("webhook", "rejected", "unknown_trigger") == 1
    assert deliveries("webhook", "accepted") == 1
    assert delta(after, before, "planner_inbox_processed_total", outcome="done") == 2
    chat = {"action": "chat", "outcome": "success"}
    workflow = {"action": "workflow", "outcome": "success"}
    assert delta(after, before, "planner_executor_duration_seconds_count", **chat) == 1
    assert delta(after, before, "planner_executor_duration_seconds_count", **workflow) == 1
    assert value(after, "planner_inbox_deliveries", status="done") == 2
    assert value(after, "planner_inbox_depth") == 0
    run = {"agent": "job-application-agent", "trigger": "recruiter-email"}
    assert (
        value(after, "planner_trigger_runs_total", origin="webhook", status="succeeded", **run) == 1
    )
    agent, _, name = GITHUB_KEY.split("/")
    assert (
        value(
            after,
            "planner_trigger_runs_total",
            agent=agent,
            trigger=name,
            origin="webhook",
            status="succeeded",
        )
        == 1
    )


def test_job_fires_runs_and_scheduler_counters(
    state: Settings, client: TestClient, recorder: Recorder
) -> None:
    spec = job_spec("0 9 * * *")
    first_slot = datetime(2026, 1, 1, 9, 0, tzinfo=UTC)
    before = scrape(client)
    with RunStore(state.state_dir / "runs.db") as runs:
        runner = JobRunner(runs, recorder.executors())
        runner.run(KEY, spec, Fire.of(spec, first_slot), run_id="inn-1", origin="inngest")
        recorder.fail.append(RuntimeError("platform down"))
        fire = Fire.of(spec, first_slot)
        with pytest.raises(RuntimeError):
            runner.run(KEY, spec, fire, run_id="man-1", origin="manual", claim_slot=False)

        clock = ManualClock(datetime(2026, 1, 5, 12, 0, tzinfo=UTC))
        scheduler = Scheduler(runner, lambda: [Job(KEY, spec)], clock=clock)
        try:
            scheduler.reload()  # slots passed since the last run: one catch-up, the rest missed
            due = scheduler.due(clock.now())
            assert len(due) == 1
            scheduler.fire(*due[0])
            scheduler.running.add(KEY)  # the previous run still going: the next fire is skipped
            scheduler.fire(*due[0])
            counters = scheduler.counters[KEY]
        finally:
            scheduler.close()
    after = scrape(client)

    names = {"agent": "sales-agent", "job": "weekly-pipeline-review"}
    assert counters.missed > 0 and counters.fires == 1 and counters.overlap_skipped == 1
    assert value(after, "planner_job_fires_total", **names) == counters.fires
    assert value(after, "planner_job_missed_total", **names) == counters.missed
    assert value(after, "planner_job_overlap_skipped_total", **names) == 1
    assert (
        value(after, "planner_job_runs_total", origin="inngest", status="succeeded", **names) == 1
    )
    assert value(after, "planner_job_runs_total", origin="manual", status="failed", **names) == 1
    fired = [
        v
        for (name, labels), v in after.items()
        if name == "planner_job_runs_total"
        and dict(labels).get("status") == "succeeded"
        and dict(labels).get("origin") not in ("inngest", "manual")
    ]
    assert fired == [1.0]  # the scheduler's catch-up fire (origin scheduler or catchup)
    chat_ok = {"action": "chat", "outcome": "success"}
    chat_error = {"action": "chat", "outcome": "error"}
    assert delta(after, before, "planner_executor_duration_seconds_count", **chat_ok) == 2
    assert delta(after, before, "planner_executor_duration_seconds_count", **chat_error) == 1
    success = value(after, "planner_job_last_success_timestamp_seconds", **names)
    assert success is not None and abs(success - time.time()) < 60


def test_run_tally_counts_a_run_once_when_it_finishes(state: Settings, client: TestClient) -> None:
    names = {"agent": "sales-agent", "job": "weekly-pipeline-review"}
    ok = {"origin": "scheduler", "status": "succeeded", **names}
    with RunStore(state.state_dir / "runs.db") as runs:
        done = runs.start(key=KEY, kind="job", run_id="r1", origin="scheduler")
        runs.finish(done, status="succeeded")
        going = runs.start(key=KEY, kind="job", run_id="r2", origin="scheduler")
        first = scrape(client)
        runs.finish(going, status="succeeded")
        second = scrape(client)
        third = scrape(client)
    assert value(first, "planner_job_runs_total", **ok) == 1
    assert value(first, "planner_runs_running", kind="job") == 1
    assert value(second, "planner_job_runs_total", **ok) == 2
    assert value(second, "planner_runs_running", kind="job") == 0
    assert value(third, "planner_job_runs_total", **ok) == 2  # incremental reads never recount


def test_a_waiting_run_is_counted_waiting_not_running_and_once_when_it_ends(
    state: Settings, client: TestClient
) -> None:
    names = {"agent": "sales-agent", "job": "weekly-pipeline-review"}
    with RunStore(state.state_dir / "runs.db") as runs:
        row = runs.start(key=KEY, kind="job", run_id="w1", origin="scheduler")
        runs.wait(row, result={"awaiting": {"steps": ["approve"]}})
        first = scrape(client)
        runs.settle(row, status="cancelled", error="cancelled in Mastra", was="waiting")
        second = scrape(client)
    assert value(first, "planner_runs_waiting", kind="job") == 1
    assert value(first, "planner_runs_running", kind="job") == 0
    assert value(first, "planner_job_runs_total", status="cancelled", **names) is None
    assert value(second, "planner_runs_waiting", kind="job") == 0
    assert (
        value(second, "planner_job_runs_total", origin="scheduler", status="cancelled", **names)
        == 1
    )


def test_inbox_depth_and_age_show_a_stuck_delivery(state: Settings, client: TestClient) -> None:
    assert value(scrape(client), "planner_inbox_depth") == 0
    with Inbox(state.inbox_db) as inbox:  # as another process's ingress would
        inbox.insert(
            NewDelivery(id="old", source="webhook", body=b"{}", received_at=time.time() - 120)
        )
    samples = scrape(client)
    assert value(samples, "planner_inbox_depth") == 1
    assert value(samples, "planner_inbox_deliveries", status="received") == 1
    assert (value(samples, "planner_inbox_oldest_pending_age_seconds") or 0) >= 120
    assert (value(samples, "planner_inbox_oldest_due_age_seconds") or 0) >= 120


def test_two_apps_in_one_process_keep_their_own_state(tmp_path: Path, client: TestClient) -> None:
    other = Settings.resolve(state_dir=tmp_path / "other", env={})
    app = create_app(other, {**ENV, **LOCAL}, executors=Recorder().executors(), worker=False)
    with Inbox(other.inbox_db) as inbox:
        inbox.insert(NewDelivery(id="x", source="webhook", body=b"{}"))
    with TestClient(app) as second:
        mine, theirs = scrape(client), scrape(second)
    assert value(mine, "planner_inbox_depth") == 0
    assert value(theirs, "planner_inbox_depth") == 1
    runs_total = ("planner_reconcile_runs_total", frozenset({("result", "success")}))
    assert runs_total in mine and runs_total in theirs  # the process's metrics, in both
    # nothing of ours in the library's global registry (a second app would clash there)
    assert prometheus_client.REGISTRY.get_sample_value("planner_inbox_depth") is None


def test_unreadable_state_is_reported_not_fatal(state: Settings, client: TestClient) -> None:
    runs = state.state_dir / "runs.db"
    for leftover in state.state_dir.glob("runs.db*"):
        leftover.unlink()  # the app's own connection keeps the old file open
    runs.write_bytes(b"this is not a database" * 100)
    samples = scrape(client)
    assert value(samples, "planner_state_read_ok", file="runs") == 0
    assert value(samples, "planner_state_read_ok", file="inbox") == 1
    assert value(samples, "planner_inbox_depth") == 0  # the other files still read


def test_openapi_documents_text_and_openmetrics(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    content = spec["paths"]["/metrics"]["get"]["responses"]["200"]["content"]
    assert {"text/plain", "application/openmetrics-text"} <= set(content)
    answer = client.get("/metrics", headers={"accept": "application/openmetrics-text"})
    assert answer.headers["content-type"].startswith("application/openmetrics-text")
    assert answer.text.endswith("# EOF\n")
    garbled = client.get("/metrics", headers={"accept": "text/plain; version=abc"})
    assert garbled.status_code == 200  # falls back to the classic text format


@pytest.mark.parametrize(
    ("status", "message", "reason"),
    [
        (400, "missing webhook-id header", "bad_request"),
        (401, "no signature matches", "bad_signature"),
        (401, "webhook-timestamp is more than 300 s away from now", "stale"),
        (404, "no webhook trigger here", "unknown_trigger"),
        (413, "body over 1024 bytes", "too_large"),
        (415, "content type must be application/json", "unsupported_media"),
        (429, "slow down", "overloaded"),
        (503, "this trigger's webhook secret is not configured", "not_configured"),
        (503, "the inbox is unavailable", "overloaded"),
        (418, "teapot", "other"),
    ],
)
def test_rejection_reasons_are_a_small_fixed_set(status: int, message: str, reason: str) -> None:
    assert metrics.rejection_reason(status, message) == reason


def test_labels_never_carry_delivery_or_run_ids(client: TestClient, state: Settings) -> None:
    with RunStore(state.state_dir / "runs.db") as runs:
        row = runs.start(key=KEY, kind="job", run_id="secret-run-id-123", origin="manual")
        runs.finish(row, status="succeeded", result={"token": "sk-live-abc"})
    with Inbox(state.inbox_db) as inbox:
        inbox.insert(NewDelivery(id="delivery-id-456", source="webhook", body=b"{}"))
    text = client.get("/metrics").text
    assert "secret-run-id-123" not in text and "delivery-id-456" not in text
    assert "sk-live-abc" not in text
    assert json.dumps(KEY) not in text  # keys are split into agent and job labels
