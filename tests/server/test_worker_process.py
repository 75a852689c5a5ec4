"""``serve`` runs its inbox worker as a child process (``server/worker_process``): the child
drains what ingest stores, never outlives its server (SIGTERM or SIGKILL of ``serve``), and a
child killed mid-burst is replaced at once, its leased deliveries run exactly once by the next
one well inside the lease."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import httpx
import pytest

from planner_operator.core.settings import Settings
from planner_operator.state.runs import RunStore
from tests.support.serve_process import Server
from tests.support.webhook_env import (
    MAIL_ID,
    MAIL_KEY,
    apply_triggers,
    composio_body,
    composio_headers,
    mail_spec,
    wait_settled,
)


def _server(tmp_path: Path, **env: str) -> tuple[Server, Settings]:
    state = tmp_path / "state"
    state.mkdir()
    settings = Settings.resolve(state_dir=state, env={})
    apply_triggers(settings, {(MAIL_KEY, "composio", MAIL_ID): mail_spec()})
    return Server(state, tmp_path / "serve.log", env), settings


def _child(server: Server) -> int:
    found = httpx.get(server.url + "/api/inbox", timeout=10).json()
    assert found["worker"] is True
    pid = found["worker_process"]
    assert isinstance(pid, int) and pid != server.pid
    return pid


def _alive(pid: int) -> bool:
    """Running (a zombie no reaper collected counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _wait_gone(pid: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while _alive(pid):
        assert time.monotonic() < deadline, f"worker process {pid} still running"
        time.sleep(0.05)


def _post(server: Server, ids: list[str]) -> None:
    with httpx.Client(base_url=server.url, timeout=10) as client:
        for msg_id in ids:
            body = composio_body(subject=msg_id, sender="r@example.com")
            answer = client.post(
                "/webhooks/composio", content=body, headers=composio_headers(msg_id, body)
            )
            assert answer.status_code == 202, answer.text


def _succeeded(settings: Settings) -> list[str]:
    with RunStore(settings.runs_db) as runs:
        return [r.run_id for r in runs.list(key=MAIL_KEY, limit=10_000) if r.status == "succeeded"]


def test_the_child_drains_and_stops_with_serve(tmp_path: Path) -> None:
    server, settings = _server(tmp_path)
    server.start()
    try:
        child = _child(server)
        _post(server, [f"msg_{n}" for n in range(20)])
        counts = wait_settled(settings, timeout=20)
        assert counts.get("done") == 20
        assert len(_succeeded(settings)) == 20
    finally:
        server.stop()
    assert server.proc is not None and server.proc.returncode == 0
    _wait_gone(child, 10)
    assert "worker process" in server.log.read_text()


def test_a_sigkilled_serve_takes_its_child_with_it(tmp_path: Path) -> None:
    server, _ = _server(tmp_path)
    server.start()
    child = _child(server)
    server.kill()
    _wait_gone(child, 15)  # the pipe's end of file: the child stops on its own


def test_a_killed_child_is_replaced_and_its_deliveries_run_once(tmp_path: Path) -> None:
    # a 60 s lease: what the dead child held is run at once because its owner is provably
    # gone, not because the lease ran out
    server, settings = _server(tmp_path, PLANNER_INBOX_LEASE="60")
    server.start()
    try:
        first = _child(server)
        ids = [f"msg_{n}" for n in range(300)]
        _post(server, ids[:150])
        os.kill(first, signal.SIGKILL)  # mid-drain: some deliveries are leased to it
        _post(server, ids[150:])  # ingest goes on meanwhile
        started = time.monotonic()
        counts = wait_settled(settings, timeout=30)
        assert time.monotonic() - started < 30  # far inside the 60 s lease
        assert counts.get("done") == len(ids)
        second = _child(server)
        assert second != first
        succeeded = _succeeded(settings)
        assert len(succeeded) == len(set(succeeded)) == len(ids)  # each exactly once
    finally:
        server.stop()
    assert "exited with" in server.log.read_text()


@pytest.mark.parametrize("flag", ["0"])
def test_the_thread_stays_available(tmp_path: Path, flag: str) -> None:
    server, settings = _server(tmp_path, PLANNER_WORKER_PROCESS=flag)
    server.start()
    try:
        found = httpx.get(server.url + "/api/inbox", timeout=10).json()
        assert found["worker"] is True and found["worker_process"] is None
        _post(server, ["msg_thread"])
        assert wait_settled(settings, timeout=20).get("done") == 1
    finally:
        server.stop()
