"""Webhook ingest benchmark: durable verified ingest beside a bare 202 endpoint, with wrk.

Every server is its own uvicorn process with the same settings (access log off, app logging at
WARNING), on loopback; wrk (the Debian package) drives it with signed 1.3 KB Composio V3
deliveries, each with a unique ``webhook-id`` (signatures pre-computed, so the client does no
crypto). Every server freezes its startup heap for the garbage collector
(``webhooks.tune_gc``, as ``serve`` should). Measured in one run:

* saturation (closed loop, 16 connections): the bare FastAPI endpoint that only returns 202;
  durable ingest (verify, parse, group-commit to the SQLite WAL inbox, then 202) with the worker
  off; the same with the inbox in PostgreSQL (``bench.pg``, ``PLANNER_DATABASE_URL``); and the
  SQLite one with the in-process worker running the local executors (what ``serve`` does).
* latency at a fixed lower rate (wrk's ``delay()`` paces each connection; half the durable
  saturation rate): bare, durable, and durable while every executor run sleeps 30 s (the worker
  holds all its slots throughout): acknowledgements must not wait for executors.

Scenarios that are compared run alternately, three rounds each, and the median round is
reported: neighbours on a shared machine then disturb every scenario alike.

Targets (the issue): durable throughput >= 60% of bare, p99 < 20 ms, ack latency unaffected by
slow executors. ``run()`` returns the figures; ``python -m bench.webhook_bench`` prints them.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from bench import pg, serving

ROOT = Path(__file__).resolve().parent.parent
SECRET = "whsec_benchmarkSecretForComposioDeliveries00"
TRIGGER_ID = "ti_bench0001"
KEY = "bench-agent/triggers/new-mail"
SATURATION_CONNECTIONS = 16
DURATION = 10
FIXED_DURATION = 15
ROUNDS = 3
EXECUTOR_SECONDS = 30.0

LUA = r"""
local entries, n, i = {}, 0, 0
local body, stamp, path
function setup(thread)
  counter = (counter or 0) + 1
  thread:set("tid", counter - 1)
end
function init(args)
  path, stamp, nthreads, delay_ms = args[1], args[2], tonumber(args[3]), tonumber(args[4])
  body = io.open(args[5]):read("*a")
  local k = 0
  for line in io.lines(args[6]) do
    if k % nthreads == tid then
      local id, sig = line:match("^(%S+) (%S+)$")
      n = n + 1
      entries[n] = {id, sig}
    end
    k = k + 1
  end
end
function request()
  i = i % n + 1
  local e = entries[i]
  return wrk.format("POST", path, {
    ["content-type"] = "application/json", ["webhook-id"] = e[1],
    ["webhook-timestamp"] = stamp, ["webhook-signature"] = e[2],
    ["x-composio-webhook-version"] = "V3"}, body)
end
function delay()
  return delay_ms
end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "WRKJSON {\"requests\":%d,\"duration_us\":%d,\"connect\":%d,\"read\":%d,\"write\":%d," ..
    "\"status\":%d,\"timeout\":%d,\"p50\":%d,\"p90\":%d,\"p99\":%d,\"p999\":%d,\"max\":%d," ..
    "\"mean\":%f}\n", summary.requests, summary.duration, e.connect, e.read, e.write, e.status,
    e.timeout, latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency:percentile(99.9), latency.max, latency.mean))
end
"""


# -- servers (run as subprocesses: python -m bench.webhook_bench serve-KIND PORT STATE) --------


def body_bytes() -> bytes:
    """A realistic 1.3 KB Composio V3 Gmail delivery."""
    meta = {"log_id": "log_bench", "trigger_slug": "GMAIL_NEW_GMAIL_MESSAGE",
            "trigger_id": TRIGGER_ID, "connected_account_id": "ca_bench",
            "auth_config_id": "ac_bench", "user_id": "user-1"}  # fmt: skip
    data = {"message_id": "19a3f2c7d5e8b041", "thread_id": "19a3f2c7d5e8b041",
            "subject": "Senior Python role: interview next week?",
            "sender": "Jane Recruiter <jane@talent.example.com>", "to": "me@example.com",
            "label_ids": ["UNREAD", "IMPORTANT", "INBOX"], "message_text": ""}  # fmt: skip
    envelope = {"id": "msg_bench", "timestamp": "2026-11-20T10:29:00.000Z",
                "type": "composio.trigger.message", "metadata": meta, "data": data}  # fmt: skip
    filler = "Hi, I came across your profile and think you would be a great fit. " * 30
    data["message_text"] = filler[: 1300 - len(json.dumps(envelope).encode())]
    return json.dumps(envelope).encode()


def _settings(state: Path, database_url: str | None) -> Any:
    from planner_operator.core.settings import Settings

    at = Settings.at(state)
    return Settings(at.state_dir, at.state_db, at.ledger_db, database_url=database_url)


def _serve(kind: str, port: int, state: Path, database_url: str | None = None) -> None:
    import uvicorn
    from fastapi import FastAPI, Response

    from planner_operator.runtime.executors.base import Executors
    from planner_operator.server import webhooks
    from planner_operator.server.app import create_app

    if kind == "bare":
        app = FastAPI()

        @app.post("/webhooks/composio")
        async def bare() -> Response:
            return Response(status_code=202)

    else:
        settings = _settings(state, database_url)
        env = {
            "COMPOSIO_WEBHOOK_SECRET": SECRET,
            "PLANNER_WORKER": "0" if kind == "durable" else "1",
        }
        executors: Executors | None = None
        if kind == "slow":
            sleeper = _Sleeper()
            executors = Executors(chat=sleeper, workflow=sleeper)
        # "worker-process": the worker as serve runs it by default, a child process
        app = create_app(
            settings, env, executors=executors, worker_process=kind == "worker-process"
        )
    webhooks.tune_gc()  # every server alike, as `serve` does
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


class _Sleeper:
    """An executor whose every run takes EXECUTOR_SECONDS (a slow agent platform)."""

    def start_thread(self, *, agent: str, message: str, context: Any) -> str:
        time.sleep(EXECUTOR_SECONDS)
        return f"thr_{context.get('run_key')}"

    def run(self, *, workflow: str, input: Any, context: Any) -> Any:
        time.sleep(EXECUTOR_SECONDS)
        return {}


def _prepare_state(state: Path, database_url: str | None = None) -> None:
    from planner_operator.core.records import OwnedEntry
    from planner_operator.state import open as state_open

    spec = {
        "toolkit": "gmail",
        "event": "GMAIL_NEW_GMAIL_MESSAGE",
        "connected_account": "ca_bench",
        "config": {},
        "enabled": True,
        "action": {"chat": {"template": "New email from {sender}: {subject}", "variables": {}}},
    }
    with state_open.ledger(_settings(state, database_url)) as ledger:
        ledger.record(
            OwnedEntry(
                key=KEY,
                kind="trigger",
                backend="composio",
                remote_id=TRIGGER_ID,
                spec_hash="bench",
                spec=spec,
            )
        )


@contextlib.contextmanager
def server(kind: str, workdir: Path, database_url: str | None = None) -> Iterator[str]:
    """``kind`` served by its own process; the state in PostgreSQL at ``database_url`` if set."""
    state = workdir / f"state-{kind}"
    state.mkdir(parents=True, exist_ok=True)
    _prepare_state(state, database_url)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("INNGEST_", "PLANNER_"))}
    env["PYTHONPATH"] = str(ROOT)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bench.webhook_bench",
            f"serve-{kind}",
            str(port),
            str(state),
            *([database_url] if database_url else []),
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        serving.wait_healthy(proc, url, what=f"{kind} server", within=60, any_answer=True)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# -- wrk ----------------------------------------------------------------------------------


def ensure_wrk() -> str | None:
    """wrk's path, installing the Debian package once if it is missing and we may."""
    found = shutil.which("wrk")
    if found or not shutil.which("apt-get") or os.geteuid() != 0:
        return found
    for step in (["install"], ["update"], ["install"]):  # install; if that fails, update first
        command = ["apt-get", "-qq", *step] + (["-y", "wrk"] if step == ["install"] else [])
        try:
            subprocess.run(command, timeout=600, check=False, capture_output=True)
        except (OSError, subprocess.TimeoutExpired):
            return None
        if shutil.which("wrk"):
            break
    return shutil.which("wrk")


def wrk(
    url: str, workdir: Path, *, connections: int, seconds: int, rate: float | None = None
) -> dict[str, Any]:
    """One wrk run with fresh signed ids; latency figures in ms, throughput in requests/s."""
    from planner_operator.server.signatures import sign_composio

    body = body_bytes()
    stamp = int(time.time())
    expected = int((rate or 8000) * (seconds + 5) * 1.2)
    nonce = os.urandom(4).hex()
    ids = workdir / f"ids-{nonce}.txt"
    with open(ids, "w") as out:
        for n in range(expected):
            msg_id = f"msg_{nonce}_{n}"
            out.write(f"{msg_id} {sign_composio(SECRET, msg_id, stamp, body)[0:]}\n")
    (workdir / "body.json").write_bytes(body)
    script = workdir / "deliver.lua"
    script.write_text(LUA)
    delay = 0 if rate is None else int(1000 * connections / rate)
    args = ["/webhooks/composio", str(stamp), "1", str(delay), str(workdir / "body.json"), str(ids)]
    proc = subprocess.run(
        [
            "wrk",
            "-t1",
            f"-c{connections}",
            f"-d{seconds}s",
            "--timeout",
            "10s",
            "-s",
            str(script),
            url,
            "--",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=seconds + 120,
        check=False,
    )
    ids.unlink()
    line = next((x for x in proc.stdout.splitlines() if x.startswith("WRKJSON ")), None)
    if line is None:
        raise RuntimeError(f"wrk failed: {proc.stdout[-500:]} {proc.stderr[-500:]}")
    raw = json.loads(line[len("WRKJSON ") :])
    non_2xx = 0
    for text in proc.stdout.splitlines():
        if "Non-2xx or 3xx responses:" in text:
            non_2xx = int(text.split(":")[1])
    return {
        "rps": round(raw["requests"] / (raw["duration_us"] / 1e6), 1),
        "requests": raw["requests"],
        "p50_ms": raw["p50"] / 1000,
        "p90_ms": raw["p90"] / 1000,
        "p99_ms": raw["p99"] / 1000,
        "p999_ms": raw["p999"] / 1000,
        "max_ms": raw["max"] / 1000,
        "errors": raw["connect"] + raw["read"] + raw["write"] + raw["timeout"] + non_2xx,
        "connections": connections,
        "rate": rate,
    }


def machine() -> str:
    import platform

    cpu = platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    wrk_version = subprocess.run(["wrk", "-v"], capture_output=True, text=True, check=False)
    return (
        f"{cpu}, {os.cpu_count()} cores, {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}, {(wrk_version.stdout or '').split(' [')[0].strip()}"
    )


def _inbox_state(url: str) -> dict[str, Any]:
    state: dict[str, Any] = httpx.get(url + "/api/inbox", timeout=10).json()
    return state


def alternate(
    servers: dict[str, str], work: Path, rounds: int, **options: Any
) -> dict[str, dict[str, Any]]:
    """Run wrk on each server in turn, ``rounds`` times; per server, the median round.

    Other processes on the machine come and go; alternating makes them hit every scenario
    alike, and the median round (by throughput, or by p99 at a fixed rate) ignores one outlier.
    """
    samples: dict[str, list[dict[str, Any]]] = {name: [] for name in servers}
    for url in servers.values():
        wrk(url, work, connections=4, seconds=2)  # warm-up
    for _ in range(rounds):
        for name, url in servers.items():
            samples[name].append(wrk(url, work, **options))
    out = {}
    for name, runs in samples.items():
        key = "p99_ms" if options.get("rate") else "rps"
        middle = sorted(runs, key=lambda r: float(r[key]))[len(runs) // 2]
        out[name] = {
            **middle,
            "rounds_rps": [r["rps"] for r in runs],
            "rounds_p99_ms": [r["p99_ms"] for r in runs],
        }
    return out


def run() -> dict[str, Any]:
    """Run every scenario; ``{"skipped": "wrk not installed"}`` when wrk can't be had."""
    if ensure_wrk() is None:
        return {"skipped": "wrk not installed"}
    with pg.cluster() as cluster:
        if cluster is None:
            return _run(None)
        with pg.schema(cluster) as url:
            return _run(url)


def _run(database_url: str | None) -> dict[str, Any]:
    results: dict[str, Any] = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "load_before": os.getloadavg()[0],
    }
    with tempfile.TemporaryDirectory(prefix="webhook-bench-") as tmp:
        work = Path(tmp)
        sat = {"connections": SATURATION_CONNECTIONS, "seconds": DURATION}
        if database_url:
            results["postgres"] = pg.description(database_url)
        with contextlib.ExitStack() as stack:
            urls = {
                "bare": stack.enter_context(server("bare", work)),
                "durable": stack.enter_context(server("durable", work)),
            }
            if database_url:
                urls["durable_pg"] = stack.enter_context(server("durable", work, database_url))
            results.update(alternate(urls, work, ROUNDS, **sat))
            for name in urls.keys() - {"bare"}:
                state = _inbox_state(urls[name])
                accepted = state["ingress"].get("accepted", 0)
                batch = round(accepted / max(1, state["batches"]), 1)
                results[name]["group_commit_batch"] = batch
                results[name]["stored"] = sum(state["counts"].values())
                results[name]["accepted"] = accepted
        with server("worker", work) as url:
            wrk(url, work, connections=4, seconds=2)
            results["durable_with_worker"] = wrk(url, work, **sat)
        rate = round(results["durable"]["rps"] * 0.5, -1)
        fixed = {"connections": 8, "seconds": FIXED_DURATION, "rate": rate}
        with contextlib.ExitStack() as stack:
            urls = {
                name: stack.enter_context(server(name, work))
                for name in ("bare", "durable", "slow")
            }
            if database_url:
                urls["durable_pg"] = stack.enter_context(server("durable", work, database_url))
            runs = alternate(urls, work, ROUNDS, **fixed)
            runs["slow"]["inbox"] = _inbox_state(urls["slow"])["counts"]
            runs["slow"]["executor_seconds"] = EXECUTOR_SECONDS
        results["bare_fixed_rate"] = runs["bare"]
        results["durable_fixed_rate"] = runs["durable"]
        results["slow_executors_fixed_rate"] = runs["slow"]
        if database_url:
            results["durable_pg_fixed_rate"] = runs["durable_pg"]
    results["load_after"] = os.getloadavg()[0]
    ratio = results["durable"]["rps"] / results["bare"]["rps"]
    results["throughput_ratio"] = round(ratio, 3)
    if database_url:
        results["pg_ratio_bare"] = round(results["durable_pg"]["rps"] / results["bare"]["rps"], 3)
        results["pg_ratio_sqlite"] = round(
            results["durable_pg"]["rps"] / results["durable"]["rps"], 3
        )
    results["targets"] = {
        "throughput >= 60% of bare": ratio >= 0.6,
        "p99 < 20 ms at fixed rate": results["durable_fixed_rate"]["p99_ms"] < 20,
        "p99 < 20 ms at saturation": results["durable"]["p99_ms"] < 20,
        "ack p99 with 30 s executors < 20 ms": results["slow_executors_fixed_rate"]["p99_ms"] < 20,
        "ack p99 with 30 s executors within 1.5x of fast": results["slow_executors_fixed_rate"][
            "p99_ms"
        ]
        <= 1.5 * max(results["durable_fixed_rate"]["p99_ms"], 1.0),
        "no errors or non-2xx": all(
            results[k]["errors"] == 0
            for k in results
            if isinstance(results[k], dict) and "errors" in results[k]
        ),
    }
    return results


def render(results: dict[str, Any]) -> str:
    """A Markdown section for BENCHMARKS.md."""
    if "skipped" in results:
        return f"## Webhook ingest\n\nSkipped: {results['skipped']}.\n"
    rows = []
    for name, label in (
        ("bare", "bare FastAPI 202"),
        ("durable", "durable verified ingest (worker off)"),
        ("durable_pg", "durable ingest, inbox in PostgreSQL (worker off)"),
        ("durable_with_worker", "durable ingest + worker (local executors)"),
        ("bare_fixed_rate", "bare, fixed rate"),
        ("durable_fixed_rate", "durable, fixed rate"),
        ("durable_pg_fixed_rate", "durable PostgreSQL, fixed rate"),
        ("slow_executors_fixed_rate", "durable, fixed rate, every executor run 30 s"),
    ):
        if name not in results:
            continue
        r = results[name]
        rounds = " / ".join(
            f"{a:.0f}: {b:.1f}"
            for a, b in zip(r.get("rounds_rps", []), r.get("rounds_p99_ms", []), strict=True)
        )
        rows.append(
            f"| {label} | {r['connections']} | {r['rate'] or 'max'} | {r['rps']:.0f} | "
            f"{r['p50_ms']:.2f} | {r['p99_ms']:.2f} | {r['max_ms']:.1f} | {r['errors']} | "
            f"{rounds or '-'} |"
        )
    verdicts = ", ".join(f"{k}: {'met' if v else 'MISSED'}" for k, v in results["targets"].items())
    postgres = ""
    if "postgres" in results:
        postgres = (
            f" PostgreSQL ({results['postgres']}): {results['pg_ratio_bare']:.0%} of bare, "
            f"{results['pg_ratio_sqlite']:.0%} of SQLite; average batch "
            f"{results['durable_pg']['group_commit_batch']}."
        )
    return (
        "## Webhook ingest\n\n"
        f"Machine: {results['machine']} (1-min load before: {results['load_before']:.2f}).\n"
        "Signed 1.3 KB Composio V3 deliveries, unique ids, wrk -t1 on loopback; one uvicorn "
        "process per server (access log off). Latency in ms; compared scenarios ran alternately, "
        "three rounds each, the median round shown.\n\n"
        "| scenario | conns | rate | req/s | p50 | p99 | max | errors | rounds (req/s: p99) |\n"
        "|---|---|---|---|---|---|---|---|---|\n"
        + "\n".join(rows)
        + f"\n\nDurable/bare throughput: {results['throughput_ratio']:.0%}; average group-commit "
        f"batch {results['durable']['group_commit_batch']} deliveries.{postgres} {verdicts}.\n"
    )


def main() -> None:
    if len(sys.argv) in (4, 5) and sys.argv[1].startswith("serve-"):
        url = sys.argv[4] if len(sys.argv) == 5 else None
        _serve(sys.argv[1].removeprefix("serve-"), int(sys.argv[2]), Path(sys.argv[3]), url)
        return
    results = run()
    print(json.dumps(results, indent=2))
    print(render(results))


if __name__ == "__main__":
    main()
