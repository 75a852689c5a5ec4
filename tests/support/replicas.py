"""Senders for the multi-replica fault tests: signed Composio deliveries spread over replicas.

Like a load balancer in front of ``serve`` replicas with a sender behind it that retries: each
replica gets its own keep-alive connections; a delivery not answered 2xx (a refused connection
to a killed replica, a reset mid-request, a 503 while the database is down) goes back in the
queue, and any connection may take it next. Every status seen is counted, so a test can say
what the senders were told, not only what ended up stored.
"""

from __future__ import annotations

import asyncio
import collections
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from tests.support.serve_process import Server
from tests.support.webhook_env import composio_body
from tests.support.webhook_env import composio_headers as sign


@dataclass
class Tally:
    acked: set[str] = field(default_factory=set)
    statuses: collections.Counter[int] = field(default_factory=collections.Counter)
    failures: int = 0  # refused or broken connections (a replica killed or restarting)
    acked_by: collections.Counter[int] = field(default_factory=collections.Counter)  # replica


def request(msg_id: str) -> bytes:
    body = composio_body(subject=msg_id, sender="sender@example.com")
    head = "".join(f"{k}: {v}\r\n" for k, v in sign(msg_id, body).items())
    return (
        f"POST /webhooks/composio HTTP/1.1\r\nhost: 127.0.0.1\r\n"
        f"content-length: {len(body)}\r\n{head}\r\n"
    ).encode() + body


async def read_status(reader: asyncio.StreamReader) -> int:
    status = int((await reader.readline()).split()[1])
    length = 0
    while (line := await reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    await reader.readexactly(length)
    return status


async def spread(
    servers: Sequence[Server],
    ids: Sequence[str],
    *,
    per_server: int = 8,
    timeout: float = 150.0,
    on_ack: Callable[[int], None] | None = None,
    tally: Tally | None = None,
) -> Tally:
    """Send every id until some replica acknowledges it (or ``timeout`` runs out)."""
    tally = tally or Tally()
    queue = collections.deque(ids)
    deadline = time.monotonic() + timeout

    async def connection(index: int, server: Server) -> None:
        stream: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        while queue and time.monotonic() < deadline:
            msg_id = queue.popleft()
            try:
                if stream is None:
                    stream = await asyncio.open_connection("127.0.0.1", server.port)
                reader, writer = stream
                writer.write(request(msg_id))
                await writer.drain()
                status = await asyncio.wait_for(read_status(reader), 30)
            except (OSError, asyncio.IncompleteReadError, ValueError, IndexError, TimeoutError):
                if stream is not None:
                    stream[1].close()
                stream = None
                queue.append(msg_id)  # no answer: the sender retries, maybe elsewhere
                tally.failures += 1
                await asyncio.sleep(0.2)
                continue
            tally.statuses[status] += 1
            if status in (200, 202):
                tally.acked.add(msg_id)
                tally.acked_by[index] += 1
                if on_ack is not None:
                    on_ack(len(tally.acked))
            else:
                queue.append(msg_id)
                await asyncio.sleep(0.05)
        if stream is not None:
            stream[1].close()

    await asyncio.gather(
        *(
            connection(index, server)
            for index, server in enumerate(servers)
            for _ in range(per_server)
        )
    )
    return tally
