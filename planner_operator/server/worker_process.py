"""``serve``'s inbox worker in a child process: start it, wake it, restart it, stop it.

Measured (BENCHMARKS.md, "Webhook drain vs ingest"): with the worker as a thread of ``serve``,
ingest and drain share one GIL, so under a sustained burst the drain fell below the ingest rate
and ingest itself slowed to about a third of the bare endpoint. In a process of its own
(``runtime/worker_main.py``) the worker has its own interpreter; both share only the inbox file.

The child's stdin is the channel (see ``worker_main``): a byte per inbox commit wakes it, and
closing the pipe stops it gracefully, which also happens when this process is SIGKILLed, so a
child never outlives its server. A child that dies (a crash, the OOM killer) is started again
after :data:`RESTART_DELAY`; the leases it held are taken back at once by the new one, because
their owner is provably gone (``state.liveness``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import subprocess
import sys
from collections.abc import Mapping

from planner_operator.core import variables
from planner_operator.core.settings import Settings

log = logging.getLogger("planner_operator.worker")
RESTART_DELAY = 1.0  # seconds before a dead child is started again (no hot loop of crashes)


class WorkerProcess:
    """One child worker process, kept running from :meth:`start` until :meth:`stop`."""

    def __init__(self, settings: Settings, env: Mapping[str, str]) -> None:
        self.settings = settings
        self.env = dict(env)
        self.proc: subprocess.Popen[bytes] | None = None
        self.restarts = 0
        self._stopping = False
        self._supervisor: asyncio.Task[None] | None = None

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    def _spawn(self, grace: float) -> subprocess.Popen[bytes]:
        env = {**variables.environ(), **self.env}  # the child needs PATH, PYTHONPATH, ...
        if self.settings.database_url:  # Settings may name it without the environment doing so
            env[variables.DATABASE_URL.name] = self.settings.database_url
        command = [
            sys.executable,
            "-m",
            "planner_operator.runtime.worker_main",
            "--state-dir",
            str(self.settings.state_dir),
            "--state-db",
            str(self.settings.state_db),
            "--ledger-db",
            str(self.settings.ledger_db),
            "--grace",
            str(grace),
        ]
        proc = subprocess.Popen(command, stdin=subprocess.PIPE, env=env)
        assert proc.stdin is not None
        os.set_blocking(proc.stdin.fileno(), False)  # a wake-up never blocks the event loop
        log.info("webhooks: inbox worker process %d started", proc.pid)
        return proc

    async def start(self, grace: float = 10.0) -> None:
        self._stopping = False
        self.proc = self._spawn(grace)
        self._supervisor = asyncio.create_task(self._supervise(grace), name="worker-process")

    def wake(self) -> None:
        """New deliveries were committed (on the event loop: never blocks)."""
        proc = self.proc
        if proc is None or proc.stdin is None or proc.stdin.closed:
            return
        with contextlib.suppress(BlockingIOError, BrokenPipeError, OSError, ValueError):
            # a full pipe already holds wake-ups the child has not read: one more adds nothing
            os.write(proc.stdin.fileno(), b".")

    async def _supervise(self, grace: float) -> None:
        while not self._stopping:
            proc = self.proc
            assert proc is not None
            code = await asyncio.to_thread(proc.wait)
            if self._stopping:
                return
            log.error(
                "webhooks: inbox worker process %d exited with %s; starting another in %gs "
                "(it takes back the deliveries the dead one held)",
                proc.pid,
                code,
                RESTART_DELAY,
            )
            _close(proc)
            await asyncio.sleep(RESTART_DELAY)
            if self._stopping:
                return
            self.restarts += 1
            self.proc = self._spawn(grace)

    async def stop(self, grace: float = 10.0) -> None:
        """Close the pipe (the child finishes in-flight runs, up to its grace) and wait; a child
        still there ``grace`` + 5 seconds later is killed (its leases are taken back later)."""
        self._stopping = True
        proc = self.proc
        if proc is None:
            return
        _close(proc)
        try:
            await asyncio.wait_for(asyncio.to_thread(proc.wait), grace + 5.0)
        except TimeoutError:
            log.error("webhooks: inbox worker process %d did not stop; killing it", proc.pid)
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGKILL)
            await asyncio.to_thread(proc.wait)
        if self._supervisor is not None:
            self._supervisor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._supervisor
            self._supervisor = None


def _close(proc: subprocess.Popen[bytes]) -> None:
    if proc.stdin is not None:
        with contextlib.suppress(OSError):
            proc.stdin.close()
