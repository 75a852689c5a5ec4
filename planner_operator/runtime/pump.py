"""The worker's asyncio loop: claim ahead, run attempts on executor threads, settle in batches.

Measured on the embedded executors (bench/drain_bench.py), the loop, not the runs, was what
limited the drain rate: claiming only as many deliveries as there were free slots cost a claim
transaction and a thread hop per delivery, and each delivery settled in a transaction of its
own, so the worker drained far slower than ingress stored. Now:

* one transaction settles every attempt that finished since the last turn of the loop;
* executor threads take the next claimed delivery themselves, without a trip through the loop;
* while attempts are quick (an average under :data:`QUICK` seconds), up to :data:`AHEAD`
  deliveries per slot are claimed ahead, so claims come in batches too. Slow runs (an agent
  platform taking seconds) turn this off: deliveries are then claimed one free slot at a time,
  and are not held under this worker's lease while other replicas could run them.

Everything claimed and not finished is in the heartbeat, so no lease runs out under a queue; a
shutdown gives back what it claimed and never started (:meth:`Pump.wait_idle`).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from planner_operator.core.records import Delivery

if TYPE_CHECKING:
    from planner_operator.runtime.worker import Outcome, Worker

log = logging.getLogger("planner_operator.worker")

QUICK = 0.005  # seconds: attempts faster than this on average are worth claiming ahead
AHEAD = 16  # deliveries per slot claimed ahead while attempts are quick
_SMOOTHING = 0.2  # weight of the newest attempt in the running average
_UNKNOWN = 1.0  # the average before any attempt: assume slow until shown otherwise


class Pump:
    """One worker's loop; :meth:`run` until cancelled, then :meth:`wait_idle`.

    ``ready`` (claimed, not started), ``running`` and ``done`` are shared with the executor
    threads; ``_guard`` keeps a delivery from being seen in neither ``ready`` nor ``running``
    while the heartbeat lists what is held.
    """

    def __init__(self, worker: Worker) -> None:
        self.worker = worker
        self.config = worker.config
        self.ready: collections.deque[Delivery] = collections.deque()
        self.running: set[str] = set()
        self.done: collections.deque[tuple[Delivery, Outcome]] = collections.deque()
        self.runners: set[asyncio.Future[None]] = set()
        self.average = _UNKNOWN
        self.stopping = False
        self._guard = threading.Lock()
        self._wake: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def quick(self) -> bool:
        return self.average < QUICK

    def wake(self) -> None:
        """New work arrived; ignored while every slot is busy (a finishing run wakes us)."""
        if self._wake is not None and len(self.runners) < self.config.concurrency:
            self._wake.set()

    def held(self) -> list[str]:
        """Every delivery this worker holds a lease on and has not settled yet."""
        with self._guard:
            return [*self.running, *(d.id for d in self.ready)]

    def _wanted(self) -> int:
        """How many to claim now: free slots, plus a queue ahead while attempts are quick."""
        slots = self.config.concurrency
        with self._guard:
            held = len(self.ready) + len(self.running)
        if not self.quick:
            return max(0, slots - held)
        target = slots * (1 + AHEAD)
        return target - held if held <= target // 2 else 0  # refill in batches, at half

    async def run(self) -> None:
        worker, config = self.worker, self.config
        loop = self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        db_pool = ThreadPoolExecutor(1, thread_name_prefix="worker-db")
        pool = ThreadPoolExecutor(config.concurrency, thread_name_prefix="worker-exec")
        next_beat = next_prune = next_orphans = 0.0
        try:
            while True:
                more = False
                try:
                    if self.done:
                        await loop.run_in_executor(db_pool, self._settle)
                    now = worker.clock.monotonic()
                    if now >= next_orphans:
                        await loop.run_in_executor(db_pool, worker.reclaim_orphans)
                        next_orphans = now + config.poll
                    wanted = self._wanted()
                    if wanted > 0:
                        claimed = await loop.run_in_executor(
                            db_pool, worker.inbox.claim, worker.owner, wanted, config.lease
                        )
                        with self._guard:
                            self.ready.extend(claimed)
                        more = len(claimed) == wanted  # a full claim: there may be more
                    held = self.held()
                    if held and now >= next_beat:
                        await loop.run_in_executor(
                            db_pool, worker.inbox.heartbeat, held, worker.owner, config.lease
                        )
                        next_beat = now + config.lease / 3
                    if now >= next_prune:
                        pruned = await loop.run_in_executor(db_pool, worker.inbox.prune)
                        if pruned:
                            log.info("inbox: pruned %d deliveries older than 7 days", pruned)
                        next_prune = now + 3600
                except Exception:  # a busy or broken database: keep serving, try again
                    log.exception("worker: inbox unavailable")
                with self._guard:
                    work = len(self.running) + len(self.ready)
                while len(self.runners) < min(config.concurrency, work):
                    runner = loop.run_in_executor(pool, self._runner)
                    self.runners.add(runner)
                    runner.add_done_callback(self._runner_done)
                if self.done or (more and self._wanted() > 0):
                    await asyncio.sleep(0)  # let the runners' callbacks in, then go on
                    continue
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), config.poll)
        finally:
            self.stopping = True  # runners finish their attempt and take no new one
            pool.shutdown(wait=False)
            db_pool.shutdown(wait=False)

    def _runner(self) -> None:
        """In an executor thread: attempt claimed deliveries until none is left."""
        clock = self.worker.clock
        while not self.stopping:
            with self._guard:
                if not self.ready:
                    return
                d = self.ready.popleft()
                self.running.add(d.id)
            started = clock.monotonic()
            outcome = self.worker.attempt(d)  # never raises
            self.average += _SMOOTHING * (clock.monotonic() - started - self.average)
            with self._guard:
                self.done.append((d, outcome))
                self.running.discard(d.id)
            if self._loop is not None and self._wake is not None:
                with contextlib.suppress(RuntimeError):  # the loop closed under a shutdown
                    self._loop.call_soon_threadsafe(self._wake.set)

    def _runner_done(self, runner: asyncio.Future[None]) -> None:
        self.runners.discard(runner)
        if not runner.cancelled() and runner.exception() is not None:
            log.error("worker: an executor thread failed", exc_info=runner.exception())
        if self._wake is not None:
            self._wake.set()

    def _settle(self) -> None:
        with self._guard:
            batch = list(self.done)
            self.done.clear()
        self.worker.settle(batch)

    async def wait_idle(self, timeout: float) -> None:
        """Shutdown: let running attempts finish (up to ``timeout`` s), settle what finished,
        and give back what was claimed and never started."""
        self.stopping = True
        if self.runners:
            await asyncio.wait(list(self.runners), timeout=timeout)
        await asyncio.to_thread(self._settle)
        with self._guard:
            unstarted = [d.id for d in self.ready]
            self.ready.clear()
        if unstarted:
            with contextlib.suppress(Exception):  # not given back: their leases run out
                await asyncio.to_thread(self.worker.inbox.release, unstarted, self.worker.owner)
