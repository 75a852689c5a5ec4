"""Drain vs ingest on the embedded executors, side by side in one run; and lease takeover.

Issue 17 item 12: the worker drained about 500 deliveries/s while ingest stored about 1,150/s, so
a sustained burst built a backlog (52 s to drain after 40 s of load). Measured here, on
``serve`` processes exactly as ``bench/webhook_bench.py`` starts them (uvicorn, signed 1.3 KB
Composio V3 deliveries from wrk, the local outbox as executor):

* **ingest**: wrk at saturation (16 connections) against ``serve`` with the worker off: how fast
  deliveries are verified and committed;
* **drain**: ``serve`` with the worker on, started over an inbox already holding a backlog
  (no HTTP load): how fast the worker works a backlog off;
* **both at once**: wrk at saturation against ``serve`` with its worker for ``LOAD`` seconds:
  the ingest rate, what the worker finished meanwhile, the backlog and its age at the end of
  the load, and how long the rest took to drain. ``/api/inbox`` is sampled every 0.2 s.
* **takeover**: a worker process claims deliveries and hangs in the executor; it is SIGKILLed;
  a second worker (``serve``'s loop, in this process) on the same host: seconds from the kill to
  every one of them done, against the 60 s lease it used to wait out.

Ingest and drain alternate over ``ROUNDS`` rounds and the median round is reported, as the
other benchmarks do, so neighbours on a shared machine disturb both alike.
``python -m bench.drain_bench`` prints JSON and a Markdown section.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from bench import webhook_bench

ROOT = webhook_bench.ROOT
CONNECTIONS = 16
INGEST_SECONDS = 10
BACKLOG = 10_000
LOAD_SECONDS = 20
ROUNDS = 3
TAKEOVER_DELIVERIES = 4  # as many as one worker has slots: each of them mid-run at the kill


def _pending(counts: dict[str, int]) -> int:
    return sum(counts.get(s, 0) for s in ("received", "processing", "failed"))


def _finished(counts: dict[str, int]) -> int:
    return sum(counts.get(s, 0) for s in ("done", "ignored", "dead"))


def _state(url: str) -> dict[str, Any]:
    found: dict[str, Any] = httpx.get(url + "/api/inbox", timeout=30).json()
    return found


def _wait_drained(url: str, timeout: float = 600) -> float:
    started = time.monotonic()
    while _pending(_state(url)["counts"]):
        if time.monotonic() - started > timeout:
            raise RuntimeError("the backlog did not drain")
        time.sleep(0.05)
    return time.monotonic() - started


def _fill(state: Path, count: int) -> None:
    """Store ``count`` deliveries as ingress would (the worker will find them at start)."""
    from planner_operator.core.records import NewDelivery
    from planner_operator.state.inbox import Inbox

    body = webhook_bench.body_bytes()
    with Inbox(state / "inbox.db") as inbox:
        for start in range(0, count, 1000):
            inbox.insert_many(
                [
                    NewDelivery(
                        id=f"composio:backlog_{n}",
                        source="composio",
                        body=body,
                        headers={"x-composio-webhook-version": "V3"},
                    )
                    for n in range(start, min(count, start + 1000))
                ]
            )


def ingest(work: Path, name: str) -> dict[str, Any]:
    with webhook_bench.server("durable", work / name) as url:
        webhook_bench.wrk(url, work, connections=4, seconds=2)  # warm-up
        result = webhook_bench.wrk(url, work, connections=CONNECTIONS, seconds=INGEST_SECONDS)
    return {"rps": result["rps"], "p99_ms": result["p99_ms"], "errors": result["errors"]}


def drain(work: Path, name: str) -> dict[str, Any]:
    state = work / name / "state-worker"
    state.mkdir(parents=True)
    webhook_bench._prepare_state(state)
    _fill(state, BACKLOG)
    with webhook_bench.server("worker", work / name) as url:
        # the worker starts before the server answers: count from the first look
        already = _finished(_state(url)["counts"])
        seconds = _wait_drained(url)
        counts = _state(url)["counts"]
    return {
        "deliveries": BACKLOG,
        "timed": BACKLOG - already,
        "seconds": round(seconds, 2),
        "rate": round((BACKLOG - already) / seconds, 1),
        "done": counts.get("done", 0),
    }


class _Sampler(threading.Thread):
    """Samples ``/api/inbox`` every 0.2 s: finished count, backlog and its age."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.samples: list[tuple[float, int, int, float]] = []
        self.stop = threading.Event()

    def run(self) -> None:
        with httpx.Client(timeout=30) as client:
            while not self.stop.is_set():
                state = client.get(self.url + "/api/inbox").json()
                backlog = state.get("backlog", {})
                self.samples.append(
                    (
                        time.monotonic(),
                        _finished(state["counts"]),
                        _pending(state["counts"]),
                        float(backlog.get("age_seconds", 0.0)),
                    )
                )
                self.stop.wait(0.2)


def both(work: Path) -> dict[str, Any]:
    with webhook_bench.server("worker", work / "both") as url:
        webhook_bench.wrk(url, work, connections=4, seconds=2)  # warm-up
        _wait_drained(url)
        before = _finished(_state(url)["counts"])
        sampler = _Sampler(url)
        sampler.start()
        started = time.monotonic()
        result = webhook_bench.wrk(url, work, connections=CONNECTIONS, seconds=LOAD_SECONDS)
        ended = time.monotonic()
        at_end = _state(url)
        tail = _wait_drained(url)
        sampler.stop.set()
        sampler.join()
    during = _finished(at_end["counts"]) - before
    under_load = [s for s in sampler.samples if started <= s[0] <= ended]
    return {
        "load_seconds": LOAD_SECONDS,
        "ingest_rps": result["rps"],
        "accepted": result["requests"],
        "errors": result["errors"],
        "p99_ms": result["p99_ms"],
        "drained_during_load": during,
        "drain_rate_under_load": round(during / (ended - started), 1),
        "backlog_at_end": _pending(at_end["counts"]),
        "backlog_age_at_end_s": at_end.get("backlog", {}).get("age_seconds"),
        "max_backlog_age_s": max((s[3] for s in under_load), default=0.0),
        "drain_after_load_s": round(tail, 2),
    }


TAKEOVER_CHILD = """
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
)
asyncio.run(worker.run())
"""


def takeover(work: Path) -> dict[str, Any]:
    """SIGKILL a worker mid-run; seconds until a second worker has run what it held."""
    from planner_operator.core.settings import Settings
    from planner_operator.runtime.executors import select
    from planner_operator.runtime.worker import Routes, Worker, WorkerConfig
    from planner_operator.state.inbox import Inbox
    from planner_operator.state.runs import RunStore

    state = work / "takeover"
    state.mkdir()
    webhook_bench._prepare_state(state)
    _fill(state, TAKEOVER_DELIVERIES)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    child = subprocess.Popen([sys.executable, "-c", TAKEOVER_CHILD, str(state)], cwd=ROOT, env=env)
    inbox = Inbox(state / "inbox.db")
    deadline = time.monotonic() + 60
    while inbox.counts().get("processing", 0) < TAKEOVER_DELIVERIES:
        if time.monotonic() > deadline or child.poll() is not None:
            child.kill()
            raise RuntimeError("the worker to be killed never claimed its deliveries")
        time.sleep(0.05)
    time.sleep(0.5)  # well inside the executor calls
    child.send_signal(signal.SIGKILL)
    child.wait()
    killed = time.monotonic()
    settings = Settings.resolve(state_dir=state, env={})
    config = WorkerConfig()
    worker = Worker(
        inbox=inbox,
        routes=Routes(settings),
        runs=RunStore(state / "runs.db"),
        executors=select.from_env(settings, {}),
        config=config,
    )

    async def until_done() -> float:
        task = asyncio.create_task(worker.run())
        try:
            while inbox.counts().get("done", 0) < TAKEOVER_DELIVERIES:
                if time.monotonic() - killed > 2 * config.lease:
                    raise RuntimeError("the deliveries of the killed worker were not taken back")
                await asyncio.sleep(0.005)
            return time.monotonic() - killed
        finally:
            task.cancel()
            await worker.wait_idle(5)

    seconds = asyncio.run(until_done())
    inbox.close()
    return {
        "deliveries": TAKEOVER_DELIVERIES,
        "seconds": round(seconds, 3),
        "lease_s": config.lease,
    }


def run() -> dict[str, Any]:
    if webhook_bench.ensure_wrk() is None:
        return {"skipped": "wrk not installed"}
    results: dict[str, Any] = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": webhook_bench.machine(),
        "load_before": os.getloadavg()[0],
    }
    with tempfile.TemporaryDirectory(prefix="drain-bench-") as tmp:
        work = Path(tmp)
        ingests, drains = [], []
        for n in range(ROUNDS):  # alternate, so a busy neighbour slows both alike
            ingests.append(ingest(work, f"ingest-{n}"))
            drains.append(drain(work, f"drain-{n}"))
        results["ingest"] = _median(ingests, "rps")
        results["drain"] = _median(drains, "rate")
        results["ingest"]["rounds"] = [r["rps"] for r in ingests]
        results["drain"]["rounds"] = [r["rate"] for r in drains]
        results["both"] = both(work)
        results["takeover"] = takeover(work)
    results["load_after"] = os.getloadavg()[0]
    ratio = results["drain"]["rate"] / results["ingest"]["rps"]
    results["drain_to_ingest"] = round(ratio, 2)
    results["targets"] = {
        "drain rate >= ingest rate": ratio >= 1.0,
        "takeover well inside the lease (< 5 s)": results["takeover"]["seconds"] < 5,
        "no errors": results["both"]["errors"] == 0,
    }
    return results


def _median(rounds: list[dict[str, Any]], key: str) -> dict[str, Any]:
    return dict(sorted(rounds, key=lambda r: float(r[key]))[len(rounds) // 2])


def render(r: dict[str, Any]) -> str:
    if "skipped" in r:
        return f"## Drain vs ingest\n\nSkipped: {r['skipped']}.\n"
    i, d, b, t = r["ingest"], r["drain"], r["both"], r["takeover"]
    rounds = " / ".join(f"{a:.0f}: {c:.0f}" for a, c in zip(i["rounds"], d["rounds"], strict=True))
    verdicts = ", ".join(f"{k}: {'met' if v else 'MISSED'}" for k, v in r["targets"].items())
    return f"""## Drain vs ingest (embedded executors)

`bench/drain_bench.py`. Machine: {r["machine"]} (1-min load before: {r["load_before"]:.2f}).
Ingest: wrk, {CONNECTIONS} connections, {INGEST_SECONDS} s, against `serve` with the worker off.
Drain: `serve` with the worker on, started over {d["deliveries"]:,} stored deliveries (local
outbox executor). Alternated over {ROUNDS} rounds (ingest: drain per round: {rounds}); median
shown.

| measure | value |
|---|---|
| ingest, deliveries/s (worker off) | {i["rps"]:.0f} |
| drain, deliveries/s (no HTTP load) | {d["rate"]:.0f} |
| drain / ingest | {r["drain_to_ingest"]:.2f} |
| both at once for {b["load_seconds"]} s: ingest req/s | {b["ingest_rps"]:.0f} |
| both at once: drained meanwhile, deliveries/s | {b["drain_rate_under_load"]:.0f} |
| backlog at the end of the load (age of its oldest, s) | {b["backlog_at_end"]:,} \
({b["backlog_age_at_end_s"]}) |
| drain after the load ended, s | {b["drain_after_load_s"]} |
| takeover after SIGKILL of a worker mid-run, s ({t["deliveries"]} deliveries; lease \
{t["lease_s"]:.0f} s) | {t["seconds"]} |

{verdicts}.
"""


def main() -> None:
    results = run()
    print(json.dumps(results, indent=2))
    print(render(results))


if __name__ == "__main__":
    main()
