"""A worker killed mid-run: its deliveries are taken back at once, not after the lease.

Real processes: a child worker claims a delivery and hangs inside the executor call; the test
SIGKILLs it (or leaves it alive) and a second worker on the same host decides by the owner's
pid whether to wait out the 60 s lease.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from planner_operator.core.records import NewDelivery
from planner_operator.core.settings import Settings
from planner_operator.runtime.worker import Routes, Worker, WorkerConfig
from planner_operator.state import liveness
from planner_operator.state.inbox import Inbox
from planner_operator.state.runs import RunStore
from tests.support.webhook_env import (
    MAIL_KEY,
    Recorder,
    apply_triggers,
    composio_body,
    default_triggers,
)

ROOT = Path(__file__).resolve().parents[2]

HANGING_WORKER = textwrap.dedent(
    """
    import asyncio, sys, time
    from pathlib import Path
    from planner_operator.core.settings import Settings
    from planner_operator.runtime.executors.base import Executors
    from planner_operator.runtime.worker import Routes, Worker, WorkerConfig
    from planner_operator.state.inbox import Inbox
    from planner_operator.state.runs import RunStore

    class Hang:
        def start_thread(self, **_):
            time.sleep(3600)

        def run(self, **_):
            time.sleep(3600)

    state = Path(sys.argv[1])
    worker = Worker(
        inbox=Inbox(state / "inbox.db"),
        routes=Routes(Settings.resolve(state_dir=state, env={})),
        runs=RunStore(state / "runs.db"),
        executors=Executors(chat=Hang(), workflow=Hang()),
        config=WorkerConfig(lease=60.0, poll=0.05),
    )
    asyncio.run(worker.run())
    """
)


@pytest.fixture
def state(tmp_path: Path) -> Settings:
    settings = Settings.resolve(state_dir=tmp_path, env={})
    apply_triggers(settings, default_triggers())
    with Inbox(settings.inbox_db) as inbox:
        inbox.insert(NewDelivery(id="m", source="composio", body=composio_body()))
    return settings


def start_hanging_worker(settings: Settings) -> subprocess.Popen[bytes]:
    """A worker process that has claimed "m" and is stuck inside the executor call."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    child = subprocess.Popen(
        [sys.executable, "-c", HANGING_WORKER, str(settings.state_dir)], cwd=ROOT, env=env
    )
    deadline = time.monotonic() + 30
    with RunStore(settings.runs_db) as runs:
        while not [r for r in runs.list(key=MAIL_KEY) if r.status == "running"]:
            assert child.poll() is None, "the worker process died on its own"
            assert time.monotonic() < deadline, "the worker never started the run"
            time.sleep(0.05)
    return child


def second_worker(settings: Settings, recorder: Recorder) -> tuple[Worker, Inbox, RunStore]:
    inbox, runs = Inbox(settings.inbox_db), RunStore(settings.runs_db)
    worker = Worker(
        inbox=inbox,
        routes=Routes(settings),
        runs=runs,
        executors=recorder.executors(),
        config=WorkerConfig(lease=60.0, poll=0.05),
    )
    return worker, inbox, runs


def test_a_killed_workers_delivery_runs_at_once_not_after_the_lease(
    state: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    child = start_hanging_worker(state)
    child.send_signal(signal.SIGKILL)
    child.wait()
    killed = time.monotonic()
    recorder = Recorder()
    worker, inbox, runs = second_worker(state, recorder)

    async def serve_until_done() -> float:
        task = asyncio.create_task(worker.run())
        try:
            while (found := inbox.get("m")) is None or found.status != "done":
                assert time.monotonic() - killed < 20, "still waiting: the lease was waited out"
                await asyncio.sleep(0.01)
            return time.monotonic() - killed
        finally:
            task.cancel()
            await worker.wait_idle(2)

    with caplog.at_level(logging.WARNING, logger="planner_operator.worker"):
        latency = asyncio.run(serve_until_done())
    assert latency < 5.0  # the lease is 60 s
    assert recorder.keys == ["m"]
    history = [(r.attempt, r.status, r.error) for r in runs.list(key=MAIL_KEY)]
    assert history[0][:2] == (2, "succeeded")
    assert history[1][:2] == (1, "failed") and "abandoned" in str(history[1][2])
    assert f"leased by {socket.gethostname()}:{child.pid}:" in caplog.text
    assert "took back 1 delivery(ies)" in caplog.text
    inbox.close()
    runs.close()


def test_a_live_workers_lease_is_left_alone(state: Settings) -> None:
    child = start_hanging_worker(state)
    try:
        recorder = Recorder()
        worker, inbox, runs = second_worker(state, recorder)
        assert worker.reclaim_orphans() == 0
        assert worker.drain() == 0
        found = inbox.get("m")
        assert found is not None and found.status == "processing"
        assert recorder.keys == []
        inbox.close()
        runs.close()
    finally:
        child.kill()
        child.wait()


def test_only_an_owner_on_this_machine_with_a_dead_or_reused_pid_is_gone() -> None:
    here = liveness.current()
    assert here.machine and here.started, "this test needs Linux /proc"
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    parent = os.getppid()
    started = liveness.start_time(parent)

    def owner(pid: int, start: str, *, host: str = here.host, machine: str = here.machine) -> str:
        return liveness.Process(host, machine, pid, start).name("7f00")

    assert liveness.gone(owner(dead.pid, "12345"))
    assert not liveness.gone(owner(parent, started))  # alive, and the very same process
    assert liveness.gone(owner(parent, str(int(started) + 1)))  # the pid, reused by another
    assert not liveness.gone(owner(os.getpid(), here.started))  # this process: another worker
    assert not liveness.gone(owner(dead.pid, "1", host="elsewhere"))  # cannot be probed
    other_boot = "00000000-0000-0000-0000-000000000000." + here.machine.partition(".")[2]
    assert not liveness.gone(owner(dead.pid, "1", machine=other_boot))  # a namesake machine
    other_ns = here.machine.partition(".")[0] + ".1"
    assert not liveness.gone(owner(dead.pid, "1", machine=other_ns))  # another PID namespace
    assert not liveness.gone(owner(dead.pid, "1", machine=""))  # no machine part: never
    assert not liveness.gone("w1")  # not a worker's own name (tests, `inbox replay`)
    assert not liveness.gone(f"{here.host}:{dead.pid}:7f00")  # the old form: no start time
    assert not liveness.gone(f"{here.host}:not-a-pid:1:{here.machine}")
    assert liveness.parse(owner(dead.pid, "9")) == liveness.Process(
        here.host, here.machine, dead.pid, "9"
    )


def test_a_worker_names_itself_so_that_it_can_be_proven_gone(state: Settings) -> None:
    worker, inbox, runs = second_worker(state, Recorder())
    found = liveness.parse(worker.owner)
    assert found is not None
    assert (found.host, found.pid, found.machine) == (
        socket.gethostname(),
        os.getpid(),
        liveness.machine(),
    )
    assert found.started == liveness.start_time(os.getpid()) != ""
    inbox.close()
    runs.close()
