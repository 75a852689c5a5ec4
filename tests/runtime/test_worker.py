"""The worker on real stores: routing, filters, retries, dead letters, crash recovery, CLI."""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from planner_operator.cli import inbox as inbox_cli
from planner_operator.core.records import NewDelivery
from planner_operator.core.settings import Settings
from planner_operator.errors import NotFound, RetryableError
from planner_operator.read.status import lifecycle
from planner_operator.runtime.worker import Backoff, Routes, Worker, WorkerConfig
from planner_operator.state.inbox import Inbox
from planner_operator.state.runs import RunStore
from tests.support.webhook_env import (
    DEPLOY_KEY,
    MAIL_ID,
    MAIL_KEY,
    Recorder,
    apply_triggers,
    composio_body,
    default_triggers,
    mail_spec,
)


@dataclass
class Rig:
    settings: Settings
    inbox: Inbox
    runs: RunStore
    recorder: Recorder
    worker: Worker

    def put(self, delivery_id: str, body: bytes | None = None, **kw: Any) -> None:
        self.inbox.insert(
            NewDelivery(
                id=delivery_id,
                source=kw.pop("source", "composio"),
                body=composio_body() if body is None else body,
                **kw,
            )
        )

    def status(self, delivery_id: str) -> str:
        found = self.inbox.get(delivery_id)
        assert found is not None
        return found.status

    def make_due(self, delivery_id: str) -> None:
        with self.inbox._db.transaction() as tx:  # a retry time long past
            tx.execute(
                "UPDATE deliveries SET next_attempt_at = ? WHERE id = ?",
                ("1970-01-01T00:00:00.000Z", delivery_id),
            )


def make_rig(tmp_path: Path, triggers: dict[Any, Any] | None = None, **config: Any) -> Rig:
    settings = Settings.resolve(state_dir=tmp_path, env={})
    apply_triggers(settings, triggers or default_triggers())
    inbox = Inbox(tmp_path / "inbox.db")
    runs = RunStore(tmp_path / "runs.db")
    recorder = Recorder()
    worker = Worker(
        inbox=inbox,
        routes=Routes(settings),
        runs=runs,
        executors=recorder.executors(),
        config=WorkerConfig(**{"backoff": Backoff(base=0.01, cap=0.02), **config}),
    )
    return Rig(settings, inbox, runs, recorder, worker)


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    r = make_rig(tmp_path)
    yield r
    r.inbox.close()
    r.runs.close()


def test_a_delivery_runs_and_run_history_has_the_seed_models(rig: Rig) -> None:
    rig.put("m1")
    assert rig.worker.drain() == 1
    assert rig.status("m1") == "done"
    [run] = rig.runs.list(key=MAIL_KEY)
    assert (run.status, run.origin, run.run_id, run.action) == (
        "succeeded",
        "webhook",
        "m1",
        "chat",
    )
    assert run.rendered == "New email from recruiter@example.com: Interview. Draft a reply."
    event, result = run.event, run.trigger_result
    assert event["trigger_id"] == MAIL_KEY and event["agent_id"] == "job-application-agent"
    assert event["trigger_type"] == "GMAIL_NEW_GMAIL_MESSAGE"
    assert event["raw_data"] == {"subject": "Interview", "sender": "recruiter@example.com"}
    assert event["context"]["delivery_id"] == "m1" and event["context"]["version"] == "V3"
    assert result["success"] and result["agent_executed"] and not result["workflow_executed"]
    assert result["variables"] == {"sender": "recruiter@example.com", "subject": "Interview"}
    assert result["agent_data"]["thread_id"] == "thr_0"


def test_filter_mismatch_and_disabled_triggers_run_nothing(tmp_path: Path) -> None:
    triggers = default_triggers()
    triggers[(MAIL_KEY, "composio", MAIL_ID)] = mail_spec(
        filter={"any": [{"sender": {"contains": "RECRUIT"}}, {"subject": {"contains": "offer"}}]}
    )
    triggers[("a/triggers/off", "composio", "ti_off")] = mail_spec(enabled=False)
    r = make_rig(tmp_path, triggers)
    r.put("match", composio_body(subject="hi", sender="recruiter@x.io"))
    r.put("nomatch", composio_body(subject="lunch?", sender="friend@x.io"))
    r.put("off", composio_body("ti_off"))
    r.worker.drain()
    assert [r.status(i) for i in ("match", "nomatch", "off")] == ["done", "ignored", "ignored"]
    assert r.recorder.keys == ["match"]
    skipped = {x.key: x for x in r.runs.list(status="skipped")}
    assert skipped[MAIL_KEY].reason == "filter did not match"
    assert skipped[MAIL_KEY].trigger_result["skipped"] == "filter did not match"
    assert skipped["a/triggers/off"].reason == "ignored (disabled)"


def test_retryable_errors_back_off_then_succeed(rig: Rig) -> None:
    rig.recorder.fail = [RetryableError("503", retry_after=0.0), RetryableError("429")]
    rig.put("m")
    rig.worker.drain()
    assert rig.status("m") == "failed"
    for _ in range(2):
        rig.make_due("m")
        rig.worker.drain()
    assert rig.status("m") == "done"
    runs = rig.runs.list(key=MAIL_KEY)
    assert [x.status for x in runs] == ["succeeded", "failed", "failed"]
    assert [x.attempt for x in runs] == [3, 2, 1]


def test_permanent_errors_dead_letter_at_once_and_replay_reruns(rig: Rig) -> None:
    rig.recorder.fail = [NotFound("agent gone")]
    rig.put("m")
    rig.worker.drain()
    found = rig.inbox.get("m")
    assert found is not None and found.status == "dead" and "agent gone" in (found.last_error or "")
    rig.inbox.requeue("m")
    rig.worker.drain()
    assert rig.status("m") == "done"
    assert rig.recorder.keys == ["m", "m"]  # same key: the failed call never made a thread


def test_max_attempts_then_dead(tmp_path: Path) -> None:
    r = make_rig(tmp_path, max_attempts=3)
    r.recorder.fail = [RuntimeError(f"boom {i}") for i in range(5)]
    r.put("m")
    for _ in range(5):
        r.make_due("m")
        r.worker.drain()
    found = r.inbox.get("m")
    assert found is not None and (found.status, found.attempts) == ("dead", 3)
    assert "dead after 3 attempts" in (found.outcome or "")


def test_template_errors_are_dead_letters(rig: Rig) -> None:
    rig.put("m", composio_body(subject="no sender field"))
    rig.worker.drain()
    found = rig.inbox.get("m")
    assert found is not None and found.status == "dead"
    assert "{sender}" in (found.last_error or "")
    assert rig.recorder.calls == []


def test_unknown_trigger_is_retried_briefly_then_ignored(rig: Rig) -> None:
    rig.put("m", composio_body("ti_nobody"))
    for _ in range(4):
        rig.make_due("m")
        rig.worker.drain()
    found = rig.inbox.get("m")
    assert found is not None and found.status == "ignored"
    assert "ti_nobody" in (found.outcome or "")


def test_an_event_that_beats_its_ledger_row_still_runs(rig: Rig) -> None:
    rig.put("m", composio_body("ti_new"))
    rig.worker.drain()
    assert rig.status("m") == "failed"
    apply_triggers(rig.settings, {("a/triggers/new", "composio", "ti_new"): mail_spec()})
    rig.make_due("m")
    time.sleep(0.6)  # the miss forces a reload of a snapshot older than 0.5 s
    rig.worker.drain()
    assert rig.status("m") == "done"


def test_crash_mid_run_is_recovered_without_running_twice(rig: Rig) -> None:
    rig.put("m")
    [claimed] = rig.inbox.claim("dead-worker", 1, lease=0.01)
    rig.worker.handle(claimed)  # ran and recorded, then "crashed" before settling
    time.sleep(0.02)
    rig.worker.drain()
    assert rig.status("m") == "done"
    assert rig.recorder.keys == ["m"]  # the succeeded run is found; not executed again
    rig.put("n")
    [claimed] = rig.inbox.claim("dead-worker", 1, lease=0.01)
    rig.runs.start(key=MAIL_KEY, kind="trigger", run_id="n", attempt=1, origin="webhook")
    time.sleep(0.02)  # died before the executor call: the next attempt runs it
    rig.worker.drain()
    statuses = [(x.attempt, x.status) for x in rig.runs.list(key=MAIL_KEY) if x.run_id == "n"]
    assert statuses == [(2, "succeeded"), (1, "failed")]  # the stale attempt is closed


def test_lifecycle_event_for_an_unknown_account_is_kept_for_later(rig: Rig) -> None:
    body = json.dumps(
        {
            "id": "e",
            "timestamp": "2026-01-01T00:00:00Z",
            "metadata": {},
            "type": "composio.connected_account.expired",
            "data": {},
        }
    ).encode()
    rig.put("e", body)
    rig.worker.drain()
    assert rig.status("e") == "ignored"


def test_backoff_is_capped_exponential_with_jitter() -> None:
    b = Backoff(base=2, cap=60, jitter=0.5)
    assert [b.delay(n, rand=lambda: 0.0) for n in (1, 2, 3, 6, 7, 50)] == [2, 4, 8, 60, 60, 60]
    assert b.delay(3, rand=lambda: 1.0) == 4
    assert b.delay(1, retry_after=30, rand=lambda: 0.0) == 30
    assert b.delay(1, retry_after=9999, rand=lambda: 0.0) == 60


def test_async_loop_runs_deliveries_and_heartbeats_long_runs(rig: Rig) -> None:
    rig.recorder.delay = 0.3
    worker = Worker(
        inbox=rig.inbox,
        routes=rig.worker.routes,
        runs=rig.runs,
        executors=rig.recorder.executors(),
        config=WorkerConfig(lease=0.2, poll=0.02, concurrency=2),
    )

    async def scenario() -> None:
        task = asyncio.create_task(worker.run())
        for i in range(3):
            rig.put(f"m{i}", composio_body(subject=f"s{i}", sender="x"))
        worker.wake()
        deadline = time.monotonic() + 10
        while rig.inbox.counts().get("done", 0) < 3 and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        task.cancel()
        await worker.wait_idle(2)

    asyncio.run(scenario())
    assert rig.inbox.counts() == {"done": 3}
    assert sorted(rig.recorder.keys) == ["m0", "m1", "m2"]  # leases outlived by runs, renewed


# -- CLI ------------------------------------------------------------------------------------


def cli(*args: str) -> Any:
    return CliRunner().invoke(inbox_cli.app, list(args))


def test_cli_list_show_inject_and_replay(rig: Rig, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PLANNER_STATE_DIR", str(rig.settings.state_dir))
    rig.put("m1")
    rig.worker.drain()
    state = ["--state-dir", str(rig.settings.state_dir)]
    listed = cli("list", *state)
    assert listed.exit_code == 0 and "m1" in listed.output and "done" in listed.output
    shown = cli("show", "m1", *state)
    assert json.loads(shown.output)["status"] == "done"
    assert "body" not in json.loads(shown.output)
    assert "Interview" in cli("show", "m1", "--body", *state).output
    assert cli("show", "nope", *state).exit_code == 1
    injected = cli("inject", DEPLOY_KEY, "-d", '{"service": "web", "version": "9"}', *state)
    assert injected.exit_code == 0
    replayed = cli("replay", "m1", *state)  # done: runs again under a fresh key
    assert replayed.exit_code == 0 and "done" in replayed.output
    found = rig.inbox.get("m1")
    assert found is not None and found.replays == 1


def test_cli_worker_once(rig: Rig) -> None:
    rig.put("m1")
    result = CliRunner().invoke(
        _worker_app(), ["--once", "--state-dir", str(rig.settings.state_dir)]
    )
    assert result.exit_code == 0, result.output
    assert "1 delivery(ies) handled" in result.output
    assert rig.status("m1") == "done"


def _worker_app() -> Any:
    import typer

    app = typer.Typer()
    app.command()(inbox_cli.worker_command)
    return app


def test_replay_rev_previews_the_config_at_a_revision(rig: Rig, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    (repo / "agents").mkdir(parents=True)
    agent = (
        "name: Jobs\nplanner:\n  triggers:\n    - name: recruiter-email\n      toolkit: gmail\n"
        "      event: GMAIL_NEW_GMAIL_MESSAGE\n      connected_account: ca_1\n"
        "      action:\n        chat:\n          template: 'At rev: {subject} / {sender}'\n"
    )
    (repo / "agents" / "job-application-agent.yaml").write_text(agent)
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-qm", "v1"], check=True)
    rig.put("m1")
    out = cli(
        "replay",
        "m1",
        "--rev",
        "HEAD",
        "--repo",
        str(repo),
        "--state-dir",
        str(rig.settings.state_dir),
    )
    assert out.exit_code == 0, out.output
    assert "At rev: Interview / recruiter@example.com" in out.output
    assert rig.status("m1") == "received"  # nothing ran
    assert rig.recorder.calls == []


def test_trigger_status_is_set_and_cleared_on_one_clock(rig: Rig) -> None:
    """Composio's clock ahead of ours: a later message must still clear a disable it follows."""
    from datetime import UTC, datetime, timedelta

    ahead = datetime.now(UTC) + timedelta(minutes=10)  # Composio's clock, 10 min ahead

    def at(when: datetime) -> str:
        return when.isoformat(timespec="milliseconds").replace("+00:00", "Z")

    disabled = {
        "id": "d",
        "timestamp": at(ahead),
        "type": "composio.trigger.disabled",
        "metadata": {},
        "data": {"id": MAIL_ID, "trigger_name": "GMAIL_NEW_GMAIL_MESSAGE"},
    }
    rig.put("d", json.dumps(disabled).encode())
    rig.worker.drain()
    assert lifecycle(rig.settings)[MAIL_KEY][0] == "disabled"
    later = json.loads(composio_body())
    later["timestamp"] = at(ahead + timedelta(minutes=1))
    rig.put("m", json.dumps(later).encode())
    rig.worker.drain()
    assert rig.status("m") == "done"
    assert lifecycle(rig.settings) == {}
    earlier = json.loads(composio_body())  # a retry of a message sent before the disable
    earlier["timestamp"] = at(ahead - timedelta(minutes=1))
    rig.put("d2", json.dumps({**disabled, "id": "d2"}).encode())
    rig.put("old", json.dumps(earlier).encode())
    rig.worker.drain()
    assert lifecycle(rig.settings)[MAIL_KEY][0] == "disabled"


def test_routes_rebuild_only_when_the_ledger_moved(tmp_path: Path) -> None:
    """The snapshot is checked every two seconds for the life of ``serve``: an unchanged
    ledger keeps the routes it has (no decode of every trigger), a new trigger is picked up."""
    settings = Settings.resolve(state_dir=tmp_path, env={})
    apply_triggers(settings, default_triggers())
    routes = Routes(settings)
    routes.reload()
    kept = routes.find("composio", remote_id=MAIL_ID)
    assert kept is not None and routes.rebuilds == 1
    for _ in range(50):
        routes.reload()
    assert routes.rebuilds == 1
    assert routes.find("composio", remote_id=MAIL_ID) is kept
    apply_triggers(settings, {("a/triggers/new", "composio", "ti_new"): mail_spec()})
    routes.reload()
    assert routes.rebuilds == 2
    new = routes.find("composio", remote_id="ti_new")
    assert new is not None and new.spec == mail_spec()
