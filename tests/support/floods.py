"""Floods of a real ``serve`` process, for the slow tests and ``make bench`` (issue 17).

:func:`held_connections`: one client holds thousands of idle or half-sent connections while
valid deliveries arrive (item 2). :func:`big_bodies`: concurrent bodies far over the cap to a
trigger test (item 9), measuring the server's peak RSS growth. Both run the server as operators
do (``tests/support/serve_process.py``), so its uvicorn limits and logging are the real ones.
"""

from __future__ import annotations

import asyncio
import re
import resource
import time
from pathlib import Path
from typing import Any

from planner_operator.core.settings import Settings
from tests.support.serve_process import Server
from tests.support.webhook_env import (
    ENV,
    apply_triggers,
    composio_body,
    composio_headers,
    default_triggers,
)

TOKEN = "tok_body-caps-test-token"
TEST_ROUTE = "/api/triggers/job-application-agent/recruiter-email/test"


def held_request(kind: int) -> bytes:
    """What one hostile connection sends, then holds: nothing, half a request line, headers
    with no end, or complete headers of a body that never comes."""
    return (
        b"",
        b"POST /webhooks/comp",
        b"POST /webhooks/composio HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: appl",
        b"POST /webhooks/composio HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-length: 500\r\n"
        b'content-type: application/json\r\n\r\n{"a":',
    )[kind % 4]


async def hold(port: int, count: int) -> list[tuple[asyncio.StreamReader, asyncio.StreamWriter]]:
    held = []
    for n in range(count):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(held_request(n))
        held.append((reader, writer))
    return held


async def deliver(port: int, msg_id: str) -> tuple[int, float]:
    """One valid signed delivery on a fresh connection; (status, seconds to the answer)."""
    body = composio_body(subject=msg_id, sender="s@example.com")
    head = "".join(f"{k}: {v}\r\n" for k, v in composio_headers(msg_id, body).items())
    started = time.perf_counter()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(
        f"POST /webhooks/composio HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-length: {len(body)}\r\n"
        f"{head}\r\n".encode()
        + body
    )
    line = await asyncio.wait_for(reader.readline(), 30)
    elapsed = time.perf_counter() - started
    writer.close()
    return int(line.split()[1]), elapsed


async def closed_by_server(held: list[tuple[asyncio.StreamReader, Any]], timeout: float) -> int:
    async def one(reader: asyncio.StreamReader) -> bool:
        try:
            await asyncio.wait_for(reader.read(), timeout)  # EOF: the server closed it
        except ConnectionError:  # reset: closed with our unread bytes in its buffer
            return True
        except TimeoutError:
            return False
        return True

    return sum(await asyncio.gather(*(one(r) for r, _ in held)))


def held_connections(
    tmp_path: Path,
    *,
    held: int,
    valid: int,
    env: dict[str, str],
    open_files: int | None,
    keep_for: float,
) -> dict[str, Any]:
    state = tmp_path / "state"
    apply_triggers(Settings.resolve(state_dir=state, env={}), default_triggers())
    server = Server(state, tmp_path / "serve.log", {**ENV, **env}, open_files=open_files)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, held + 1024)), hard))
    server.start()

    async def run() -> dict[str, Any]:
        opened = time.perf_counter()
        connections_held = await hold(server.port, held)
        opening = time.perf_counter() - opened
        results = []
        for batch in range(0, valid, 25):  # senders in waves of 25 concurrent deliveries
            wave = [
                deliver(server.port, f"valid-{n}") for n in range(batch, min(valid, batch + 25))
            ]
            results += await asyncio.gather(*wave)
        delivered = time.perf_counter() - opened  # all the while, the held ones were open
        closed = await closed_by_server(connections_held, keep_for)
        for _, writer in connections_held:
            writer.close()
        latencies = sorted(t for _, t in results)
        return {
            "opened_s": round(opening, 2),
            "delivered_s": round(delivered, 2),
            "statuses": sorted({s for s, _ in results}),
            "p50_ms": round(latencies[len(latencies) // 2] * 1000, 1),
            "p99_ms": round(latencies[int(len(latencies) * 0.99) - 1] * 1000, 1),
            "max_ms": round(latencies[-1] * 1000, 1),
            "held_closed_by_server": closed,
        }

    try:
        figures = asyncio.run(run())
    finally:
        server.stop()
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    log = server.log.read_text(errors="replace")
    figures["log_lines"] = len(log.splitlines())
    figures["connection_lines"] = len(re.findall(r"connections: ", log))
    figures["emfile_lines"] = log.count("Too many open files") + log.count("out of system resource")
    figures["log"] = log
    return figures


def rss_kib(pid: int, field: str = "VmRSS") -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(f"no {field} for {pid}")


async def send_huge(port: int, size: int, *, chunked: bool) -> int:
    """One request with a ``size``-byte body, written until the server answers or hangs up."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    length = "transfer-encoding: chunked" if chunked else f"content-length: {size}"
    writer.write(
        f"POST {TEST_ROUTE} HTTP/1.1\r\nhost: 127.0.0.1\r\nauthorization: Bearer {TOKEN}\r\n"
        f"content-type: application/json\r\n{length}\r\n\r\n".encode()
    )
    piece = b'{"a": "' + b"x" * (1024 * 1024 - 9) + b'"}'
    answer = asyncio.create_task(reader.readline())
    sent = 0
    try:
        while sent < size and not answer.done():
            data = piece[: size - sent]
            writer.write(f"{len(data):x}\r\n".encode() + data + b"\r\n" if chunked else data)
            await writer.drain()
            sent += len(data)
        if chunked and not answer.done():
            writer.write(b"0\r\n\r\n")
        status_line = await asyncio.wait_for(answer, 60)
    except (ConnectionError, OSError):
        status_line = await asyncio.wait_for(answer, 60) if answer.done() else b""
    finally:
        writer.close()
    return int(status_line.split()[1]) if status_line else 0


def big_bodies(tmp_path: Path, *, senders: int, size: int) -> tuple[int, list[int], int]:
    """``senders`` concurrent ``size``-byte bodies to a trigger test of a real ``serve``;
    returns (peak RSS growth in KiB, the statuses, inbox growth in bytes)."""
    state = tmp_path / "state"
    apply_triggers(Settings.resolve(state_dir=state, env={}), default_triggers())
    server = Server(state, tmp_path / "serve.log", {**ENV, "PLANNER_API_TOKEN": TOKEN})
    server.start()
    try:
        time.sleep(1.0)  # startup allocations settle
        before = rss_kib(server.pid)
        inbox = (state / "inbox.db").stat().st_size

        async def all_of_them() -> list[int]:
            sends = [send_huge(server.port, size, chunked=n % 2 == 1) for n in range(senders)]
            return list(await asyncio.gather(*sends))

        statuses = asyncio.run(all_of_them())
        peak = rss_kib(server.pid, "VmHWM")
        grown = (state / "inbox.db").stat().st_size - inbox
    finally:
        server.stop()
    return peak - before, statuses, grown
