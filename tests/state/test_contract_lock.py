"""The apply lock contract on SQLite (a lock row) and PostgreSQL (an advisory lock + its row).

One applier at a time; a second waits, then fails naming the holder (user, pid, host, since);
a waiter gets the lock once it is released; of many racing, exactly one wins. On PostgreSQL the
lock is freed by the server when its holder's connection dies (a SIGKILLed applier), and the
next applier says it took over.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from planner_operator.core.settings import Settings
from planner_operator.errors import LockError, StateError
from planner_operator.state import open as state_open

ROOT = Path(__file__).resolve().parents[2]


def test_acquire_and_release(store: Settings) -> None:
    lock = state_open.apply_lock(store, holder="alice@box")
    lock.acquire(timeout=0)
    assert lock.held
    current = lock.current()
    assert current is not None
    assert (current.holder, current.pid, current.host) == (
        "alice@box",
        os.getpid(),
        socket.gethostname(),
    )
    lock.acquire(timeout=0)  # already ours: no-op
    lock.release()
    assert not lock.held
    assert lock.current() is None
    lock.release()  # idempotent
    lock.close()


def test_context_manager_releases_on_exit(store: Settings) -> None:
    def failing_apply() -> None:
        with state_open.apply_lock(store) as lock:
            assert lock.held
            raise RuntimeError("apply failed")

    with pytest.raises(RuntimeError):
        failing_apply()
    with state_open.apply_lock(store) as probe:
        assert probe.held  # free again


def test_default_holder_is_user_at_host(store: Settings) -> None:
    with state_open.apply_lock(store) as lock:
        assert lock.holder.endswith("@" + socket.gethostname())


def test_second_acquire_waits_then_fails_naming_the_holder(store: Settings) -> None:
    with state_open.apply_lock(store, holder="alice@box"):
        second = state_open.apply_lock(store, holder="bob@box")
        started = time.monotonic()
        with pytest.raises(LockError) as err:
            second.acquire(timeout=0.3, poll=0.05)
        assert time.monotonic() - started >= 0.3
        message = str(err.value)
        assert "alice@box" in message
        assert f"pid {os.getpid()}" in message
        assert socket.gethostname() in message
        assert str(datetime.now(UTC).year) in message
        what_to_do = "freed by itself" if store.database_url else "planner-operator unlock"
        assert what_to_do in message
        assert isinstance(err.value, StateError)
        assert not second.held
        second.close()


def test_waiter_gets_the_lock_once_it_is_released(store: Settings) -> None:
    first = state_open.apply_lock(store)
    first.acquire(timeout=0)
    timer = threading.Timer(0.2, first.release)
    timer.start()
    second = state_open.apply_lock(store)
    second.acquire(timeout=5, poll=0.02)
    assert second.held
    timer.join()
    second.close()
    first.close()


def test_threads_racing_exactly_one_wins(store: Settings) -> None:
    state_open.apply_lock(store).close()  # migrate up front so the race is about the lock
    n = 6
    barrier = threading.Barrier(n)
    winners: list[str] = []
    losers: list[str] = []
    guard = threading.Lock()

    def contend(i: int) -> None:
        lock = state_open.apply_lock(store, holder=f"thread-{i}")
        barrier.wait()
        try:
            lock.acquire(timeout=0)
        except LockError:
            with guard:
                losers.append(lock.holder)
        else:
            with guard:
                winners.append(lock.holder)
        barrier.wait()  # everybody has tried before anyone releases
        lock.close()

    threads = [threading.Thread(target=contend, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert len(winners) == 1
    assert len(losers) == n - 1


HOLDER = textwrap.dedent(
    """
    import sys, time
    from planner_operator.core.settings import Settings
    from planner_operator.state import open as state_open
    settings = Settings(*[__import__("pathlib").Path(sys.argv[1])] * 3, database_url=sys.argv[2])
    lock = state_open.apply_lock(settings, holder="crashing@ci")
    lock.acquire(timeout=5)
    print("held", flush=True)
    time.sleep(600)
    """
)


def test_postgres_lock_is_freed_when_its_holder_dies(pg_url: str, tmp_path: Path) -> None:
    """A SIGKILLed applier cannot release anything: the server frees its advisory lock when the
    connection drops, so the next applier gets the lock at once and reports the takeover."""
    settings = Settings(tmp_path, tmp_path / "s.db", tmp_path / "l.db", database_url=pg_url)
    child = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(tmp_path), pg_url],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "held"
        with pytest.raises(LockError, match="crashing@ci"):
            state_open.apply_lock(settings).acquire(timeout=0)
        os.kill(child.pid, signal.SIGKILL)
        child.wait(10)
        started = time.monotonic()
        with state_open.apply_lock(settings, holder="next@ci") as lock:
            took = time.monotonic() - started
            assert lock.held and lock.took_over is not None
            assert lock.took_over.holder == "crashing@ci"
        assert took < 5.0  # not a stale-after wait: the server freed it
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        if child.stdout is not None:
            child.stdout.close()


def test_postgres_unlock_refuses_a_live_holder(pg_url: str, tmp_path: Path) -> None:
    settings = Settings(tmp_path, tmp_path / "s.db", tmp_path / "l.db", database_url=pg_url)
    with (
        state_open.apply_lock(settings, holder="alive@ci"),
        pytest.raises(LockError, match=r"live connection.*pg_terminate_backend"),
    ):
        state_open.apply_lock(settings).clear()
    assert state_open.apply_lock(settings).clear() is None
