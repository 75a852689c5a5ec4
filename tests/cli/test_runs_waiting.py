"""``planner-operator runs`` shows a waiting run as waiting, saying what it waits for."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from planner_operator.cli.main import app
from planner_operator.core.settings import Settings
from planner_operator.state import open as state_open

KEY = "sales-agent/triggers/approval"


def test_runs_lists_waiting_and_cancelled_runs_as_such(tmp_path: Path) -> None:
    settings = Settings.resolve(state_dir=tmp_path, env={})
    with state_open.runs(settings) as runs:
        row = runs.start(key=KEY, kind="trigger", run_id="d1", origin="webhook", action="workflow")
        note = "mastra: await-approval run po-1 is suspended at step approve: resume it in Mastra"
        runs.wait(row, result={"awaiting": {"steps": ["approve"]}}, note=note)
        gone = runs.start(key=KEY, kind="trigger", run_id="d2", origin="webhook")
        runs.finish(gone, status="cancelled", error="mastra: cancelled in Mastra")
    text = CliRunner().invoke(app, ["runs", "--state-dir", str(tmp_path)])
    assert text.exit_code == 0, text.output
    lines = text.stdout.splitlines()
    assert any(" waiting " in ln and "suspended at step approve" in ln for ln in lines)
    assert any(" cancelled " in ln and "cancelled in Mastra" in ln for ln in lines)
    listed = CliRunner().invoke(app, ["runs", "-f", "json", "--state-dir", str(tmp_path)])
    by_status = {r["status"]: r for r in json.loads(listed.stdout)["runs"]}
    assert by_status["waiting"]["result"] == {"awaiting": {"steps": ["approve"]}}
    assert by_status["waiting"]["finished_at"] is None
