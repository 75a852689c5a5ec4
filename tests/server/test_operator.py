"""`planner-operator run` as a real process: watch + serve + scheduler, push hook, SIGTERM."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import git
import httpx
import pytest

from planner_operator.state.ledger import Ledger

ROOT = Path(__file__).resolve().parents[2]
SECRET = "It's a Secret to Everybody"
JOB = (
    'name: A\nplanner:\n  jobs:\n    - name: daily\n      schedule: "{cron}"\n'
    '      action: {{chat: {{template: "hi {{date}}"}}}}\n'
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def operator(args: list[str], state: Path, env: dict[str, str] | None = None) -> Iterator[str]:
    port = free_port()
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("INNGEST_", "COMPOSIO_"))}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "planner_operator",
            "run",
            *args,
            "--port",
            str(port),
            "--state-dir",
            str(state),
            "--grace",
            "5",
        ],
        cwd=ROOT,
        env={**clean, **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "operator did not start"
            time.sleep(0.1)
        yield base
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            output, _ = proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            output, _ = proc.communicate()
        assert "Traceback" not in output, output
        assert proc.returncode == 0, output


def applied(state: Path) -> dict[str, str]:
    with Ledger(state / "ledger.db") as ledger:
        return {e.key: str(e.spec.get("schedule")) for e in ledger.entries(include_retired=False)}


def wait_for(predicate: object, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.1)


def test_run_applies_on_start_and_on_file_change_then_stops_on_sigterm(tmp_path: Path) -> None:
    agents = tmp_path / "agents"
    agents.mkdir()
    (agents / "a.yaml").write_text(JOB.format(cron="0 9 * * *"))
    state = tmp_path / "state"
    with operator(["--path", str(agents)], state):
        wait_for(lambda: applied(state) == {"a/jobs/daily": "0 9 * * *"})
        (agents / "a.yaml").write_text(JOB.format(cron="0 10 * * *"))
        wait_for(lambda: applied(state) == {"a/jobs/daily": "0 10 * * *"})
    # SIGTERM was sent by the context manager: exit code 0, no traceback (asserted there)


def test_git_push_hook_wakes_the_poller(tmp_path: Path) -> None:
    bare = tmp_path / "remote.git"
    git.Repo.init(bare, bare=True, initial_branch="main")
    work = git.Repo.clone_from(str(bare), tmp_path / "work")
    with work.config_writer() as cfg:
        cfg.set_value("user", "name", "t").set_value("user", "email", "t@example.com")
    (tmp_path / "work" / "agents").mkdir()

    def push(cron: str) -> None:
        (tmp_path / "work" / "agents" / "a.yaml").write_text(JOB.format(cron=cron))
        work.git.add(A=True)
        work.index.commit(cron)
        work.git.push("origin", "HEAD:main")

    push("0 9 * * *")
    state = tmp_path / "state"
    env = {"PLANNER_GIT_WEBHOOK_SECRET": SECRET}
    with operator(["--repo", str(bare), "--interval", "1h"], state, env) as base:
        wait_for(lambda: applied(state) == {"a/jobs/daily": "0 9 * * *"})
        push("0 11 * * *")
        body = json.dumps({"ref": "refs/heads/main"}).encode()
        good = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
        headers = {"x-github-event": "push", "content-type": "application/json"}
        bad = httpx.post(
            f"{base}/hooks/git",
            content=body,
            headers={**headers, "x-hub-signature-256": "sha256=00"},
        )
        assert bad.status_code == 401
        ok = httpx.post(
            f"{base}/hooks/git", content=body, headers={**headers, "x-hub-signature-256": good}
        )
        assert ok.status_code == 202
        wait_for(lambda: applied(state) == {"a/jobs/daily": "0 11 * * *"})


def test_git_hook_is_disabled_without_secret(tmp_path: Path) -> None:
    agents = tmp_path / "agents"
    agents.mkdir()
    (agents / "a.yaml").write_text(JOB.format(cron="0 9 * * *"))
    with operator(["--path", str(agents)], tmp_path / "state") as base:
        assert httpx.post(f"{base}/hooks/git", content=b"{}").status_code == 404


@pytest.mark.slow
def test_embedded_scheduler_fires_on_the_real_clock(tmp_path: Path) -> None:
    agents = tmp_path / "agents"
    agents.mkdir()
    (agents / "a.yaml").write_text(JOB.format(cron="* * * * *"))
    state = tmp_path / "state"
    with operator(["--path", str(agents)], state):

        def fired() -> bool:
            path = state / "runs.db"
            if not path.exists():
                return False
            from planner_operator.state.runs import RunStore

            with RunStore(path) as runs:
                return any(r.origin == "scheduler" for r in runs.list(key="a/jobs/daily"))

        wait_for(fired, timeout=75)


def test_scheduler_jitter_setting() -> None:
    from planner_operator.core import variables
    from planner_operator.errors import SourceError

    jitter = variables.SCHEDULER_JITTER
    assert jitter.read({}) == 0.0
    assert jitter.read({"PLANNER_SCHEDULER_JITTER": "2.5"}) == 2.5
    with pytest.raises(SourceError, match="PLANNER_SCHEDULER_JITTER"):
        jitter.read({"PLANNER_SCHEDULER_JITTER": "soon"})
