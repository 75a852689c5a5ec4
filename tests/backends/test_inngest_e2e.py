"""Jobs on Inngest end to end: reconcile -> sync -> fake lists crons -> fire -> run recorded.

Real pieces only: the operator's `serve` app under uvicorn with the real inngest SDK endpoint,
the fake Inngest server (tests/fakes/inngest_server.py) on loopback, git commits as the source.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import git
import httpx
import pytest

from planner_operator.backends.base import list_all
from planner_operator.backends.inngest.backend import InngestScheduleBackend
from planner_operator.backends.inngest.sdk import InngestConfig, function_id
from planner_operator.core.settings import Settings
from planner_operator.reconcile.engine import SourceSpec, reconcile
from planner_operator.reconcile.plan import Op, PlanOptions
from planner_operator.runtime.executors.local import LocalOutbox
from planner_operator.server.app import create_app
from planner_operator.state.ledger import Ledger
from planner_operator.state.runs import RunStore
from tests.fakes.inngest_server import TEST_SIGNING_KEY, FakeInngest
from tests.support.inngest_serve import inngest_env, operator_server, serving_mount, wait_served

ROOT = Path(__file__).resolve().parents[2]
APP = "planner-operator"


def commit(repo: git.Repo, message: str) -> str:
    repo.git.add(A=True)
    return str(repo.index.commit(message).hexsha)


@pytest.fixture
def repo(tmp_path: Path) -> git.Repo:
    repo_dir = tmp_path / "repo"
    shutil.copytree(ROOT / "agents", repo_dir / "agents")
    repo = git.Repo.init(repo_dir)
    with repo.config_writer() as cfg:
        cfg.set_value("user", "name", "t").set_value("user", "email", "t@example.com")
    commit(repo, "agents")
    return repo


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings.resolve(state_dir=tmp_path / "state", env={})


def one_hourly_job(tmp_path: Path) -> Path:
    """An agents directory with one agent `a` and one hourly workflow job `only`."""
    agents = tmp_path / "agents"
    agents.mkdir()
    (agents / "a.yaml").write_text(
        "name: A\nplanner:\n  jobs:\n    - name: only\n      schedule: '@hourly'\n"
        "      action: {workflow: {id: wf}}\n"
    )
    return agents


@contextmanager
def serving(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A serving app over ``settings``' served-job table, set as the applier's serve URL."""
    with serving_mount(settings.state_db, dict(os.environ)) as origin:
        monkeypatch.setenv("INNGEST_SERVE_ORIGIN", origin)
        yield origin


def crons(fake: FakeInngest) -> dict[str, list[str]]:
    out = {}
    for fn in fake.functions(APP):
        out[fn["id"]] = [t["cron"] for t in fn["config"]["triggers"] if "cron" in t]
    return out


def test_reconcile_serve_fire_update_archive(
    repo: git.Repo, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    with FakeInngest() as fake:
        env = inngest_env(fake, monkeypatch)
        with operator_server(settings, env) as origin:
            monkeypatch.setenv("INNGEST_SERVE_ORIGIN", origin)
            source = SourceSpec(repo=Path(repo.working_dir), rev="HEAD")
            outcome = reconcile(source, settings)
            assert outcome.applied is not None and outcome.applied.ok, outcome.applied
            morning = f"{APP}-{function_id('job-application-agent/jobs/morning-job-check')}"
            listed = crons(fake)
            assert listed[morning] == ["TZ=Europe/Berlin 0 9 * * 1"]
            assert listed[f"{APP}-{function_id('sales-agent/jobs/weekly-pipeline-review')}"] == [
                "TZ=America/Los_Angeles 0 15 * * fri"
            ]
            paused = f"{APP}-{function_id('sales-agent/jobs/quarterly-forecast')}"
            assert paused not in listed  # enabled: false is not registered
            assert len(listed) == 5

            # fire a slot: the served function renders the template and records the run
            run = fake.fire_cron(morning, datetime(2026, 11, 23, 8, 0, tzinfo=UTC))
            assert run.status == "completed", run
            with RunStore(settings.state_dir / "runs.db") as runs:
                [record] = runs.list(key="job-application-agent/jobs/morning-job-check")
            assert record.status == "succeeded" and record.origin == "inngest"
            assert record.slot == "2026-11-23T09:00"
            assert record.rendered is not None
            assert record.rendered.startswith("Good morning! Check job boards for new postings")
            assert "Today is Monday, 2026-11-23." in record.rendered
            with LocalOutbox(settings.state_dir / "outbox.db") as outbox:
                assert outbox.threads()[0]["message"] == record.rendered

            # a new commit changes a schedule and removes a job
            path = Path(repo.working_dir) / "agents" / "job-application-agent.yaml"
            text = path.read_text().replace('schedule: "0 9 * * 1"', 'schedule: "0 10 * * 1"')
            path.write_text(text)
            eng = Path(repo.working_dir) / "agents" / "engineering-agent.yaml"
            eng.write_text(
                eng.read_text().replace("    - name: slack-digest", "    - name: x-digest")
            )
            commit(repo, "edit")
            outcome = reconcile(source, settings)
            ops = {c.key: c.op for c in outcome.plan.changes if c.actionable}
            assert ops["job-application-agent/jobs/morning-job-check"] is Op.UPDATE
            assert ops["engineering-agent/jobs/slack-digest"] is Op.DELETE
            assert ops["engineering-agent/jobs/x-digest"] is Op.CREATE
            assert outcome.applied is not None and outcome.applied.ok
            listed = crons(fake)
            assert listed[morning] == ["TZ=Europe/Berlin 0 10 * * 1"]
            assert f"{APP}-engineering-agent--slack-digest" not in listed  # archived
            assert f"{APP}-engineering-agent--x-digest" in listed

            # the served app swapped its function set: the new function runs
            wait_served(origin)
            new = fake.fire_cron(
                f"{APP}-engineering-agent--x-digest", datetime(2026, 11, 24, 4, 0, tzinfo=UTC)
            )
            assert new.status == "completed", new

            # nothing left to do
            again = reconcile(source, settings, dry_run=True)
            assert not again.plan.has_changes, [c.key for c in again.plan.actionable]


def test_dst_second_fire_of_repeated_slot_is_recorded_skipped(
    tmp_path: Path, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    agents = tmp_path / "agents"
    agents.mkdir()
    (agents / "night.yaml").write_text(
        "name: Night\ntimezone: America/New_York\nplanner:\n  jobs:\n"
        '    - name: backup\n      schedule: "30 1 * * *"\n'
        "      action: {chat: {template: 'backup {datetime}'}}\n"
    )
    with FakeInngest() as fake:
        env = inngest_env(fake, monkeypatch)
        with operator_server(settings, env) as origin:
            monkeypatch.setenv("INNGEST_SERVE_ORIGIN", origin)
            assert reconcile(SourceSpec(path=agents), settings).applied is not None
            fn = f"{APP}-night--backup"
            first = fake.fire_cron(fn, datetime(2026, 11, 1, 5, 30, tzinfo=UTC))  # 01:30 EDT
            second = fake.fire_cron(fn, datetime(2026, 11, 1, 6, 30, tzinfo=UTC))  # 01:30 EST
            assert first.status == second.status == "completed"
    with RunStore(settings.state_dir / "runs.db") as runs:
        records = runs.list(key="night/jobs/backup")
    assert [r.status for r in records] == ["skipped", "succeeded"]
    assert records[0].reason is not None and "DST repeat" in records[0].reason


def test_unmanaged_app_untouched_and_removing_last_job_syncs_sentinel(
    tmp_path: Path, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    agents = one_hourly_job(tmp_path)
    with FakeInngest() as fake:
        env = inngest_env(fake, monkeypatch)
        other = {
            "appname": "someone-else",
            "url": "http://127.0.0.1:9/api/inngest",
            "deploy_type": "ping",
            "framework": "fast_api",
            "sdk": "py:v0.5.19",
            "v": "0.1",
            "functions": [
                {
                    "id": "someone-else-report",
                    "name": "report",
                    "triggers": [{"cron": "0 3 * * *"}],
                    "steps": {
                        "step": {
                            "id": "step",
                            "name": "step",
                            "runtime": {
                                "type": "http",
                                "url": "http://127.0.0.1:9/api/inngest?fnId=someone-else-report&stepId=step",
                            },
                        }
                    },
                }
            ],
        }
        assert httpx.post(f"{fake.base_url}/fn/register", json=other).status_code == 200
        settings_env = dict(env)
        with serving(settings, monkeypatch):
            outcome = reconcile(SourceSpec(path=agents), settings)
            assert outcome.applied is not None and outcome.applied.ok
            assert [f["id"] for f in fake.functions(APP)] == [f"{APP}-a--only"]
            (agents / "a.yaml").write_text("name: A\nplanner: {}\n")
            refused = reconcile(SourceSpec(path=agents), settings)  # empty desired state: no prune
            assert refused.plan.refusals and fake.functions(APP)[0]["id"] == f"{APP}-a--only"
            outcome = reconcile(
                SourceSpec(path=agents), settings, options=PlanOptions(allow_empty=True)
            )
            assert outcome.applied is not None and outcome.applied.ok
            assert [f["id"] for f in fake.functions(APP)] == [f"{APP}-planner-operator-sentinel"]
            assert [f["id"] for f in fake.functions("someone-else")] == ["someone-else-report"]
            assert settings_env["INNGEST_DEV"] == fake.base_url


def test_sync_refused_by_server_fails_the_apply(
    tmp_path: Path, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    agents = one_hourly_job(tmp_path)
    with FakeInngest() as fake:
        inngest_env(fake, monkeypatch)
        fake.faults.register_400 = 1  # the SDK still answers the PUT with 200
        with serving(settings, monkeypatch):
            outcome = reconcile(SourceSpec(path=agents), settings)
            assert outcome.applied is not None and not outcome.applied.ok
            assert "sync failed" in outcome.applied.problems[0]
            with Ledger(settings.ledger_db) as ledger:  # status and metrics see the failed sync
                last = json.loads(ledger.get_meta("last_reconcile") or "{}")
                assert any("sync failed" in f for f in last["failures"])
                assert ledger.get_meta("last_applied_revision") is None
            # the next run retries the sync and converges
            outcome = reconcile(SourceSpec(path=agents), settings)
            assert outcome.applied is not None and outcome.applied.ok
            assert [f["id"] for f in fake.functions(APP)] == [f"{APP}-a--only"]


def test_forgotten_crons_show_as_drift_and_reconcile_repairs(
    tmp_path: Path, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    agents = one_hourly_job(tmp_path)
    with FakeInngest() as fake:
        inngest_env(fake, monkeypatch)
        with serving(settings, monkeypatch):
            assert reconcile(SourceSpec(path=agents), settings).applied is not None
            fake.faults.forget_crons_after_restart = True
            fake.restart()
            config = InngestConfig.from_env(dict(os.environ))
            with InngestScheduleBackend(config, settings.state_db) as backend:
                [obj] = list(list_all(backend))
            assert obj.state == "error" and obj.reason and "not scheduled" in obj.reason
            repaired = reconcile(SourceSpec(path=agents), settings, options=PlanOptions())
            assert [c.op for c in repaired.plan.actionable] == [Op.UPDATE]
            assert repaired.applied is not None and repaired.applied.ok, repaired.applied
            assert crons(fake)[f"{APP}-a--only"] == ["TZ=UTC 0 * * * *"]


def test_production_endpoint_rejects_bad_signatures(
    repo: git.Repo, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    with FakeInngest(signing_key=TEST_SIGNING_KEY) as fake:
        env = inngest_env(fake, monkeypatch)
        with operator_server(settings, env) as origin:
            monkeypatch.setenv("INNGEST_SERVE_ORIGIN", origin)
            outcome = reconcile(SourceSpec(repo=Path(repo.working_dir)), settings)
            assert outcome.applied is not None and outcome.applied.ok, outcome.applied
            fn = f"{APP}-job-application-agent--morning-job-check"
            run = fake.fire_cron(fn, datetime(2026, 11, 23, 8, 0, tzinfo=UTC))  # signed: runs
            assert run.status == "completed"
            url = f"{origin}/api/inngest?fnId={fn}&stepId=step"
            forged = httpx.post(
                url,
                json={"event": {}, "events": [], "steps": {}, "ctx": {}},
                headers={"x-inngest-signature": f"t={int(time.time())}&s={'0' * 64}"},
            )
            assert forged.status_code == 401


def test_serve_refuses_production_without_signing_key(settings: Settings) -> None:
    from planner_operator.errors import AuthError

    with pytest.raises(AuthError, match="INNGEST_SIGNING_KEY"):
        create_app(settings, {"PLANNER_SCHEDULE_BACKEND": "inngest"})


def test_branch_environment_is_synced_and_read_back_in_that_environment(
    tmp_path: Path, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    agents = one_hourly_job(tmp_path)
    with FakeInngest() as fake:
        inngest_env(fake, monkeypatch)
        monkeypatch.setenv("INNGEST_ENV", "branch-42")
        with serving(settings, monkeypatch):
            outcome = reconcile(SourceSpec(path=agents), settings)
            assert outcome.applied is not None and outcome.applied.ok, outcome.applied
            assert fake.functions(APP) == []  # nothing in the default environment
            [fn] = fake.functions(APP, env="branch-42")
            assert fn["id"] == f"{APP}-a--only"
            again = reconcile(SourceSpec(path=agents), settings, dry_run=True)
            assert not again.plan.has_changes, [c.reason for c in again.plan.actionable]
