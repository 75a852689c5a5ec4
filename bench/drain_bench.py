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

Issue 20 item 2 (``saturation``, ``burst``, ``fixed``), on ``serve`` as it runs by default
(the worker in a child process, ``server/worker_process.py``) beside the worker as a thread:

* **saturation**: the bare endpoint, ingest with the worker off, with the worker thread and with
  the worker process, alternated round by round; wrk's own CPU per round gives the client's
  ceiling (requests per wrk CPU second: wrk is one thread, so that is what it could send);
* **burst**: 60 s at the measured saturation ingest rate of ``serve`` with its worker process,
  the backlog read every 10 s: it must not grow;
* **fixed**: ack latency at half the bare endpoint's maximum, worker process on.

Compared scenarios alternate over ``ROUNDS`` rounds and the median round is reported, as the
other benchmarks do, so neighbours on a shared machine disturb them alike.
``python -m bench.drain_bench`` prints JSON and a Markdown section.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import resource
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
BURST_SECONDS = 60
BURST_SAMPLE = 10  # seconds between backlog readings during the burst
FIXED_SECONDS = 15
SATURATION_KINDS = ("bare", "durable", "worker", "worker-process")


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


def drain(work: Path, name: str, kind: str = "worker-process") -> dict[str, Any]:
    state = work / name / f"state-{kind}"
    state.mkdir(parents=True)
    webhook_bench._prepare_state(state)
    _fill(state, BACKLOG)
    with webhook_bench.server(kind, work / name) as url:
        # count from the first finished delivery: a worker process is still importing when
        # the server first answers, and its start-up is not drain time
        deadline = time.monotonic() + 60
        while not (already := _finished(_state(url)["counts"])):
            if time.monotonic() > deadline:
                raise RuntimeError("the worker never started")
            time.sleep(0.01)
        seconds = _wait_drained(url)
        counts = _state(url)["counts"]
    return {
        "deliveries": BACKLOG,
        "timed": BACKLOG - already,
        "seconds": round(seconds, 2),
        "rate": round((BACKLOG - already) / seconds, 1),
        "done": counts.get("done", 0),
    }


def _pid(url: str) -> int:
    """The pid of the bench server listening at ``url`` (its command line names the port)."""
    port = url.rsplit(":", 1)[1]
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                command = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if port.encode() in command and any(c.startswith(b"serve-") for c in command):
                return int(entry.name)
    raise RuntimeError(f"no server process for {url}")


def _cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _measured(url: str, work: Path, **options: Any) -> dict[str, Any]:
    """One wrk run, with wrk's own CPU and the server's (whole cores) over it."""
    pid = _pid(url)
    client, server = _children_cpu(), _cpu(pid)
    result = webhook_bench.wrk(url, work, **options)
    seconds = float(options["seconds"])
    result["wrk_cpu"] = round((_children_cpu() - client) / seconds, 3)
    result["server_cpu"] = round((_cpu(pid) - server) / seconds, 3)
    return result


def saturation(work: Path) -> dict[str, Any]:
    """Every kind at saturation, alternated; for kinds with a worker, what it drained meanwhile."""
    samples: dict[str, list[dict[str, Any]]] = {kind: [] for kind in SATURATION_KINDS}
    with contextlib.ExitStack() as stack:
        urls = {kind: stack.enter_context(webhook_bench.server(kind, work)) for kind in samples}
        for url in urls.values():
            webhook_bench.wrk(url, work, connections=4, seconds=2)  # warm-up
        for _ in range(ROUNDS):
            for kind, url in urls.items():
                worker = kind.startswith("worker")
                if worker:
                    _wait_drained(url)
                    before = _finished(_state(url)["counts"])
                started = time.monotonic()
                result = _measured(url, work, connections=CONNECTIONS, seconds=INGEST_SECONDS)
                if worker:
                    state = _state(url)
                    elapsed = time.monotonic() - started
                    result["drained_per_s"] = round((_finished(state["counts"]) - before) / elapsed)
                    result["backlog_at_end"] = _pending(state["counts"])
                samples[kind].append(result)
    out: dict[str, Any] = {}
    for kind, runs in samples.items():
        middle = dict(_median(runs, "rps"))
        middle["rounds_rps"] = [r["rps"] for r in runs]
        out[kind] = middle
    bare = out["bare"]
    out["client_ceiling_rps"] = round(bare["rps"] / max(bare["wrk_cpu"], 1e-3))
    return out


def burst(work: Path, rate: float) -> dict[str, Any]:
    """``BURST_SECONDS`` at ``rate`` against serve with its worker process; backlog every 10 s."""
    with webhook_bench.server("worker-process", work / "burst") as url:
        webhook_bench.wrk(url, work, connections=4, seconds=2)  # warm-up
        _wait_drained(url)
        readings: list[dict[str, float]] = []
        started = time.monotonic()
        stop = threading.Event()

        def sample() -> None:
            while not stop.wait(BURST_SAMPLE - (time.monotonic() - started) % BURST_SAMPLE):
                state = _state(url)
                readings.append(
                    {
                        "t": round(time.monotonic() - started),
                        "backlog": _pending(state["counts"]),
                        "age_s": float(state.get("backlog", {}).get("age_seconds", 0.0)),
                        "done": _finished(state["counts"]),
                    }
                )

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        result = webhook_bench.wrk(
            url, work, connections=CONNECTIONS, seconds=BURST_SECONDS, rate=rate
        )
        stop.set()
        sampler.join()
        tail = _wait_drained(url)
    first = readings[0]["backlog"] if readings else 0
    last = readings[-1]["backlog"] if readings else 0
    return {
        "offered_rate": rate,
        "rps": result["rps"],
        "p99_ms": result["p99_ms"],
        "errors": result["errors"],
        "readings": readings,
        "drain_after_s": round(tail, 2),
        # "does not grow": the last reading holds no more than the first, or than 1 s of ingest
        "grows": last > max(first, result["rps"]),
        # wrk paces each connection with a fixed delay, so slow answers lower the rate it sends:
        # a burst below 90% of the offered rate did not test the measured ingest rate
        "at_offered_rate": result["rps"] >= 0.9 * rate,
    }


def fixed(work: Path, rate: float) -> dict[str, Any]:
    """Ack latency at ``rate`` (half the bare maximum) with the worker process on."""
    with webhook_bench.server("worker-process", work / "fixed") as url:
        webhook_bench.wrk(url, work, connections=4, seconds=2)
        runs = [
            webhook_bench.wrk(url, work, connections=8, seconds=FIXED_SECONDS, rate=rate)
            for _ in range(ROUNDS)
        ]
    middle = dict(sorted(runs, key=lambda r: float(r["p99_ms"]))[len(runs) // 2])
    middle["rounds_p99_ms"] = [r["p99_ms"] for r in runs]
    return middle


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


def both(work: Path, kind: str = "worker-process") -> dict[str, Any]:
    with webhook_bench.server(kind, work / f"both-{kind}") as url:
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
        sat = saturation(work)
        results["saturation"] = sat
        drains = [drain(work, f"drain-{n}") for n in range(ROUNDS)]
        results["drain"] = _median(drains, "rate")
        results["drain"]["rounds"] = [r["rate"] for r in drains]
        results["drain_thread"] = drain(work, "drain-thread", kind="worker")
        results["both"] = both(work)
        results["load_mid"] = os.getloadavg()[0]
        results["burst"] = burst(work, round(sat["worker-process"]["rps"], -1))
        results["fixed"] = fixed(work, round(sat["bare"]["rps"] * 0.5, -1))
        results["takeover"] = takeover(work)
    results["load_after"] = os.getloadavg()[0]
    bare, ingest = sat["bare"]["rps"], sat["durable"]["rps"]
    with_worker = sat["worker-process"]["rps"]
    results["drain_to_ingest"] = round(results["drain"]["rate"] / with_worker, 2)
    results["with_worker_over_bare"] = round(with_worker / bare, 3)
    results["durable_over_bare"] = round(ingest / bare, 3)
    results["targets"] = {
        "ingest with the worker >= 85% of bare": with_worker >= 0.85 * bare,
        "drain rate >= ingest rate (with the worker)": results["drain_to_ingest"] >= 1.0,
        "drained meanwhile >= ingested, at saturation": sat["worker-process"]["drained_per_s"]
        >= with_worker,
        f"backlog does not grow over a {BURST_SECONDS} s burst at the measured ingest rate": (
            not results["burst"]["grows"] and results["burst"]["at_offered_rate"]
        ),
        "ack p99 < 20 ms at half the bare maximum, worker on": results["fixed"]["p99_ms"] < 20,
        "load client not the bottleneck (ceiling >= 2x bare)": sat["client_ceiling_rps"]
        >= 2 * bare,
        "takeover well inside the lease (< 5 s)": results["takeover"]["seconds"] < 5,
        "no errors": all(
            r.get("errors", 0) == 0
            for r in (results["both"], results["burst"], results["fixed"], *sat.values())
            if isinstance(r, dict)
        ),
    }
    return results


def _median(rounds: list[dict[str, Any]], key: str) -> dict[str, Any]:
    return dict(sorted(rounds, key=lambda r: float(r[key]))[len(rounds) // 2])


HEADER = (
    "| scenario | req/s | of bare | p99 ms | drained/s meanwhile | backlog at end | server CPU "
    "| wrk CPU | rounds req/s |\n|---|---|---|---|---|---|---|---|---|"
)
LABELS = {
    "bare": "bare FastAPI 202",
    "durable": "durable ingest, worker off",
    "worker": "durable ingest + worker thread (`PLANNER_WORKER_PROCESS=0`)",
    "worker-process": "durable ingest + worker process (`serve`'s default)",
}


def render(r: dict[str, Any]) -> str:
    if "skipped" in r:
        return f"## Webhook drain vs ingest\n\nSkipped: {r['skipped']}.\n"
    sat, d, b, t, u, f = (
        r[k] for k in ("saturation", "drain", "both", "takeover", "burst", "fixed")
    )
    rows = []
    for kind, label in LABELS.items():
        x = sat[kind]
        rounds = " / ".join(f"{v:.0f}" for v in x["rounds_rps"])
        drained = x.get("drained_per_s", "-")
        rows.append(
            f"| {label} | {x['rps']:.0f} | {x['rps'] / sat['bare']['rps']:.0%} | "
            f"{x['p99_ms']:.1f} | {drained} | {x.get('backlog_at_end', '-')} | "
            f"{x['server_cpu']:.2f} | {x['wrk_cpu']:.2f} | {rounds} |"
        )
    readings = " / ".join(
        f"{x['t']} s: {x['backlog']:,} ({x['age_s']:.1f} s)" for x in u["readings"]
    )
    verdicts = "\n".join(f"- {k}: **{'met' if v else 'MISSED'}**" for k, v in r["targets"].items())
    return f"""## Webhook drain vs ingest (issue 17 item 12, issue 20 item 2)

`python -m bench.drain_bench` (also in `make bench`). Machine: {r["machine"]}; 1-min load
{r["load_before"]:.2f} before, {r["load_mid"]:.2f} midway, {r["load_after"]:.2f} after.
Signed 1.3 KB Composio V3 deliveries from wrk (one thread, {CONNECTIONS} connections) against
`serve`-like uvicorn processes, local outbox executor. Saturation: {INGEST_SECONDS} s rounds,
the kinds alternated over {ROUNDS} rounds, median shown; CPU in cores over the round
(the worker process's own CPU is not in the server column).

{HEADER}
{chr(10).join(rows)}

Load client's ceiling: {sat["client_ceiling_rps"]:,} req/s per wrk CPU second (bare round:
{sat["bare"]["rps"]:.0f} req/s for {sat["bare"]["wrk_cpu"]:.2f} of a core).

| measure | value |
|---|---|
| drain of {d["deliveries"]:,} stored deliveries, worker process, deliveries/s (rounds) | \
{d["rate"]:.0f} ({" / ".join(f"{v:.0f}" for v in d["rounds"])}) |
| the same, worker thread | {r["drain_thread"]["rate"]:.0f} |
| drain / ingest with the worker | {r["drain_to_ingest"]:.2f} |
| both at once for {b["load_seconds"]} s (worker process): ingest req/s, drained/s | \
{b["ingest_rps"]:.0f}, {b["drain_rate_under_load"]:.0f} |
| backlog at the end of that load (age of its oldest, s); drained after, s | \
{b["backlog_at_end"]:,} ({b["backlog_age_at_end_s"]}); {b["drain_after_load_s"]} |
| {BURST_SECONDS} s burst offered at {u["offered_rate"]:.0f}/s: answered req/s, p99 ms | \
{u["rps"]:.0f}, {u["p99_ms"]:.1f} |
| backlog every {BURST_SAMPLE} s of the burst (age of its oldest) | {readings} |
| fixed rate {f["rate"]:.0f}/s (half the bare maximum), worker process: p99 ms (rounds) | \
{f["p99_ms"]:.1f} ({" / ".join(f"{v:.1f}" for v in f["rounds_p99_ms"])}) |
| takeover after SIGKILL of a worker mid-run, s ({t["deliveries"]} deliveries; lease \
{t["lease_s"]:.0f} s) | {t["seconds"]} |

{verdicts}
"""


def main() -> None:
    results = run()
    print(json.dumps(results, indent=2))
    print(render(results))
    if "--write" in sys.argv[1:]:
        write(results)


def write(results: dict[str, Any]) -> None:
    """Put this section in place in BENCHMARKS.md and its figures in bench/figures.json."""
    path = ROOT / "BENCHMARKS.md"
    head, *parts = path.read_text(encoding="utf-8").split("\n## ")
    section = render(results).removeprefix("## ")
    kept = [p if not p.startswith("Webhook drain vs ingest") else section for p in parts]
    if section not in kept:
        kept.append(section)
    path.write_text("\n## ".join([head, *kept]), encoding="utf-8")
    figures_path = ROOT / "bench" / "figures.json"
    figures = json.loads(figures_path.read_text(encoding="utf-8"))
    sat = results["saturation"]
    figures["drain"] = {
        "bare_rps": sat["bare"]["rps"],
        "ingest_worker_off_rps": sat["durable"]["rps"],
        "ingest_worker_thread_rps": sat["worker"]["rps"],
        "ingest_worker_process_rps": sat["worker-process"]["rps"],
        "with_worker_over_bare": results["with_worker_over_bare"],
        "drain_rps": results["drain"]["rate"],
        "drain_to_ingest": results["drain_to_ingest"],
        "fixed_rate_p99_ms": results["fixed"]["p99_ms"],
        "burst_backlog": [x["backlog"] for x in results["burst"]["readings"]],
        "takeover_s": results["takeover"]["seconds"],
        "load": [results["load_before"], results["load_after"]],
    }
    figures_path.write_text(json.dumps(figures, indent=2, sort_keys=True) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
