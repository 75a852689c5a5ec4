"""``POST /api/plan`` and ``reconcile --dry-run --server``: the operator plans files a client
sent, answers exactly what a local dry run prints (text, markdown, json; exit codes 0/1/2), needs
the token, caps the body and writes nothing.

The server is the real serve app under uvicorn over the embedded backend's SQLite state; the
client is the CLI (``CliRunner``), whose token is the session's ``PLANNER_API_TOKEN`` canary.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from planner_operator.cli.main import app
from planner_operator.core.settings import Settings
from planner_operator.server import bodylimit
from planner_operator.server.app import create_app
from planner_operator.state import open as state_open
from tests.fakes.serving import run_app
from tests.support import canaries, shared_state

ROOT = Path(__file__).resolve().parents[3]
TOKEN = canaries.SESSION["PLANNER_API_TOKEN"]
runner = CliRunner()


def invoke(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def agents(tmp_path: Path) -> Path:
    directory = tmp_path / "agents"
    shutil.copytree(ROOT / "agents", directory)
    return directory


@pytest.fixture
def settings(tmp_path: Path, agents: Path) -> Settings:
    """The example agents applied to the embedded backend, then one schedule changed."""
    state = tmp_path / "state"
    code, out, err = invoke("reconcile", "--yes", "--path", str(agents), "--state-dir", str(state))
    assert code == 0, out + err
    path = agents / "job-application-agent.yaml"
    path.write_text(path.read_text().replace('"0 9 * * 1"', '"0 10 * * 1"', 1), encoding="utf-8")
    return Settings.resolve(state_dir=state, env={})


@pytest.fixture
def server(settings: Settings) -> Iterator[str]:
    env = {
        "PLANNER_API_TOKEN": TOKEN,
        "PLANNER_WORKER": "0",
        "DEPLOY_WEBHOOK_SECRET": canaries.DEPLOY_WEBHOOK_SECRET,
        "CAREERS_WEBHOOK_SECRET": canaries.SESSION["CAREERS_WEBHOOK_SECRET"],
    }
    with run_app(create_app(settings, env)) as url:
        yield url


def dry_run(agents: Path, settings: Settings, *extra: str) -> tuple[int, str, str]:
    state = ["--state-dir", str(settings.state_dir)]
    return invoke("reconcile", "--dry-run", "--path", str(agents), *state, *extra)


@pytest.mark.parametrize("fmt", ["text", "markdown", "json"])
def test_the_server_answers_what_a_local_dry_run_prints(
    fmt: str, agents: Path, settings: Settings, server: str
) -> None:
    local = dry_run(agents, settings, "-f", fmt, "--detailed-exitcode")
    remote = dry_run(agents, settings, "-f", fmt, "--detailed-exitcode", "--server", server)
    assert local[0] == remote[0] == 2  # changes
    assert remote[1] == local[1]
    if fmt == "json":
        assert json.loads(remote[1])["summary"]["update"] == 1
    assert dry_run(agents, settings, "-f", fmt, "--server", server)[0] == 0


def test_load_errors_come_back_with_file_line_col(
    agents: Path, settings: Settings, server: str
) -> None:
    (agents / "broken.yaml").write_text("name: x\nplanner:\n  jobs: [{name: a, schedule: 9}]\n")
    (agents / "latin1.yaml").write_bytes(b"name: caf\xe9\n")  # not UTF-8: the same bytes arrive
    local = dry_run(agents, settings)
    remote = dry_run(agents, settings, "--server", server)
    assert local[0] == remote[0] == 1
    assert remote[1] == local[1]
    assert f"{agents / 'broken.yaml'}:3:" in remote[1]
    assert str(agents / "latin1.yaml") in remote[1]


def test_a_revision_is_sent_and_named_as_locally(
    tmp_path: Path, settings: Settings, server: str
) -> None:
    import git

    shutil.copytree(ROOT / "agents", tmp_path / "repo" / "agents")
    with git.Repo.init(tmp_path / "repo") as repo:  # closes its git helpers
        repo.index.add(["agents"])
        sha = repo.index.commit("agents").hexsha
    args = ["--repo", str(tmp_path / "repo"), "--rev", "HEAD", "-f", "markdown"]
    state = ["--state-dir", str(settings.state_dir)]
    local = invoke("reconcile", "--dry-run", *args, *state)
    remote = invoke("reconcile", "--dry-run", *args, "--server", server)
    assert local == remote and sha[:12] in remote[1]


def test_the_plan_takes_no_lock_and_writes_nothing(
    agents: Path, settings: Settings, server: str
) -> None:
    before = shared_state.fingerprint(settings)
    with state_open.apply_lock(settings, holder="an applier", timeout=0.0):
        code, out, err = dry_run(agents, settings, "--server", server, "--detailed-exitcode")
    assert code == 2, out + err
    assert shared_state.fingerprint(settings) == before


def test_the_token_is_required_and_never_shown(
    agents: Path, settings: Settings, server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert httpx.post(f"{server}/api/plan", json={}).status_code == 401
    monkeypatch.setenv("PLANNER_API_TOKEN", "not-the-token")
    code, out, err = dry_run(agents, settings, "--server", server)
    assert code == 1 and "refused the API token" in err and "not-the-token" not in out + err
    monkeypatch.delenv("PLANNER_API_TOKEN")
    code, _, err = dry_run(agents, settings, "--server", server)
    assert code == 1 and "PLANNER_API_TOKEN" in err


def test_bad_requests_are_named_not_500(server: str) -> None:
    bearer = {"Authorization": f"Bearer {TOKEN}"}
    revision = {"kind": "worktree", "location": "agents"}
    bad_path = httpx.post(
        f"{server}/api/plan",
        json={"files": {"../etc/passwd": "x"}, "revision": revision},
        headers=bearer,
    )
    assert bad_path.status_code == 422 and "files" in bad_path.text
    extra = httpx.post(
        f"{server}/api/plan", json={"files": {}, "revision": revision, "x": 1}, headers=bearer
    )
    assert extra.status_code == 422 and '"x"' in extra.text
    big = b'{"files": {"a.yaml": "' + b"a" * (bodylimit.PLAN + 1) + b'"}}'
    over = httpx.post(
        f"{server}/api/plan",
        content=big,
        headers={**bearer, "Content-Type": "application/json"},
        timeout=60,
    )
    assert over.status_code == 413


def test_server_needs_a_dry_run(agents: Path, settings: Settings) -> None:
    code, _, err = invoke("reconcile", "--yes", "--path", str(agents), "--server", "http://x")
    assert code == 1 and "--dry-run" in err


def test_an_unreachable_operator_is_named(agents: Path, settings: Settings) -> None:
    code, _, err = dry_run(agents, settings, "--server", "http://127.0.0.1:18299")
    assert code == 1 and "cannot reach the operator at http://127.0.0.1:18299" in err
    assert os.environ["PLANNER_API_TOKEN"] not in err
