"""The worker's loop: claim ahead, run attempts on executor threads, settle in batches.

Measured on the embedded executors (bench/drain_bench.py), the loop, not the runs, was what
limited the drain rate: claiming only as many deliveries as there were free slots cost a claim
transaction and a thread hop per delivery, each delivery settled in a transaction of its own,
and the loop ran on the server's event loop, so under an ingest burst every claim waited behind
the requests (the worker drained a tenth of what was stored meanwhile). Now:

* the loop is a thread of its own (:meth:`Pump.run_blocking`), so ingest cannot starve it;
* one transaction settles the attempts that finished meanwhile: the loop is woken when a
  slot's worth have finished (or within :data:`SETTLE_WAIT`), not once per attempt;
* executor threads take the next claimed delivery themselves, without a trip through the loop;
* while attempts are quick (an average under :data:`QUICK` seconds), up to :data:`AHEAD`
  deliveries per slot are claimed ahead, so claims come in batches too. Slow runs (an agent
  platform taking seconds) turn this off: deliveries are then claimed one free slot at a time,
  and are not held under this worker's lease while other replicas could run them.

Everything claimed and not finished is in the heartbeat, so no lease runs out under a queue; a
shutdown gives back what it claimed and never started (:meth:`Pump.finish`).
"""

from __future__ import annotations

import collections
import contextlib
import logging
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_futures
from typing import TYPE_CHECKING, Any

from planner_operator.core.records import Delivery

if TYPE_CHECKING:
    from planner_operator.runtime.worker import Outcome, Worker

log = logging.getLogger("planner_operator.worker")

# Seconds: attempts faster than this on average are worth claiming ahead. Far above an embedded
# run (about a millisecond, a few under a busy machine's lock contention), far below a platform
# call over the network.
QUICK = 0.05
AHEAD = 16  # deliveries per slot claimed ahead while attempts are quick
_SMOOTHING = 0.2  # weight of the newest attempt in the running average
_UNKNOWN = 1.0  # the average before any attempt: assume slow until shown otherwise
SETTLE_WAIT = 0.005  # seconds a finished attempt may wait for others to settle with it
# While attempts are quick, settle this many at once (or after QUICK_SETTLE_WAIT): every settle
# is a write transaction on the inbox file, which ingest commits to as well
QUICK_SETTLE = 64
QUICK_SETTLE_WAIT = 0.02


class Pump:
    """One worker's loop: :meth:`run_blocking` in a thread until :meth:`stop`, then
    :meth:`finish`.

    ``ready`` (claimed, not started), ``running`` and ``done`` are shared with the executor
    threads; ``_guard`` keeps a delivery from being in neither ``ready`` nor ``running`` while
    the heartbeat lists what is held.
    """

    def __init__(self, worker: Worker) -> None:
        self.worker = worker
        self.config = worker.config
        self.ready: collections.deque[Delivery] = collections.deque()
        self.running: set[str] = set()
        self.done: collections.deque[tuple[Delivery, Outcome]] = collections.deque()
        self.runners: set[Future[None]] = set()
        self.average = _UNKNOWN
        self._guard = threading.Lock()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._ended = threading.Event()  # run_blocking has returned (or never started)
        self._ended.set()
        self._pool = ThreadPoolExecutor(self.config.concurrency, thread_name_prefix="worker-exec")
        # waiting runs are polled in a thread of their own: a poll may wait on a resumed Mastra
        # run for PLANNER_MASTRA_WAIT seconds, which must not hold up the claims
        self._polls = ThreadPoolExecutor(1, thread_name_prefix="worker-waiting")
        self._poll: Future[int] | None = None

    @property
    def quick(self) -> bool:
        return self.average < QUICK

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    def wake(self) -> None:
        """New work arrived (any thread; cheap enough for every inbox commit)."""
        self._wake.set()

    def stop(self) -> None:
        """End the loop at its next turn; runners finish their attempt and take no new one."""
        self._stopping.set()
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

    def run_blocking(self) -> None:
        """The loop (in a thread of its own): until :meth:`stop`."""
        self._ended.clear()
        try:
            self._loop()
        finally:
            self._ended.set()

    def _loop(self) -> None:
        worker, config = self.worker, self.config
        next_beat = next_prune = next_orphans = next_waiting = 0.0
        while not self.stopping:
            self._wake.clear()
            more = False
            try:
                self._settle()
                now = worker.clock.monotonic()
                if now >= next_orphans:
                    worker.reclaim_orphans()
                    next_orphans = now + config.poll
                if now >= next_waiting and (self._poll is None or self._poll.done()):
                    self._poll = self._polls.submit(worker.poll_waiting)  # never raises
                    next_waiting = now + max(config.poll, 1.0)
                wanted = self._wanted()
                if wanted > 0 and not self.stopping:
                    claimed = worker.inbox.claim(worker.owner, wanted, config.lease)
                    with self._guard:
                        self.ready.extend(claimed)
                    more = len(claimed) == wanted  # a full claim: there may be more
                held = self.held()
                if held and now >= next_beat:
                    worker.inbox.heartbeat(held, worker.owner, config.lease)
                    next_beat = now + config.lease / 3
                if now >= next_prune:
                    pruned = worker.inbox.prune()
                    if pruned:
                        log.info("inbox: pruned %d deliveries older than 7 days", pruned)
                    next_prune = now + 3600
            except Exception:  # a busy or broken database: keep serving, try again
                log.exception("worker: inbox unavailable")
                self._stopping.wait(min(config.poll, 1.0))  # not a hot loop while it is down
            self._start_runners()
            if more and self._wanted() > 0:
                continue
            # finished attempts wait up to SETTLE_WAIT for a batch to gather (runners wake us
            # when one is full, or when claims run low); otherwise sleep until woken or polled
            wait = (QUICK_SETTLE_WAIT if self.quick else SETTLE_WAIT) if self.done else config.poll
            self._wake.wait(wait)

    def _start_runners(self) -> None:
        with self._guard:
            work = len(self.running) + len(self.ready)
            wanted = min(self.config.concurrency, work) - len(self.runners)
        for _ in range(max(0, wanted)):
            try:
                runner = self._pool.submit(self._runner)
            except RuntimeError:  # the pool is shut down: we are stopping
                return
            with self._guard:
                self.runners.add(runner)
            runner.add_done_callback(self._runner_done)

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
                batch_full = len(self.done) >= self._settle_batch()
            if batch_full or self._wanted() > 0:
                self._wake.set()

    def _settle_batch(self) -> int:
        return QUICK_SETTLE if self.quick else self.config.concurrency

    def _runner_done(self, runner: Future[None]) -> None:
        with self._guard:
            self.runners.discard(runner)
        if not runner.cancelled() and runner.exception() is not None:
            log.error("worker: an executor thread failed", exc_info=runner.exception())
        self._wake.set()

    def _settle(self) -> None:
        with self._guard:
            batch = list(self.done)
            self.done.clear()
        self.worker.settle(batch)  # never raises

    def finish(self, timeout: float) -> None:
        """Shutdown (after :meth:`stop` and the loop's end): let running attempts finish (up to
        ``timeout`` s), settle what finished, and give back what was claimed and never started."""
        self.stop()
        self._ended.wait(timeout)  # a claim under way lands in ready before we give it back
        with self._guard:
            runners = list(self.runners)
        pending: list[Future[Any]] = [*runners, *([self._poll] if self._poll else [])]
        wait_futures(pending, timeout=timeout)
        self._pool.shutdown(wait=False)
        self._polls.shutdown(wait=False, cancel_futures=True)
        self._settle()
        with self._guard:
            unstarted = [d.id for d in self.ready]
            self.ready.clear()
        if unstarted:
            with contextlib.suppress(Exception):  # not given back: their leases run out
                self.worker.inbox.release(unstarted, self.worker.owner)
