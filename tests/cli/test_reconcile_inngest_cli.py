"""`reconcile` on the Inngest backend through the CLI: a failed sync or read-back fails the run.

The library result (``ApplyResult.ok``) already knew; what users and CI see is the exit code,
the summary line and the JSON document, so these tests check those.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from planner_operator.cli.main import app
from tests.fakes.inngest_server import FakeInngest
from tests.support.inngest_serve import serving_mount

runner = CliRunner()

JOB = (
    "name: A\nplanner:\n  jobs:\n    - name: only\n      schedule: '@hourly'\n"
    "      action: {workflow: {id: wf}}\n"
)


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[FakeInngest]:
    """The fake Inngest and a serving app over the CLI's served-job table (it syncs)."""
    for name in list(os.environ):
        if name.startswith(("INNGEST_", "COMPOSIO_", "PLANNER_")):
            monkeypatch.delenv(name)
    with FakeInngest() as server:
        monkeypatch.setenv("INNGEST_DEV", server.base_url)
        monkeypatch.setenv("PLANNER_TRIGGER_BACKEND", "local")
        (tmp_path / "state").mkdir()
        env = {"INNGEST_DEV": server.base_url}
        with serving_mount(tmp_path / "state" / "state.db", env) as origin:
            monkeypatch.setenv("INNGEST_SERVE_ORIGIN", origin)
            yield server


def reconcile(tmp_path: Path, *extra: str) -> tuple[int, str, str]:
    agents = tmp_path / "agents"
    agents.mkdir(exist_ok=True)
    (agents / "a.yaml").write_text(JOB)
    args = ["reconcile", "--yes", "--path", str(agents), "--state-dir", str(tmp_path / "state")]
    result = runner.invoke(app, [*args, *extra])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.stdout, result.stderr


def _500(fake: FakeInngest) -> None:
    fake.faults.register_500 = 1


def _400(fake: FakeInngest) -> None:
    fake.faults.register_400 = 1


def _drop(fake: FakeInngest) -> None:
    fake.faults.register_drop = 1


def _no_crons(fake: FakeInngest) -> None:
    fake.faults.list_without_crons = True


def _read_back_500(fake: FakeInngest) -> None:
    fake.faults.read_back_500 = 2  # the serving app reads back after its sync, then the applier


FAULTS: dict[str, Callable[[FakeInngest], None]] = {
    "read-back-500": _read_back_500,
    "register-500": _500,
    "register-400": _400,
    "register-dropped": _drop,
    "read-back-without-crons": _no_crons,
}


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_failed_sync_or_read_back_exits_1_and_says_so(
    fault: str, fake: FakeInngest, tmp_path: Path
) -> None:
    FAULTS[fault](fake)
    code, out, err = reconcile(tmp_path)
    assert code == 1, (out, err)
    assert "Apply: 1 change(s) applied, 0 failed." not in out
    assert "sync" in out.lower() or "inngest" in out.lower(), out
    assert "error: inngest:" in err, err


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_failed_sync_or_read_back_is_not_ok_in_json(
    fault: str, fake: FakeInngest, tmp_path: Path
) -> None:
    FAULTS[fault](fake)
    code, out, _ = reconcile(tmp_path, "--format", "json")
    assert code == 1
    document = json.loads(out)  # one document on stdout, written after the apply
    assert document["ok"] is False
    assert document["apply"]["ok"] is False
    assert document["apply"]["failed"] == []  # the item was written; the sync was not
    [problem] = document["apply"]["problems"]
    assert problem.startswith("inngest:")


def test_good_sync_exits_0_and_json_says_applied(fake: FakeInngest, tmp_path: Path) -> None:
    code, out, _ = reconcile(tmp_path, "--format", "json")
    assert code == 0, out
    document = json.loads(out)
    assert document["ok"] is True
    assert document["apply"] == {"ok": True, "applied": 1, "failed": [], "problems": []}
    code, out, _ = reconcile(tmp_path)
    assert code == 0 and "No changes." in out


@pytest.mark.parametrize("down", ["stopped", "proxy-page"])
def test_status_while_inngest_is_down_shows_each_row_in_error(
    down: str, fake: FakeInngest, tmp_path: Path
) -> None:
    """It exited 1 and printed nothing; the API showed each row in error."""
    code, out, _ = reconcile(tmp_path)
    assert code == 0, out
    if down == "stopped":
        fake.stop()
    else:
        fake.faults.read_back_html = True  # Inngest down behind a proxy answering a page
    result = runner.invoke(app, ["status", "--state-dir", str(tmp_path / "state")])
    assert result.exit_code == 0, result.output
    [row] = [line for line in result.stdout.splitlines() if "a/jobs/only" in line]
    assert " error " in row and "cannot read the backend: inngest: reading functions" in row
    listed = runner.invoke(app, ["status", "--state-dir", str(tmp_path / "state"), "-f", "json"])
    assert listed.exit_code == 0
    [job] = json.loads(listed.stdout)["rows"]
    assert job["state"] == "error" and "reading functions" in job["detail"]


def test_next_runs_on_inngest_predicts_no_fire_in_the_spring_gap(
    fake: FakeInngest, tmp_path: Path
) -> None:
    """Issue 16.6: `vixie` predicted a fire at the jump; robfig (Inngest) never makes it."""
    agents = tmp_path / "night"
    agents.mkdir()
    (agents / "n.yaml").write_text(
        "name: N\ntimezone: America/New_York\nplanner:\n  jobs:\n    - name: backup\n"
        "      schedule: '30 2 * * *'\n      action: {workflow: {id: wf}}\n"
    )
    args = ["next-runs", str(agents), "--from", "2026-03-07T12:00:00Z", "-n", "2"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "DST gap" not in result.stdout
    assert (
        "dst vixie on inngest: a time the spring-forward gap skips does not fire" in result.stdout
    )
    assert "Mon 2026-03-09 02:30 EDT" in result.stdout and "2026-03-08" not in result.stdout
    listed = json.loads(runner.invoke(app, [*args, "-f", "json"]).stdout)
    assert listed["backend"] == "inngest"
    [job] = listed["jobs"]
    assert job["dst"] == "skip" and [f["utc"][:10] for f in job["fires"]] == [
        "2026-03-09",
        "2026-03-10",
    ]


def test_status_and_the_api_predict_inngest_fires_across_the_spring_gap(
    fake: FakeInngest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 16.6 for `status` and `/api/jobs`: no fire at the jump for a job on Inngest."""
    from starlette.testclient import TestClient

    from planner_operator.cli import commands
    from planner_operator.core.clock import ManualClock
    from planner_operator.core.settings import Settings
    from planner_operator.server.app import create_app

    agents = tmp_path / "agents"
    agents.mkdir()
    (agents / "a.yaml").write_text(
        "name: A\ntimezone: America/New_York\nplanner:\n  jobs:\n    - name: only\n"
        "      schedule: '30 2 * * *'\n      action: {workflow: {id: wf}}\n"
    )
    args = ["reconcile", "--yes", "--path", str(agents), "--state-dir", str(tmp_path / "state")]
    assert runner.invoke(app, args).exit_code == 0
    eve = ManualClock(datetime(2026, 3, 7, 12, 0, tzinfo=UTC))
    monkeypatch.setattr(commands, "CLOCK", eve)
    listed = runner.invoke(app, ["status", "--state-dir", str(tmp_path / "state"), "-f", "json"])
    [job] = json.loads(listed.stdout)["rows"]
    assert [t[:10] for t in job["next_runs"]] == ["2026-03-09", "2026-03-10", "2026-03-11"]
    settings = Settings.resolve(state_dir=tmp_path / "state", env={})
    with TestClient(create_app(settings, dict(os.environ), clock=eve)) as client:
        [view] = client.get("/api/jobs").json()
    fires = [f["utc"][:10] for f in view["next_runs"]]
    assert fires[:2] == ["2026-03-09", "2026-03-10"]
    assert not any(f["dst_note"] for f in view["next_runs"])
