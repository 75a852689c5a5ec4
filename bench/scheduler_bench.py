"""10,000 schedules on the embedded scheduler, on the real clock.

Fire lag = when the scheduler hands a fire to a worker minus its scheduled instant (the
scheduler's own delay; executor time is separate). Idle CPU = process CPU time over wall time
in a window with no fires due. Targets: lag p99 < 1 s, idle CPU < 1%. Bounded: the run waits
for at most two minute boundaries (about two minutes).
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from planner_operator.runtime.executors.base import Executors
from planner_operator.runtime.executors.local import LocalOutbox
from planner_operator.runtime.jobrun import JobRunner
from planner_operator.runtime.scheduler import Job, Scheduler
from planner_operator.state.runs import RunStore

JOBS = 10_000


class Recording(Scheduler):
    lags: list[float]

    def fire(self, job: Job, fire: Any) -> Any:
        self.lags.append((datetime.now(UTC) - fire.utc).total_seconds())
        return super().fire(job, fire)


def jobs() -> list[Job]:
    spec: dict[str, Any] = {
        "timezone": "UTC",
        "enabled": True,
        "overlap": "skip",
        "catchup": "none",
        "dst": "vixie",
        "action": {"chat": {"template": "tick {time}", "variables": {}}},
    }
    return [Job(f"bench/jobs/j{i}", {**spec, "schedule": f"{i % 60} * * * *"}) for i in range(JOBS)]


async def measure(tmp: Path) -> dict[str, float]:
    with RunStore(tmp / "runs.db") as runs, LocalOutbox(tmp / "outbox.db") as outbox:
        scheduler = Recording(JobRunner(runs, Executors(outbox, outbox)), jobs)
        scheduler.lags = []
        started, cpu = time.perf_counter(), time.process_time()
        scheduler.reload()
        load_s = time.perf_counter() - started
        load_cpu_s = time.process_time() - cpu
        task = asyncio.create_task(scheduler.run_forever(changed=lambda: False))
        await asyncio.sleep(0.5)
        # idle window: until 2 s before the next fire (at most 20 s)
        next_at = scheduler.next_at()
        assert next_at is not None
        idle_for = min(20.0, (next_at - datetime.now(UTC)).total_seconds() - 2)
        cpu0, wall0 = time.process_time(), time.perf_counter()
        await asyncio.sleep(max(idle_for, 1.0))
        idle_cpu = (time.process_time() - cpu0) / (time.perf_counter() - wall0)
        # firing window: two minute boundaries
        deadline = time.monotonic() + 130
        while time.monotonic() < deadline and len(scheduler.lags) < 2 * JOBS // 60:
            await asyncio.sleep(0.5)
        task.cancel()
        lags = sorted(scheduler.lags)
        drain_until = time.monotonic() + 30  # fires still in their threads, as serve drains
        while scheduler.running and time.monotonic() < drain_until:
            await asyncio.sleep(0.05)
        scheduler.close()
    p99 = lags[int(len(lags) * 0.99) - 1] if lags else float("nan")
    return {
        "jobs": float(JOBS),
        "load_s": load_s,
        "load_cpu_s": load_cpu_s,
        "computations": float(scheduler._next.started),
        "fires": float(len(lags)),
        "lag_p50_ms": lags[len(lags) // 2] * 1000 if lags else float("nan"),
        "lag_p99_ms": p99 * 1000,
        "idle_cpu_pct": idle_cpu * 100,
    }


def run() -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        return asyncio.run(measure(Path(tmp)))


def heap_only() -> tuple[float, float]:
    """(wall, CPU) seconds to build the heap for all jobs, without the fire window."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp)
        with RunStore(path / "runs.db") as runs, LocalOutbox(path / "outbox.db") as outbox:
            scheduler = Scheduler(JobRunner(runs, Executors(outbox, outbox)), jobs)
            started, cpu = time.perf_counter(), time.process_time()
            scheduler.reload()
            return time.perf_counter() - started, time.process_time() - cpu
