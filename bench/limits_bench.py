"""Issue 17's closing figures for items 2 and 9, measured on a real ``serve`` process.

* Item 2, held connections: one client opens 2,000 connections and holds them idle or
  half-sent (nothing; half a request line; headers with no end; complete headers of a 500-byte
  body that never comes), with the server's default limits and a 1,024 open-files soft limit,
  then sends 1,000 valid signed deliveries on fresh connections in waves of 25. Reported: the
  deliveries' acknowledgement latency, how many held connections the server closed (its header
  and body timeouts), and the log lines the flood caused.
* Item 9, big bodies: 20 concurrent 50 MB bodies (half with a ``Content-Length``, half
  chunked) to ``POST /api/triggers/{agent}/{trigger}/test``; reported: the server's peak RSS
  growth (``VmHWM`` after minus ``VmRSS`` before) and the inbox file's growth.

The harnesses are ``tests/support/floods.py``, shared with the slow tests that assert the
targets (``tests/server/test_connections.py``, ``tests/server/test_body_caps.py``).
``python -m bench.limits_bench`` prints the section; ``make bench`` writes it to BENCHMARKS.md.
"""

from __future__ import annotations

import os
import platform
import tempfile
from pathlib import Path
from typing import Any

from tests.support import floods

HELD, VALID = 2000, 1000
SENDERS, SIZE = 20, 50 * 1024 * 1024


def machine() -> str:
    cpu = platform.machine()
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    memory = "?"
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            memory = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    return f"{cpu}, {os.cpu_count()} cores, {memory} RAM, {platform.system()} {platform.release()}"


def run() -> dict[str, Any]:
    results: dict[str, Any] = {"machine": machine(), "load_before": os.getloadavg()[0]}
    with tempfile.TemporaryDirectory(prefix="bench-held-") as work:
        held = floods.held_connections(
            Path(work), held=HELD, valid=VALID, env={}, open_files=1024, keep_for=40
        )
    held.pop("log")
    results["held"] = held
    with tempfile.TemporaryDirectory(prefix="bench-bodies-") as work:
        growth, statuses, disk = floods.big_bodies(Path(work), senders=SENDERS, size=SIZE)
    results["bodies"] = {
        "rss_growth_kib": growth,
        "statuses": sorted(set(statuses)),
        "inbox_growth_bytes": disk,
    }
    results["load_after"] = os.getloadavg()[0]
    h, b = results["held"], results["bodies"]
    results["targets"] = {
        "item 2: every delivery 202": h["statuses"] == [202],
        "item 2: ack p99 < 1 s": h["p99_ms"] < 1000,
        "item 2: every held connection closed by the server": h["held_closed_by_server"] == HELD,
        "item 9: every body 413": b["statuses"] == [413],
        "item 9: RSS growth < 50 MB": b["rss_growth_kib"] < 50 * 1024,
    }
    return results


def render(r: dict[str, Any]) -> str:
    """A Markdown section for BENCHMARKS.md."""
    h, b = r["held"], r["bodies"]
    closed = f"{h['held_closed_by_server']:,}"
    log_lines = f"{h['connection_lines']} / {h['emfile_lines']}"
    verdicts = ", ".join(f"{k}: {'met' if v else 'MISSED'}" for k, v in r["targets"].items())
    return f"""
## Hostile clients: held connections and huge bodies (issue 17 items 2 and 9)

`bench/limits_bench.py` on a real `serve` process (`tests/support/serve_process.py`), default
limits. Machine: {r["machine"]} (1-min load {r["load_before"]:.2f} before, {r["load_after"]:.2f}
after: the machine was shared).

**Held connections.** One client holds {HELD:,} connections open, idle or half-sent (nothing,
half a request line, unfinished headers, headers of a body that never comes), under a 1,024
open-files soft limit (the server raises its own), and meanwhile sends {VALID:,} valid signed
deliveries on fresh connections, 25 at a time.

| measure | value | target |
|---|---|---|
| opening the held connections | {h["opened_s"]} s | |
| all deliveries answered, from the first held one | {h["delivered_s"]} s | |
| delivery answers | {", ".join(map(str, h["statuses"]))} | all 202 |
| ack latency p50 / p99 / max | {h["p50_ms"]} / **{h["p99_ms"]}** / {h["max_ms"]} ms | p99 < 1 s |
| held connections closed by the server (timeouts, 40 s wait) | {closed} | {HELD:,} |
| log lines about connections / "too many open files" | {log_lines} | <= 12 / 0 |

**Huge bodies.** {SENDERS} concurrent {SIZE // 1024 // 1024} MB bodies (half declared with
`Content-Length`, half chunked) to `POST /api/triggers/{{agent}}/{{trigger}}/test`.

| measure | value | target |
|---|---|---|
| answers | {", ".join(map(str, b["statuses"]))} | all 413 |
| peak RSS growth of the server | **{b["rss_growth_kib"] / 1024:.1f} MB** | < 50 MB |
| inbox file growth | {b["inbox_growth_bytes"]:,} bytes | < 1 MB |

{verdicts}.
"""


def main() -> None:
    print(render(run()))


if __name__ == "__main__":
    main()
