"""One place talks to Inngest: the serving app syncs, an applier elsewhere asks it to.

The issue (15.3): an apply from CI synced the app from the CI process, which re-pointed it at
CI's idea of the URL and replaced its function set, while `reconcile --check` said "No drift"
and `/healthz` said `last_sync_ok: true`. Here a "CI" process is a reconcile with its own state
directory and ledger over the same shared store (one SQLite file, or PostgreSQL) as a running
`serve`, against the fake Inngest server.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from planner_operator.cli.main import app as cli
from planner_operator.core.settings import Settings
from planner_operator.reconcile.engine import SourceSpec, reconcile
from planner_operator.state import open as state_open
from tests.fakes.inngest_server import FakeInngest
from tests.support.inngest_serve import inngest_env, operator_server

APP = "planner-operator"
WRONG = "http://127.0.0.1:8000/api/inngest"  # where the CI process used to point the app
runner = CliRunner()


def agents(root: Path, agent: str, job: str) -> Path:
    directory = root / f"agents-{agent}"
    directory.mkdir()
    (directory / f"{agent}.yaml").write_text(
        f"name: {agent}\nplanner:\n  jobs:\n    - name: {job}\n      schedule: '0 9 * * *'\n"
        "      action: {workflow: {id: wf}}\n"
    )
    return directory


def healthz(origin: str) -> dict[str, object]:
    status: dict[str, object] = httpx.get(f"{origin}/healthz").json()["inngest"]
    return status


def until(check: object, origin: str, timeout: float = 10.0) -> dict[str, object]:
    """``/healthz``'s Inngest status once ``check(status)`` holds."""
    deadline = time.monotonic() + timeout
    while True:
        status = healthz(origin)
        if callable(check) and check(status):
            return status
        assert time.monotonic() < deadline, status
        time.sleep(0.05)


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeInngest]:
    with FakeInngest() as server:
        inngest_env(server, monkeypatch)
        yield server


def _ci_applies_through_serve(
    tmp_path: Path, serve: Settings, ci: Settings, fake: FakeInngest, mp: pytest.MonkeyPatch
) -> None:
    # a long reload interval: only a PUT (or the start) makes this serve sync
    with operator_server(serve, dict(os.environ), reload_interval=3600) as origin:
        mp.setenv("INNGEST_SERVE_ORIGIN", origin)
        served = f"{origin}/api/inngest"
        # serve's own applier (its ledger) put one job in the shared table
        first = reconcile(SourceSpec(path=agents(tmp_path, "ops", "nightly")), serve)
        assert first.applied is not None and first.applied.ok, first.applied
        # CI: its own state directory, the shared served-job table
        repo = agents(tmp_path, "a", "only")
        if ci.database_url:  # one ledger for all on PostgreSQL: CI applies the whole repo
            (repo / "ops.yaml").write_text((tmp_path / "agents-ops" / "ops.yaml").read_text())
        outcome = reconcile(SourceSpec(path=repo), ci)
        assert outcome.applied is not None and outcome.applied.ok, outcome.applied
        ops = [c for c in outcome.plan.changes if c.key == "ops/jobs/nightly"]
        assert not any(c.actionable for c in ops)  # unmanaged, or up to date: untouched
        assert fake.apps[APP].url == served  # the app still points at serve
        assert {url for _, url in fake.registered_urls} == {served}  # every sync from serve
        ids = {f["id"] for f in fake.functions(APP)}
        assert {f"{APP}-ops--nightly", f"{APP}-a--only"} <= ids  # what serve serves, and CI's
        with state_open.served_jobs(ci) as table:
            version = table.versions()[0]
        status = healthz(origin)  # serve synced the version CI applied: the PUT reached it
        assert status["served_version"] == version and status["last_sync_ok"] is True
        assert status["registered_url_ok"] is True


def test_reconcile_from_ci_asks_serve_to_sync_sqlite(
    tmp_path: Path, fake: FakeInngest, monkeypatch: pytest.MonkeyPatch
) -> None:
    shared = tmp_path / "shared.db"
    serve = Settings.resolve(state_dir=tmp_path / "serve", state_db=shared, env={})
    ci = Settings.resolve(state_dir=tmp_path / "ci", state_db=shared, env={})
    _ci_applies_through_serve(tmp_path, serve, ci, fake, monkeypatch)


def test_reconcile_from_ci_asks_serve_to_sync_postgres(
    tmp_path: Path, fake: FakeInngest, monkeypatch: pytest.MonkeyPatch, pg_url: str
) -> None:
    env = {"PLANNER_DATABASE_URL": pg_url}
    serve = Settings.resolve(state_dir=tmp_path / "serve", env=env)
    ci = Settings.resolve(state_dir=tmp_path / "ci", env=env)
    monkeypatch.setenv("PLANNER_DATABASE_URL", pg_url)
    _ci_applies_through_serve(tmp_path, serve, ci, fake, monkeypatch)


def test_reconcile_with_no_serving_app_exits_1_says_what_to_set_and_registers_nothing(
    tmp_path: Path, fake: FakeInngest, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("INNGEST_SERVE_ORIGIN", "http://127.0.0.1:18199")  # nothing listens
    args = ["reconcile", "--yes", "--path", str(agents(tmp_path, "a", "only"))]
    result = runner.invoke(cli, [*args, "--state-dir", str(tmp_path / "ci")])
    assert result.exit_code == 1, result.output
    assert "no serving app answered at http://127.0.0.1:18199/api/inngest" in result.stderr
    assert "INNGEST_SERVE_ORIGIN" in result.stderr and "planner-operator serve" in result.stderr
    assert ("POST", "/fn/register") not in fake.requests  # never registered from here
    assert fake.apps == {}


def test_app_registered_at_another_url_is_drift_in_check_status_and_healthz(
    tmp_path: Path, fake: FakeInngest, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PLANNER_INNGEST_VERIFY_INTERVAL", "0.2")
    settings = Settings.resolve(state_dir=tmp_path / "state", env={})
    files = agents(tmp_path, "a", "only")
    with operator_server(settings, dict(os.environ)) as origin:
        monkeypatch.setenv("INNGEST_SERVE_ORIGIN", origin)
        outcome = reconcile(SourceSpec(path=files), settings)
        assert outcome.applied is not None and outcome.applied.ok, outcome.applied
        assert until(lambda s: s["registered_url_ok"] is True, origin)["last_sync_ok"] is True
        base = ["--path", str(files), "--state-dir", str(settings.state_dir)]
        assert runner.invoke(cli, ["reconcile", "--check", *base]).exit_code == 0

        fake.repoint(APP, WRONG)  # what a sync from the CI process did

        check = runner.invoke(cli, ["reconcile", "--check", *base])
        assert check.exit_code == 2, check.output
        assert f"registered at {WRONG}, not at the serve URL {origin}/api/inngest" in check.output
        status = runner.invoke(cli, ["status", "--state-dir", str(settings.state_dir)])
        assert status.exit_code == 0
        [row] = [line for line in status.output.splitlines() if "a/jobs/only" in line]
        assert " error " in row and f"registered at {WRONG}" in row
        unhealthy = until(lambda s: s["registered_url_ok"] is False, origin)
        assert unhealthy["last_sync_ok"] is False

        # a reconcile repairs it: it asks serve to sync, which registers the serve URL again
        repaired = reconcile(SourceSpec(path=files), settings)
        assert repaired.applied is not None and repaired.applied.ok, repaired.applied
        assert fake.apps[APP].url == f"{origin}/api/inngest"
        assert until(lambda s: s["registered_url_ok"] is True, origin)["last_sync_ok"] is True
