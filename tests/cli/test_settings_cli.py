"""`planner-operator settings`, and the warning about unknown ``PLANNER_*`` variables at start."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from planner_operator.cli import settings as cli_settings
from planner_operator.cli.main import app
from planner_operator.core import settings as settings_mod
from planner_operator.core.settings import Settings
from tests.support.webhook_env import apply_triggers, webhook_spec

runner = CliRunner()
JOB = """\
name: Agent
planner:
  jobs:
    - name: daily
      schedule: "@daily"
      action: {chat: {template: "Hello {date}"}}
"""
TYPO = "warning: environment variable PLANNER_STATE_DIRR is not a planner-operator setting"


@pytest.fixture(autouse=True)
def fresh_process(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test is a new process as far as "warned once" goes."""
    monkeypatch.setattr(cli_settings, "_warned", set())


@pytest.fixture
def agents(tmp_path: Path) -> Path:
    (tmp_path / "agents").mkdir()
    (tmp_path / "agents" / "a.yaml").write_text(JOB, encoding="utf-8")
    return tmp_path / "agents"


def test_reconcile_warns_once_about_a_mistyped_variable(
    agents: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PLANNER_STATE_DIRR", str(tmp_path / "elsewhere"))
    state = ["--state-dir", str(tmp_path / "state")]
    first = runner.invoke(app, ["reconcile", "--path", str(agents), "--dry-run", *state])
    assert first.exit_code == 0, first.output
    assert TYPO in first.stderr
    assert "did you mean PLANNER_STATE_DIR?" in first.stderr
    assert first.stderr.count("PLANNER_STATE_DIRR") == 1
    again = runner.invoke(app, ["reconcile", "--path", str(agents), "--yes", *state])
    assert again.exit_code == 0 and "PLANNER_STATE_DIRR" not in again.stderr  # once per process


@pytest.mark.parametrize(
    "command",
    [
        ["serve"],
        ["run", "--path", "{agents}"],
        ["watch", "--path", "{missing}"],
    ],
)
def test_long_running_commands_warn_before_they_start(
    command: list[str], agents: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each command is stopped right after start-up (an empty API token refuses to serve, a
    missing directory to watch), which is late enough to see the warning."""
    monkeypatch.setenv("PLANNER_STATE_DIRR", "x")
    monkeypatch.setenv("PLANNER_API_TOKEN", "")
    args = [a.format(agents=agents, missing=tmp_path / "missing") for a in command]
    result = runner.invoke(app, [*args, "--state-dir", str(tmp_path / "state")])
    assert result.exit_code == 1
    assert TYPO in result.stderr


def test_a_secret_variable_named_by_an_applied_trigger_is_not_a_typo(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = Settings.resolve(state_dir=tmp_path, env={})
    spec = webhook_spec("PLANNER_DEPLOY_SECRET", "standard", {"chat": {"template": "x"}})
    apply_triggers(settings, {("a/triggers/deploy", "local", "trg_1"): spec})
    env = {"PLANNER_DEPLOY_SECRET": "s", "PLANNER_DEPLOY_SECRT": "s"}
    [warning] = cli_settings.warn_unknown(settings, env)
    assert "PLANNER_DEPLOY_SECRT" in warning


def test_settings_markdown_is_the_readme_table() -> None:
    result = runner.invoke(app, ["settings", "--markdown"])
    assert result.exit_code == 0
    assert result.stdout == settings_mod.markdown()


def test_settings_lists_values_hides_secrets_and_fails_on_a_bad_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # PLANNER_API_TOKEN holds a canary for the whole run: printing it would fail this test
    monkeypatch.setenv("PLANNER_WORKER_POLL", "0.5")
    ok = runner.invoke(app, ["settings"])
    assert ok.exit_code == 0, ok.output
    lines = {line.split()[0]: line for line in ok.stdout.splitlines()}
    assert lines["PLANNER_API_TOKEN"].endswith("<set, hidden>")
    assert lines["PLANNER_WORKER_POLL"].endswith("'0.5'")
    assert lines["PLANNER_LOCK_TIMEOUT"].endswith("default 30")
    monkeypatch.setenv("PLANNER_WORKER_CONCURRENCY", "many")
    bad = runner.invoke(app, ["settings"])
    assert bad.exit_code == 1
    assert "PLANNER_WORKER_CONCURRENCY='many' is not a whole number" in bad.stdout
