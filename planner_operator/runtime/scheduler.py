"""The embedded scheduler: fires the jobs applied to the local backend, in process.

One heap of next fire times and one timer: the loop sleeps until the earliest fire (or until the
applied jobs change), never scanning every job every second, so 10,000 schedules cost nothing
between fires. Fire times come from ``scheduling.iter_fires`` (the job's DST policy); a restart
resumes from each job's last recorded run, so nothing is fired twice and missed slots are
handled by the job's ``catchup`` policy (``latest``: run the most recent missed slot once).
Overlap ``skip``: a fire while the previous run of the same job is still running is skipped and
counted. Every fire goes through ``JobRunner`` — the same path and run history as Inngest runs.

Skips are run history rows too (status ``skipped``, with the reason), so ``explain`` can say why
a slot did not run: an overlap skip names the run still going, and a restart writes one row per
missed slot (at most :data:`MISSED_ROWS` per job, older ones folded into one summary row so a
long outage of a minutely job cannot flood the table); its catch-up fire has origin
``catchup``. The counters stay as they were (``status`` and metrics read them).

Building the heap costs per job only dictionary work: the next fire of a (schedule, timezone,
DST policy) after an instant is computed once for every job that shares it (:class:`_NextFires`;
10,000 jobs usually share a few dozen schedules, and croniter costs ~100 us a construction), the
last run of every job is read in one query, and an unchanged job keeps its ``Job`` object, so a
heap entry is checked by identity instead of by hashing specs.
"""

from __future__ import annotations

import asyncio
import heapq
import logging
import random
import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from planner_operator.core import canonical, scheduling, specs
from planner_operator.core import clock as clock_mod
from planner_operator.runtime.jobrun import Fire, JobRunner
from planner_operator.state.runs import FireCount

log = logging.getLogger("planner_operator.runtime.scheduler")

MISSED_ROWS = 100  # missed-slot rows written per job per restart; older ones become one summary


class Job(canonical.SpecText):
    """One applied job as the scheduler holds it for the life of the process.

    The spec is kept as its canonical JSON text and decoded only for a fire: a decoded spec tree
    costs about four times the text, and ``serve`` holds every applied job (10,000 of them
    were ~17 MB of dicts and strings). The typed spec the heap reads is parsed once, on first
    use. Equal texts mean equal specs (canonical JSON), so a reload compares texts.
    """

    __slots__ = ("_typed", "key", "text")

    def __init__(self, key: str, spec: Mapping[str, Any]) -> None:
        self.key = key
        self.text = canonical.canonical_json(spec)
        self._typed: specs.JobSpec | None = None

    def __repr__(self) -> str:
        return f"Job({self.key!r}, {self.text})"

    @property
    def digest(self) -> str:
        return canonical.text_hash(self.text)

    @property
    def typed(self) -> specs.JobSpec:
        """The spec read once per job (a reload builds new ``Job`` objects)."""
        if self._typed is None:
            self._typed = specs.JobSpec.from_dict(self.spec)
        return self._typed


@dataclass(order=True, slots=True)
class _Entry:
    at: datetime
    seq: int
    job: Job = field(compare=False)  # the entry stands while this object is the job's current one
    fire: scheduling.FireTime = field(compare=False)
    advances: bool = field(compare=False, default=True)  # False for a one-off catch-up fire


_Series = tuple[str, str, str]  # (schedule, timezone, DST policy)


class _NextFires:
    """The first fire of a series strictly after an instant, shared by every job of the series.

    Jobs of one series fire at the same instants, so when one of them asks for the fire after
    ``t`` the others ask for the same ``t``: the answer is remembered (a bounded LRU), and each
    series keeps the iterator that produced its latest answer, so asking for the fire after that
    one continues it instead of starting croniter again. Continuing an iterator and starting a
    new one after the same instant give the same fires (``iter_fires`` yields fires strictly
    after ``start`` for any ``start``; ``tests/runtime/test_scheduler_scale.py`` checks it
    across DST transitions), so the memo never changes what fires.
    """

    def __init__(self, size: int = 16_384) -> None:
        self.size = size
        self.started = 0  # fire iterators started (croniter constructions), for tests and benches
        self._memo: OrderedDict[tuple[_Series, datetime], scheduling.FireTime | None] = (
            OrderedDict()
        )
        self._live: OrderedDict[_Series, tuple[datetime, Iterator[scheduling.FireTime]]] = (
            OrderedDict()
        )

    def after(self, spec: specs.JobSpec, instant: datetime) -> scheduling.FireTime | None:
        series = (spec.schedule, spec.timezone, spec.dst)
        key = (series, instant)
        if key in self._memo:
            self._memo.move_to_end(key)
            return self._memo[key]
        live = self._live.get(series)
        if live is not None and live[0] == instant:
            fires = live[1]
        else:
            fires = scheduling.iter_fires(spec.schedule, spec.timezone, start=instant, dst=spec.dst)
            self.started += 1
        fire = next(fires, None)
        self._memo[key] = fire
        if fire is None:
            self._live.pop(series, None)
        else:
            self._live[series] = (fire.utc, fires)
            self._live.move_to_end(series)
        for table in (self._memo, self._live):
            while len(table) > self.size:
                table.popitem(last=False)
        return fire


@dataclass
class Counters:
    fires: int = 0
    missed: int = 0
    overlap_skipped: int = 0


class Scheduler:
    """Deterministic core: ``due(now)`` pops what must fire; the async loop only waits."""

    def __init__(
        self,
        runner: JobRunner,
        load_jobs: Callable[[], list[Job]],
        *,
        clock: clock_mod.Clock | None = None,
        jitter: float = 0.0,
    ) -> None:
        self.runner = runner
        self.load_jobs = load_jobs
        self.clock = clock or runner.clock  # one clock for fires and run rows
        self.jitter = jitter
        self.jobs: dict[str, Job] = {}
        self.heap: list[_Entry] = []
        self.running: set[str] = set()
        self._running_ids: dict[str, str] = {}  # key -> run id of the run in flight
        self._catchups: set[tuple[str, datetime]] = set()  # (key, fire instant) of catch-ups
        self._started = False  # after the first reload, a job that reappears was paused
        self._running_lock = threading.Lock()
        self._counter_lock = threading.Lock()
        self.counters: dict[str, Counters] = {}
        self._next = _NextFires()
        self._seq = 0

    def close(self) -> None:
        """Nothing of its own to close: the run store belongs to the runner's owner."""

    # -- loading -----------------------------------------------------------------------------

    def reload(self) -> None:
        """Pick up applied changes: new, changed and removed jobs; unchanged keep their timers."""
        now = self.clock.now()
        fresh = {j.key: j for j in self.load_jobs() if j.typed.enabled}
        new = [k for k in fresh if k not in self.jobs]
        last = self.runner.runs.last_slots(new) if new else {}
        for key, job in fresh.items():
            old = self.jobs.get(key)
            if old is not None and old.text == job.text:
                fresh[key] = old  # its heap entry (which names this object) stays valid
            else:
                self._schedule(job, now, last.get(key) if old is None else None)
        self.jobs = fresh
        self.heap = [e for e in self.heap if fresh.get(e.job.key) is e.job]
        heapq.heapify(self.heap)
        self._started = True

    def _schedule(self, job: Job, now: datetime, last_slot: str | None) -> None:
        """Queue the job's next fire, resuming after its last run (catch-up on a restart)."""
        spec = job.typed
        start = now
        if last_slot:
            zone = ZoneInfo(spec.timezone)
            slot = datetime.fromisoformat(last_slot).replace(tzinfo=zone)
            start = min(now, slot.astimezone(UTC))
        missed: list[scheduling.FireTime] = []
        upcoming = self._next.after(spec, start)
        while upcoming is not None and upcoming.utc <= now:
            missed.append(upcoming)
            upcoming = self._next.after(spec, upcoming.utc)
        if missed:
            run_latest = spec.catchup == "latest"
            skipped = missed[:-1] if run_latest else missed
            latest = missed[-1] if run_latest else None
            self._count(
                job.key,
                FireCount(missed=len(skipped), skipped=self._missed_rows(job, skipped, latest)),
            )
            if run_latest:
                self._catchups.add((job.key, missed[-1].utc))
                self._push(job, missed[-1], at=now, advances=False)
        if upcoming is not None:
            self._push(job, upcoming)

    def _missed_rows(
        self, job: Job, dropped: list[scheduling.FireTime], latest: scheduling.FireTime | None
    ) -> list[tuple[str, str]]:
        """(slot, reason) of each missed slot the catch-up policy drops, oldest first."""
        why = "the operator was down" if not self._started else "the job was paused or removed"
        policy = "none" if latest is None else f"latest ran {_wall(job, latest)}"
        reason = f"missed while {why}; catchup: {policy}"
        rows = [(_wall(job, f), reason) for f in dropped[-MISSED_ROWS:]]
        folded = dropped[:-MISSED_ROWS]
        if folded:  # parsed back by explain.py: keep "<n> slots from <first> to <last>"
            first, last = _wall(job, folded[0]), _wall(job, folded[-1])
            summary = (
                f"missed while {why}: {len(folded)} slots from {first} to {last} "
                f"(not listed one by one); catchup: {policy}"
            )
            rows.insert(0, (last, summary))
        return rows

    def _push(
        self,
        job: Job,
        fire: scheduling.FireTime,
        at: datetime | None = None,
        *,
        advances: bool = True,
    ) -> None:
        when = at or fire.utc
        if self.jitter:
            when += timedelta(seconds=random.uniform(0, self.jitter))
        self._seq += 1
        heapq.heappush(self.heap, _Entry(when, self._seq, job, fire, advances))

    # -- firing ------------------------------------------------------------------------------

    def next_at(self) -> datetime | None:
        return self.heap[0].at if self.heap else None

    def due(self, now: datetime) -> list[tuple[Job, scheduling.FireTime]]:
        """Pop every fire due at ``now`` and schedule each job's following fire."""
        out: list[tuple[Job, scheduling.FireTime]] = []
        while self.heap and self.heap[0].at <= now:
            entry = heapq.heappop(self.heap)
            job = entry.job
            if self.jobs.get(job.key) is not job:  # removed or changed since it was queued
                continue
            out.append((job, entry.fire))
            if entry.advances:  # a catch-up fire has no successor of its own
                following = self._next.after(job.typed, entry.fire.utc)
                if following is not None:
                    self._push(job, following)
        return out

    def fire(self, job: Job, fire: scheduling.FireTime) -> Any:
        """Run one fire synchronously (overlap policy applied by the caller's ``running``)."""
        run_id = f"sched-{uuid.uuid4().hex[:12]}"
        skips = job.typed.overlap == "skip"
        with self._running_lock:
            busy = job.key in self.running
            previous = self._running_ids.get(job.key, "?")
            if not busy or not skips:
                self.running.add(job.key)
                self._running_ids[job.key] = run_id
        if busy and skips:
            reason = f"overlap: previous run {previous} still running"
            self._count(job.key, FireCount(overlap_skipped=1, skipped=[(_wall(job, fire), reason)]))
            log.info("%s: fire for %s skipped, previous run still running", job.key, fire.slot)
            return None
        catchup = (job.key, fire.utc) in self._catchups
        self._catchups.discard((job.key, fire.utc))
        log.info(
            "%s: fire for %s (%s)%s", job.key, fire.slot, run_id, " catch-up" if catchup else ""
        )
        try:
            self._count(job.key, FireCount(fires=1, slot=fire.slot.isoformat(timespec="minutes")))
            return self.runner.run(
                job.key,
                job.spec,
                Fire.of_typed(job.typed, fire.utc),
                run_id=run_id,
                origin="catchup" if catchup else "scheduler",
            )
        except Exception:
            log.exception("%s: run failed", job.key)
            return None
        finally:
            with self._running_lock:
                self.running.discard(job.key)
                if self._running_ids.get(job.key) == run_id:
                    del self._running_ids[job.key]

    def _count(self, key: str, count: FireCount) -> None:
        """Update the counters, and write skipped-slot run rows in the same transaction
        (``RunStore.count_fires``: a restart writes a job's missed slots in one commit)."""
        with self._counter_lock:
            self.runner.runs.count_fires(key, count)
            counters = self.counters.setdefault(key, Counters())
            counters.fires += count.fires
            counters.missed += count.missed
            counters.overlap_skipped += count.overlap_skipped

    # -- the loop ----------------------------------------------------------------------------

    async def run_forever(self, *, changed: Callable[[], bool], poll: float = 1.0) -> None:
        """Sleep until the next fire or a change of the applied jobs; fire in worker threads."""
        self.reload()
        tasks: set[asyncio.Task[Any]] = set()
        while True:
            if changed():
                self.reload()
            now = self.clock.now()
            for job, fire in self.due(now):
                task = asyncio.create_task(asyncio.to_thread(self.fire, job, fire))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
            next_at = self.next_at()
            wait = poll if next_at is None else min(poll, (next_at - now).total_seconds())
            await asyncio.sleep(max(wait, 0.0))


def _wall(job: Job, fire: scheduling.FireTime) -> str:
    """The slot as run history stores it (``Fire.wall``: wall-clock minutes in the job's zone)."""
    return Fire.of_typed(job.typed, fire.utc).wall
