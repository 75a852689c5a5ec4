"""The webhook backlog, one reading for four consumers: ``status`` (text and JSON),
``GET /api/status``, the dashboard and ``/metrics`` show the same numbers (read.backlog)."""

from __future__ import annotations

import json
import re
from pathlib import Path

from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from planner_operator.core import clock as clock_mod
from planner_operator.core.records import NewDelivery
from planner_operator.core.settings import Settings
from planner_operator.read import backlog, status
from planner_operator.server.app import create_app
from planner_operator.state.inbox import Inbox
from tests.support.webhook_env import ENV, Recorder, apply_triggers, composio_body, default_triggers

LOCAL = {"PLANNER_SCHEDULE_BACKEND": "local", "PLANNER_TRIGGER_BACKEND": "local"}


def test_every_consumer_shows_the_same_backlog_and_its_age(tmp_path: Path) -> None:
    settings = Settings.resolve(state_dir=tmp_path / "state", env={})
    apply_triggers(settings, default_triggers())
    clock = clock_mod.ManualClock()
    now = clock_mod.epoch(clock)
    assert backlog.inbox_view(settings, now=now) is None  # no inbox yet: nothing to say
    with Inbox(settings.inbox_db, clock=clock) as inbox:
        inbox.insert_many(
            [
                NewDelivery(
                    id=f"m{n}", source="composio", body=composio_body(), received_at=now - age
                )
                for n, age in enumerate((42.5, 10, 3, 1))
            ]
        )
        [running] = inbox.claim("w", 1, lease=60, now=now - 1)  # the oldest, being run
        [retry] = inbox.claim("w", 1, lease=60, now=now - 1)
        inbox.settle(retry.id, "w", status="failed", error="boom", retry_at=now + 30)
    assert (running.id, retry.id) == ("m0", "m1")
    expected = backlog.InboxView(
        counts={"received": 2, "processing": 1, "failed": 1, "done": 0, "ignored": 0, "dead": 0},
        pending=4,
        backlog_age_seconds=42.5,  # the oldest pending delivery, though a worker has it
        due=2,  # m2 and m3: m0 is leased, m1 waits for its retry time
        oldest_due_age_seconds=3.0,
    )
    assert backlog.inbox_view(settings, now=now) == expected

    report = status.collect(settings, now=clock.now())
    assert report.inbox == expected
    line = (
        "Webhook inbox: 4 pending, the oldest 42.5 s old; 2 due, waiting up to 3.0 s for a worker"
    )
    assert line in status.render_text(report)
    assert json.loads(status.render_json(report))["inbox"] == expected.model_dump()

    app = create_app(
        settings, {**ENV, **LOCAL}, executors=Recorder().executors(), worker=False, clock=clock
    )
    with TestClient(app) as client:
        api = client.get("/api/status")
        assert api.status_code == 200, api.text
        assert api.json()["inbox"] == expected.model_dump()
        page = client.get("/planner/")
        assert page.status_code == 200
        shown = re.sub(r"\s+", " ", page.text)
        assert (
            "<strong>4</strong> pending, the oldest 42.5 s old; 2 due, waiting up to 3.0 s" in shown
        )
        scraped = client.get("/metrics").text
    samples = {
        s.name: s.value
        for family in text_string_to_metric_families(scraped)
        for s in family.samples
        if s.name.startswith("planner_inbox_") and not s.labels
    }
    assert samples["planner_inbox_depth"] == 4
    assert samples["planner_inbox_oldest_pending_age_seconds"] == 42.5
    assert samples["planner_inbox_oldest_due_age_seconds"] == 3.0
