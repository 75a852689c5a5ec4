"""The inbox worker as a child process of `serve` (`-m planner_operator.runtime.worker_main`).

Why a process: in one ``serve`` process the worker and webhook ingest share one GIL, so at
saturation the drain rate (about 500/s) fell below the ingest rate (about 800/s) and a backlog
grew (issue 17 item 12, issue 20 item 2). A child process has an interpreter of its own.

The parent talks to the child through the child's stdin, which is the whole protocol:

* each byte is a wake-up (new deliveries were committed), so a delivery does not wait for the
  poll interval;
* end of file means the parent is gone or stopping: the child finishes its in-flight runs
  (up to ``--grace`` seconds), settles them, gives back what it claimed and never started, and
  exits. A parent killed with SIGKILL closes the pipe too, so the child never outlives it and
  never runs on without its server.

A child killed mid-run leaves its deliveries leased; the next child (``serve`` restarts it)
takes them back at once, because its owner is provably gone (``state.liveness``).
SIGTERM to the child ends it the same graceful way; SIGINT is ignored, because a terminal's
Ctrl-C reaches the whole process group and is the parent's to handle (it then closes the pipe).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

from planner_operator.core import variables
from planner_operator.core.settings import Settings
from planner_operator.runtime.executors import select as executor_select
from planner_operator.runtime.worker import Routes, Worker, WorkerConfig
from planner_operator.state import open as state_open

log = logging.getLogger("planner_operator.worker")


def _watch_stdin(worker: Worker, loop: asyncio.AbstractEventLoop, done: asyncio.Event) -> None:
    """In a thread: wake the worker per byte; at end of file, ask the loop to stop."""
    fd = sys.stdin.fileno()
    while True:
        try:
            chunk = os.read(fd, 4096)
        except OSError:
            chunk = b""
        if not chunk:
            break
        worker.wake()
    loop.call_soon_threadsafe(done.set)


async def serve(worker: Worker, grace: float) -> None:
    loop = asyncio.get_running_loop()
    done = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, done.set)
    # Ctrl-C reaches the whole process group: the parent stops and closes the pipe
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    threading.Thread(
        target=_watch_stdin, args=(worker, loop, done), name="worker-wake", daemon=True
    ).start()
    task = asyncio.create_task(worker.run())
    await done.wait()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    await worker.wait_idle(grace)


def build(settings: Settings, env: dict[str, str]) -> Worker:
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    return Worker(
        inbox=state_open.inbox(settings),
        routes=Routes(settings),
        runs=state_open.runs(settings),
        executors=executor_select.from_env(settings, env),
        config=WorkerConfig.from_env(env),
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="planner_operator.runtime.worker_main")
    parser.add_argument("--state-dir", type=Path, required=True)
    parser.add_argument("--state-db", type=Path, required=True)
    parser.add_argument("--ledger-db", type=Path, required=True)
    parser.add_argument("--grace", type=float, default=10.0)
    args = parser.parse_args(argv)
    from planner_operator.core import logsafe

    logsafe.configure()
    env = variables.environ()
    settings = Settings.resolve(
        state_dir=args.state_dir, state_db=args.state_db, ledger_db=args.ledger_db, env=env
    )
    worker = build(settings, dict(env))
    log.info("worker process %d started (owner %s)", os.getpid(), worker.owner)
    asyncio.run(serve(worker, args.grace))
    log.info("worker process %d stopped", os.getpid())
    return 0


if __name__ == "__main__":
    sys.exit(main())
