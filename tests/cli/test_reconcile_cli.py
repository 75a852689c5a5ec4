"""`reconcile`, `status`, `adopt` end to end through the CLI, on the embedded backend."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import git
import pytest
from typer.testing import CliRunner

from planner_operator.backends.base import list_all
from planner_operator.backends.local import LocalScheduleBackend
from planner_operator.cli.main import app
from planner_operator.reconcile.engine import SourceSpec, read_desired
from planner_operator.state import db
from planner_operator.state.lock import ApplyLock

ROOT = Path(__file__).resolve().parents[2]
runner = CliRunner()

JOB = """\
name: Agent {n}
timezone: Europe/Berlin
planner:
  jobs:
    - name: daily
      schedule: "{schedule}"
      action: {{chat: {{template: "Hello {{date}}"}}}}
"""


def write(directory: Path, name: str, text: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text(text, encoding="utf-8")
    return path


def invoke(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def state(tmp_path: Path) -> list[str]:
    return ["--state-dir", str(tmp_path / "state")]


def test_dry_run_apply_and_noop_with_detailed_exitcode(tmp_path: Path, state: list[str]) -> None:
    agents = tmp_path / "agents"
    write(agents, "a.yaml", JOB.format(n=1, schedule="0 9 * * *"))
    code, out, _ = invoke(
        "reconcile", "--path", str(agents), "--dry-run", "--detailed-exitcode", *state
    )
    assert code == 2
    assert "+ a/jobs/daily" in out
    assert "Plan: 1 to create, 0 to update, 0 to replace, 0 to delete." in out
    code, out, _ = invoke("reconcile", "--yes", "--path", str(agents), *state)
    assert code == 0 and "Apply: 1 change(s) applied, 0 failed." in out
    code, out, _ = invoke(
        "reconcile", "--path", str(agents), "--dry-run", "--detailed-exitcode", *state
    )
    assert code == 0 and "No changes." in out


def test_edit_is_update_and_json_output(tmp_path: Path, state: list[str]) -> None:
    agents = tmp_path / "agents"
    write(agents, "a.yaml", JOB.format(n=1, schedule="0 9 * * *"))
    invoke("reconcile", "--yes", "--path", str(agents), *state)
    write(agents, "a.yaml", JOB.format(n=1, schedule="0 10 * * *"))
    code, out, _ = invoke(
        "reconcile", "--path", str(agents), "--dry-run", "--format", "json", *state
    )
    assert code == 0
    data = json.loads(out)
    [change] = [c for c in data["changes"] if c["op"] != "no-op"]
    assert change["op"] == "update" and change["key"] == "a/jobs/daily"
    assert change["diff"][0]["path"] == "schedule"


def test_broken_file_freezes_only_itself_and_exits_1_naming_it(
    tmp_path: Path, state: list[str]
) -> None:
    agents = tmp_path / "agents"
    write(agents, "a.yaml", JOB.format(n=1, schedule="0 9 * * *"))
    write(agents, "b.yaml", JOB.format(n=2, schedule="0 9 * * *"))
    invoke("reconcile", "--yes", "--path", str(agents), *state)
    write(agents, "a.yaml", "name: [unclosed\n")
    write(agents, "b.yaml", JOB.format(n=2, schedule="0 11 * * *"))
    code, out, _ = invoke("reconcile", "--yes", "--path", str(agents), *state)
    assert code == 1
    assert "a.yaml:" in out  # the load error, with position
    assert "frozen" in out
    code, out, _ = invoke("status", "--format", "json", *state)
    rows = {r["key"]: r for r in json.loads(out)["rows"]}
    assert rows["a/jobs/daily"]["schedule"] == "0 9 * * *"  # untouched
    assert rows["b/jobs/daily"]["schedule"] == "0 11 * * *"  # other files proceeded


def test_removed_file_is_deleted_but_empty_dir_is_not(tmp_path: Path, state: list[str]) -> None:
    agents = tmp_path / "agents"
    write(agents, "a.yaml", JOB.format(n=1, schedule="0 9 * * *"))
    write(agents, "b.yaml", JOB.format(n=2, schedule="0 9 * * *"))
    invoke("reconcile", "--yes", "--path", str(agents), *state)
    (agents / "b.yaml").unlink()
    code, out, _ = invoke("reconcile", "--yes", "--path", str(agents), *state)
    assert code == 0 and "- b/jobs/daily" in out
    (agents / "a.yaml").unlink()
    code, out, _ = invoke("reconcile", "--yes", "--path", str(agents), *state)
    assert code == 1 and "desired state is empty" in out
    code, out, _ = invoke("status", "--format", "json", *state)
    assert [r["key"] for r in json.loads(out)["rows"]] == ["a/jobs/daily"]


def test_reads_a_git_revision_without_checkout(tmp_path: Path, state: list[str]) -> None:
    repo_dir = tmp_path / "repo"
    repo = git.Repo.init(repo_dir)
    with repo.config_writer() as cfg:
        cfg.set_value("user", "name", "t").set_value("user", "email", "t@example.com")
    write(repo_dir / "agents", "a.yaml", JOB.format(n=1, schedule="0 9 * * *"))
    repo.index.add(["agents/a.yaml"])
    first = repo.index.commit("one")
    write(repo_dir / "agents", "a.yaml", JOB.format(n=1, schedule="0 12 * * *"))
    repo.index.add(["agents/a.yaml"])
    repo.index.commit("two")
    wanted = read_desired(SourceSpec(repo=repo_dir, rev=first.hexsha))
    assert wanted.resources["a/jobs/daily"].spec["schedule"] == "0 9 * * *"
    assert wanted.snapshot.revision.sha == first.hexsha
    code, out, _ = invoke(
        "reconcile", "--repo", str(repo_dir), "--rev", "HEAD", "--dry-run", *state
    )
    assert code == 0 and '"0 12 * * *"' in out and repo.head.commit.hexsha[:12] in out
    code, _, err = invoke("reconcile", "--yes", "--repo", str(repo_dir), "--rev", "nope", *state)
    assert code == 1 and "revision `nope` not found" in err


def test_worktree_revision_records_dirty_flag(tmp_path: Path) -> None:
    repo_dir = tmp_path / "repo"
    repo = git.Repo.init(repo_dir)
    with repo.config_writer() as cfg:
        cfg.set_value("user", "name", "t").set_value("user", "email", "t@example.com")
    write(repo_dir / "agents", "a.yaml", JOB.format(n=1, schedule="0 9 * * *"))
    repo.index.add(["agents/a.yaml"])
    repo.index.commit("one")
    clean = read_desired(SourceSpec(path=repo_dir / "agents")).snapshot.revision
    assert not clean.dirty and clean.sha == repo.head.commit.hexsha
    write(repo_dir / "agents", "a.yaml", JOB.format(n=1, schedule="0 8 * * *"))
    assert read_desired(SourceSpec(path=repo_dir / "agents")).snapshot.revision.dirty


def test_second_applier_waits_then_fails_naming_holder(tmp_path: Path, state: list[str]) -> None:
    agents = tmp_path / "agents"
    write(agents, "a.yaml", JOB.format(n=1, schedule="0 9 * * *"))
    ledger_db = tmp_path / "state" / "ledger.db"
    with ApplyLock(ledger_db, holder="alice@ci", timeout=1):
        started = time.monotonic()
        code, _, err = invoke(
            "reconcile", "--yes", "--path", str(agents), "--lock-timeout", "0.5", *state
        )
        waited = time.monotonic() - started
    assert code == 1 and "alice@ci" in err
    assert waited >= 0.5


def test_taking_over_a_stale_lock_is_said_on_stderr(tmp_path: Path, state: list[str]) -> None:
    agents = tmp_path / "agents"
    write(agents, "a.yaml", JOB.format(n=1, schedule="0 9 * * *"))
    ledger_db = tmp_path / "state" / "ledger.db"
    crashed = subprocess.Popen([sys.executable, "-c", "pass"])
    crashed.wait()
    ApplyLock(ledger_db).close()  # the table, then the row a SIGKILLed apply leaves behind
    conn = db.connect(ledger_db)
    with db.transaction(conn):
        conn.execute(
            "INSERT INTO locks (name, holder, pid, host, started_at, token) "
            "VALUES ('apply', 'crashed@ci', ?, ?, ?, 'left')",
            (crashed.pid, socket.gethostname(), datetime.now(UTC).isoformat()),
        )
    conn.close()
    code, out, err = invoke("reconcile", "--yes", "--path", str(agents), *state)
    assert code == 0 and "Apply: 1 change(s) applied" in out
    assert "warning: took over the stale apply lock 'apply' held by crashed@ci" in err
    assert f"process {crashed.pid} no longer runs on this host" in err
    code, _, err = invoke("reconcile", "--yes", "--path", str(agents), *state)
    assert code == 0 and "took over" not in err  # released normally this time


def applier(agents: Path) -> list[str]:
    """A ``reconcile --yes`` process of its own: the lock is between processes."""
    return [sys.executable, "-m", "planner_operator", "reconcile", "--yes", "--path", str(agents)]


def test_two_appliers_together_exactly_one_applies(tmp_path: Path, state: list[str]) -> None:
    agents = tmp_path / "agents"
    for n in range(20):
        write(agents, f"a{n}.yaml", JOB.format(n=n, schedule="0 9 * * *"))
    command = [*applier(agents), *state]
    procs = [
        subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    applied = sorted(out.count("Apply: 20 change(s) applied") for out, _ in outputs)
    assert applied == [0, 1]  # one applied everything; the other waited and found nothing
    _, out, _ = invoke("status", "--format", "json", *state)
    assert len(json.loads(out)["rows"]) == 20


RACE_FILES = 100  # long enough an apply that the second applier usually finds the lock held


def race_two_appliers(base: Path) -> str:
    """Start two no-wait appliers on a fresh state dir together; how did the loser end?

    Exactly one applies everything. The other either found the lock held and named the
    winner's pid ("locked"), or started after the winner released it and found nothing to do
    ("after"); anything else (both applying, a crash, "database is locked") fails.
    """
    agents = base / "agents"
    for n in range(RACE_FILES):
        write(agents, f"a{n}.yaml", JOB.format(n=n, schedule="0 9 * * *"))
    state = ["--state-dir", str(base / "state")]
    command = applier(agents)
    procs = [
        subprocess.Popen(
            [*command, "--lock-timeout", "0", *state],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    results = {p.pid: (*p.communicate(timeout=120), p.returncode) for p in procs}
    for _, err, _ in results.values():
        assert "Traceback" not in err and "database is locked" not in err, err
    done = f"Apply: {RACE_FILES} change(s) applied, 0 failed."
    [winner] = [pid for pid, (out, _, code) in results.items() if code == 0 and done in out]
    [(out, err, code)] = [r for pid, r in results.items() if pid != winner]
    with LocalScheduleBackend(base / "state" / "state.db") as jobs:
        keys = [o.key for o in list_all(jobs)]
    assert len(keys) == len(set(keys)) == RACE_FILES  # no duplicates, nothing missing
    if code == 1:
        assert "another apply holds the lock 'apply'" in err, err
        assert f"(pid {winner} on " in err  # names the holder: the process that applied
        return "locked"
    assert code == 0 and "No changes." in out and "Apply: 0 change(s) applied" in out, out
    return "after"


def test_two_no_wait_appliers_exactly_one_applies(tmp_path: Path) -> None:
    endings = [race_two_appliers(tmp_path / f"trial-{n}") for n in range(3)]
    assert set(endings) <= {"locked", "after"}  # each trial asserted its own outcome


@pytest.mark.slow
def test_two_no_wait_appliers_ten_trials_exactly_one_applies(tmp_path: Path) -> None:
    endings = [race_two_appliers(tmp_path / f"trial-{n}") for n in range(10)]
    assert set(endings) <= {"locked", "after"}


def test_check_reports_drift_with_exit_2(tmp_path: Path, state: list[str]) -> None:
    from planner_operator.backends.base import list_all
    from planner_operator.backends.local import LocalScheduleBackend

    agents = tmp_path / "agents"
    write(agents, "a.yaml", JOB.format(n=1, schedule="0 9 * * *"))
    invoke("reconcile", "--yes", "--path", str(agents), *state)
    assert invoke("reconcile", "--check", *state)[0] == 0
    with LocalScheduleBackend(tmp_path / "state" / "state.db") as jobs:
        [obj] = list(list_all(jobs))
        jobs.set_state(obj.remote_id, "paused", "paused in a dashboard")
    code, out, _ = invoke("reconcile", "--check", *state)
    assert code == 2 and "a/jobs/daily" in out and "enabled" in out
    code, out, _ = invoke("status", *state)
    assert "drifted" in out


def test_unmanaged_objects_are_listed_and_adopt_takes_them_over(
    tmp_path: Path, state: list[str]
) -> None:
    from planner_operator.backends.local import LocalScheduleBackend

    with LocalScheduleBackend(tmp_path / "state" / "state.db") as jobs:
        foreign = jobs.create("someone/jobs/else", {"schedule": "0 1 * * *", "timezone": "UTC"})
    agents = tmp_path / "agents"
    write(agents, "a.yaml", JOB.format(n=1, schedule="0 9 * * *"))
    code, out, _ = invoke("reconcile", "--path", str(agents), "--dry-run", *state)
    assert "unmanaged" in out.lower() and foreign.remote_id in out
    code, out, _ = invoke("adopt", "a/jobs/daily", foreign.remote_id, *state)
    assert code == 0
    code, out, _ = invoke("reconcile", "--path", str(agents), "--dry-run", *state)
    assert "~ a/jobs/daily" in out  # adopted, then brought in line (an update, not a create)
    code, _, err = invoke("adopt", "a/jobs/daily", "job_missing", *state)
    assert code == 1 and "job_missing" in err


def test_example_agents_reconcile_cleanly(tmp_path: Path, state: list[str]) -> None:
    agents = tmp_path / "agents"
    shutil.copytree(ROOT / "agents", agents)
    code, out, _ = invoke("reconcile", "--yes", "--path", str(agents), *state)
    assert code == 0 and "12 change(s) applied" in out
    code, out, _ = invoke(
        "reconcile", "--path", str(agents), "--dry-run", "--format", "markdown", *state
    )
    assert code == 0 and "planner-operator plan" in out


def test_run_now_records_a_run_with_the_rendered_message(tmp_path: Path, state: list[str]) -> None:
    agents = tmp_path / "agents"
    write(agents, "a.yaml", JOB.format(n=1, schedule="0 9 * * *"))
    invoke("reconcile", "--yes", "--path", str(agents), *state)
    code, out, _ = invoke("run-now", "a/jobs/daily", *state)
    assert code == 0 and "a/jobs/daily: succeeded (chat)" in out and "Hello 20" in out
    code, out, _ = invoke("runs", "--format", "json", *state)
    document = json.loads(out)
    assert (document["format_version"], document["kind"]) == (1, "runs")
    [run] = document["runs"]
    assert run["origin"] == "manual" and run["rendered"].startswith("Hello 20")
    assert run["input"] is None  # a chat run; a workflow run's input is JSON, not a string
    assert run["result"]["thread_id"].startswith("thr_")
    code, _, err = invoke("run-now", "a/jobs/nope", *state)
    assert code == 1 and "no applied job `a/jobs/nope`" in err


def test_every_command_names_a_job_the_same_way(tmp_path: Path, state: list[str]) -> None:
    """`agent/job` and the full key work in run-now, runs and explain; the run id the CLI
    prints is the one the API and the dashboard use (/api/runs/ID, /planner/runs/ID)."""
    agents = tmp_path / "agents"
    write(agents, "a.yaml", JOB.format(n=1, schedule="0 9 * * *"))
    invoke("reconcile", "--yes", "--path", str(agents), *state)
    code, out, _ = invoke("run-now", "a/daily", *state)
    assert code == 0 and out.startswith("a/jobs/daily: succeeded (chat) run 1\n")
    code, out, _ = invoke("runs", "--key", "a/daily", *state)
    assert code == 0 and out.startswith("run 1 ") and "a/jobs/daily" in out
    code, out, _ = invoke("explain", "a/daily", *state)
    assert code == 0 and "a/jobs/daily" in out
    for command in (["run-now", "a/dayly"], ["runs", "--key", "a/dayly"], ["explain", "a/dayly"]):
        code, out, err = invoke(*command, *state)
        assert code == 1, command
        assert "did you mean `a/jobs/daily`?" in err, (command, err)


HOOK = """\
name: Hooks
planner:
  triggers:
    - name: deploy
      webhook: {secret_env: H4_DEPLOY_SECRET}
      action: {chat: {template: "Deployed"}}
"""


@pytest.mark.parametrize("fmt", ["text", "markdown", "json"])
def test_the_plan_warns_for_each_secret_variable_unset_where_it_runs(
    tmp_path: Path, state: list[str], fmt: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 17/18: the plan and the PR comment say the secret is unset, the apply goes on."""
    agents = tmp_path / "agents"
    write(agents, "hooks.yaml", HOOK)
    monkeypatch.delenv("H4_DEPLOY_SECRET", raising=False)
    code, out, _ = invoke("reconcile", "--path", str(agents), "--dry-run", "-f", fmt, *state)
    assert code == 0
    where = "hooks.yaml:5:29"
    if fmt == "json":
        [warning] = json.loads(out)["warnings"]
        assert warning["path"] == "planner.triggers[0].webhook.secret_env"
        assert warning["message"].startswith("secret $H4_DEPLOY_SECRET is not set here")
        assert warning["text"].endswith("(export H4_DEPLOY_SECRET where `serve` runs)")
        assert json.loads(out)["load_errors"] == []
    elif fmt == "markdown":
        assert "> [!WARNING]\n> **1 warning(s)** (nothing is frozen for these):" in out
        assert f"`{agents / 'hooks.yaml'}:5:29` `planner.triggers[0].webhook.secret_env`" in out
        assert "secret $H4\\_DEPLOY\\_SECRET is not set here" in out
    else:
        assert "Warnings (1):" in out and where in out
        assert "secret $H4_DEPLOY_SECRET is not set here" in out
    monkeypatch.setenv("H4_DEPLOY_SECRET", "whsec_" + "MDEyMzQ1Njc4OWFiY2RlZg==")
    _, out, _ = invoke("reconcile", "--path", str(agents), "--dry-run", "-f", fmt, *state)
    assert "H4_DEPLOY_SECRET is not set" not in out
