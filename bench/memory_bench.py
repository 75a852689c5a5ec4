"""Memory of ``serve`` with 10,000 jobs and 10,000 triggers applied, and over 100,000 deliveries.

The state is the 2,000-file reconcile benchmark's (``reconcile_bench.run(2000, keep=...)``:
10,000 jobs and 10,000 triggers applied to the embedded backends), plus one Composio-routed
trigger for the deliveries. ``planner-operator serve`` runs on it as a user would start it (the
embedded scheduler builds its heap of 10,000 jobs, the webhook worker runs the local
executors, ``PLANNER_GC_TUNE=1``); RSS is read from ``/proc/<pid>/status`` after startup, after
a read of the status API, and after each round of signed Composio deliveries from wrk
(``webhook_bench``) until 100,000 were acknowledged. Targets (issue 20): RSS < 150 MB with the
resources applied; growth over the deliveries < 20 MB.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from bench import reconcile_bench, serving, webhook_bench

ROOT = Path(__file__).resolve().parent.parent
DELIVERIES = 100_000
ROUND_SECONDS = 20
CONNECTIONS = 8
RATE = 1500.0  # offered deliveries/s (wrk paces each connection; the server may take fewer)
TOKEN = "bench-memory-api-token-0123456789abcdef"


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


@contextlib.contextmanager
def serve(state: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("INNGEST_", "PLANNER_"))}
    env.update(
        COMPOSIO_WEBHOOK_SECRET=webhook_bench.SECRET,
        PLANNER_GC_TUNE="1",
        PLANNER_API_TOKEN=TOKEN,
        PYTHONPATH=str(ROOT),
    )
    command = [str(Path(sys.executable).parent / "planner-operator"), "serve"]
    proc = subprocess.Popen(
        [*command, "--port", str(port), "--state-dir", str(state)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        serving.wait_healthy(proc, url, what="serve", within=120)
        yield url, proc
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def run(state: Path | None = None) -> dict[str, Any]:
    """``state``: one the 2,000-file reconcile benchmark left (else it is made here)."""
    wrk = webhook_bench.ensure_wrk()
    with tempfile.TemporaryDirectory() as tmp:
        if state is None:
            state = Path(tmp) / "state"
            reconcile_bench.run(2000, keep=state)  # 10,000 jobs + 10,000 triggers applied
        webhook_bench._prepare_state(state)  # + the trigger the deliveries are routed to
        with serve(state) as (url, proc):
            time.sleep(5)  # the scheduler's heap, the worker's first poll
            started = rss_mb(proc.pid)
            status = httpx.get(
                url + "/api/jobs", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=120
            )
            after_status = rss_mb(proc.pid)
            curve: list[tuple[int, float]] = [(0, after_status)]
            delivered = 0
            if wrk is not None:
                work = Path(tmp) / "wrk"
                work.mkdir()
                while delivered < DELIVERIES:
                    result = webhook_bench.wrk(
                        url,
                        work,
                        connections=CONNECTIONS,
                        seconds=ROUND_SECONDS,
                        rate=RATE,  # also bounds the ids signed per round
                    )
                    delivered += int(result["requests"]) - int(result["errors"])
                    curve.append((delivered, rss_mb(proc.pid)))
            time.sleep(5)  # let the worker drain what is left
            final = rss_mb(proc.pid)
    growth = final - after_status
    return {
        "status_code": status.status_code,
        "rss_started_mb": started,
        "rss_after_status_mb": after_status,
        "rss_final_mb": final,
        "deliveries": delivered,
        "growth_mb": growth,
        "curve": curve,
        "ok_rss": started < 150,
        "ok_growth": delivered >= DELIVERIES and growth < 20,
        "wrk": wrk is not None,
    }


if __name__ == "__main__":
    print(run())
