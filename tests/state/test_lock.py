"""The SQLite apply lock: stale rows, takeovers and real processes (``test_contract_lock.py``
has what every engine's lock does)."""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
import textwrap
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from planner_operator.errors import LockError
from planner_operator.state import db
from planner_operator.state.ledger import Ledger
from planner_operator.state.lock import ApplyLock, pid_alive

ROOT = Path(__file__).resolve().parents[2]


def plant(path: Path, *, pid: int, host: str, started_at: datetime, holder: str = "ghost") -> None:
    """Write a lock row as some other (possibly dead) applier would have left it."""
    ApplyLock(path).close()  # make sure the table exists
    conn = db.connect(path)
    with db.transaction(conn):
        conn.execute(
            "INSERT INTO locks (name, holder, pid, host, started_at, token) "
            "VALUES ('apply', ?, ?, ?, ?, 'planted')",
            (holder, pid, host, started_at.isoformat()),
        )
    conn.close()


def dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    assert not pid_alive(child.pid)
    return child.pid


def test_default_holder_is_user_at_host(tmp_path: Path) -> None:
    with ApplyLock(tmp_path / "state.db") as lock:
        assert lock.holder.endswith("@" + socket.gethostname())


def test_stale_lock_of_a_dead_pid_is_taken_over(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    pid = dead_pid()
    plant(path, pid=pid, host=socket.gethostname(), started_at=datetime.now(UTC))
    with ApplyLock(path, holder="me") as lock:
        assert lock.took_over is not None
        assert lock.took_over.pid == pid
        current = lock.current()
        assert current is not None
        assert current.holder == "me"


def test_takeover_of_a_dead_pid_is_said_and_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "state.db"
    pid = dead_pid()
    plant(path, pid=pid, host=socket.gethostname(), started_at=datetime.now(UTC))
    with (
        caplog.at_level(logging.WARNING, logger="planner_operator.state.lock"),
        ApplyLock(path, holder="me") as lock,
    ):
        said = lock.takeover
    assert said is not None
    assert f"pid {pid} on {socket.gethostname()}" in said and "ghost" in said
    assert f"process {pid} no longer runs on this host" in said
    assert [r.getMessage() for r in caplog.records] == [said]


def test_takeover_by_age_says_how_old_the_lock_was(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "state.db"
    plant(path, pid=1, host="elsewhere.example", started_at=datetime.now(UTC) - timedelta(hours=2))
    with (
        caplog.at_level(logging.WARNING, logger="planner_operator.state.lock"),
        ApplyLock(path) as lock,
    ):
        said = lock.takeover
    assert said is not None and "elsewhere.example" in said
    assert "2 h old, older than the 1 h after which a lock counts as stale" in said
    assert said in caplog.text


def test_a_free_lock_is_no_takeover(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with (
        caplog.at_level(logging.WARNING, logger="planner_operator.state.lock"),
        ApplyLock(tmp_path / "state.db") as lock,
    ):
        assert lock.takeover is None and lock.took_over is None
    assert caplog.records == []


def test_live_pid_on_this_host_is_not_stale(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    plant(path, pid=os.getppid(), host=socket.gethostname(), started_at=datetime.now(UTC))
    lock = ApplyLock(path)
    with pytest.raises(LockError, match="ghost"):
        lock.acquire(timeout=0)
    lock.close()


def test_other_host_is_only_stale_after_stale_after(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    two_hours_ago = datetime.now(UTC) - timedelta(hours=2)
    plant(path, pid=dead_pid(), host="elsewhere.example", started_at=two_hours_ago)

    patient = ApplyLock(path, stale_after=timedelta(hours=3))
    with pytest.raises(LockError, match=r"elsewhere\.example"):
        patient.acquire(timeout=0)  # the pid is dead *here*, but it ran on another host
    patient.close()

    with ApplyLock(path) as lock:  # default stale_after is 1 h
        assert lock.took_over is not None
        assert lock.took_over.host == "elsewhere.example"


def test_release_only_removes_its_own_row(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    slow = ApplyLock(path, holder="slow")
    slow.acquire(timeout=0)
    # The slow applier is presumed dead after a tiny stale_after, so another one takes over...
    taker = ApplyLock(path, holder="taker", stale_after=timedelta(0))
    time.sleep(0.01)
    taker.acquire(timeout=0)
    assert taker.took_over is not None
    assert taker.took_over.holder == "slow"
    # ...and when the slow one finally finishes, it must not free the taker's lock.
    slow.release()
    current = taker.current()
    assert current is not None
    assert current.holder == "taker"
    taker.release()
    assert taker.current() is None
    slow.close()
    taker.close()


def test_clear_removes_any_holder(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    plant(path, pid=os.getppid(), host="elsewhere.example", started_at=datetime.now(UTC))
    lock = ApplyLock(path)
    cleared = lock.clear()
    assert cleared is not None
    assert cleared.host == "elsewhere.example"
    assert lock.clear() is None
    lock.acquire(timeout=0)
    lock.close()


def test_lock_shares_the_file_with_the_ledger(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    with Ledger(path) as ledger, ApplyLock(path):
        ledger.set_meta("last_revision", "abc")
        assert ledger.get_meta("last_revision") == "abc"


CHILD = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from planner_operator.errors import LockError
    from planner_operator.state.lock import ApplyLock

    path, go, stop = (Path(p) for p in sys.argv[1:4])
    lock = ApplyLock(path, holder="proc")
    while not go.exists():
        time.sleep(0.005)
    try:
        lock.acquire(timeout=0)
    except LockError:
        print("busy", flush=True)
        sys.exit(0)
    print("got", flush=True)
    deadline = time.monotonic() + 20
    while not stop.exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    lock.close()
    """
)


def test_processes_racing_exactly_one_wins(tmp_path: Path) -> None:
    path, go, stop = tmp_path / "state.db", tmp_path / "go", tmp_path / "stop"
    ApplyLock(path).close()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    args = [sys.executable, "-c", CHILD, str(path), str(go), str(stop)]
    children = [
        subprocess.Popen(args, stdout=subprocess.PIPE, text=True, env=env) for _ in range(4)
    ]
    try:
        go.touch()
        results = [c.stdout.readline().strip() for c in children if c.stdout]
        assert sorted(results) == ["busy", "busy", "busy", "got"]
    finally:
        stop.touch()
        for c in children:
            c.wait(timeout=30)
            if c.stdout:
                c.stdout.close()
    assert all(c.returncode == 0 for c in children)
    probe = ApplyLock(path)
    assert probe.current() is None
    probe.close()
