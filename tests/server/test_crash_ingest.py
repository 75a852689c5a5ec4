"""SIGKILL ``planner-operator serve`` mid-burst; acknowledged deliveries run exactly once.

A real server process (the ``serve`` command: uvicorn, durable inbox, in-process worker, local
executors) takes a burst of signed Composio deliveries from concurrent senders and is killed
with SIGKILL after a random number of acknowledgements, while requests and executor runs are in
flight. It is restarted, and the sender retries like Composio does: everything it has no 2xx
for, plus some it has (acks get lost too). After several rounds every acknowledged delivery
must be in the inbox once and have run exactly once: one thread in the outbox per delivery id
(the executor's idempotency key), one succeeded run. Then every delivery is re-sent three times
with fresh timestamps across another restart: all are duplicates, nothing runs again.

After every kill, before the restart, the state files the dead process left must open
cleanly (integrity check; the inbox and the ledger open through their own classes), and the
server's log must not hold the webhook secret. The default variant is small (fast suite): 2
kills of 250 deliveries. The slow one is the issue's size: 10 kill-and-restart cycles of 1,000
deliveries each.
"""

from __future__ import annotations

import asyncio
import random
import sqlite3
import time
import uuid
from pathlib import Path

import pytest

from planner_operator.core.settings import Settings
from planner_operator.state.inbox import Inbox
from planner_operator.state.ledger import Ledger
from tests.support import canaries
from tests.support.replicas import read_status, request
from tests.support.serve_process import Server
from tests.support.webhook_env import (
    MAIL_ID,
    MAIL_KEY,
    SECRET,
    apply_triggers,
    mail_spec,
)


async def send(
    server: Server, ids: list[str], *, kill_after: int | None = None, connections: int = 32
) -> set[str]:
    """Send each delivery once over keep-alive connections; returns the ids answered 2xx.

    A small raw HTTP/1.1 client: httpx's async pool spends more CPU than the server under 32
    concurrent requests, which would make this test measure the client.
    """
    acked: set[str] = set()
    queue = list(reversed(ids))

    async def connection() -> None:
        stream: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        while queue:
            msg_id = queue.pop()
            try:
                if stream is None:
                    stream = await asyncio.open_connection("127.0.0.1", server.port)
                reader, writer = stream
                writer.write(request(msg_id))
                await writer.drain()
                status = await read_status(reader)
            except (OSError, asyncio.IncompleteReadError, ValueError, IndexError):
                if stream is not None:
                    stream[1].close()
                stream = None  # the server died under us: no ack, the sender retries
                continue
            assert status < 500 or status == 503, status
            if status in (200, 202):
                acked.add(msg_id)
                if kill_after is not None and len(acked) >= kill_after:
                    server.kill()
        if stream is not None:
            stream[1].close()

    await asyncio.gather(*(connection() for _ in range(connections)))
    return acked


def stored_ids(ids: list[str]) -> list[str]:
    """The inbox keys (and executor run keys) of Composio webhook-ids: namespaced by source."""
    return [f"composio:{i}" for i in ids]


def settle(state: Path, ids: list[str], timeout: float = 120) -> None:
    ids = stored_ids(ids)
    deadline = time.monotonic() + timeout
    marks = ",".join("?" * len(ids))
    while True:
        with sqlite3.connect(state / "inbox.db") as conn:
            left = conn.execute(
                f"SELECT COUNT(*) FROM deliveries WHERE id IN ({marks}) AND status <> 'done'", ids
            ).fetchone()[0]
        if left == 0:
            return
        assert time.monotonic() < deadline, f"{left} deliveries still not done"
        time.sleep(0.2)


def crash_rounds(
    tmp_path: Path, *, rounds: int, per_round: int, seed: int, require_reclaimed: bool
) -> None:
    rng = random.Random(seed)
    state = tmp_path / "state"
    apply_triggers(
        Settings.resolve(state_dir=state, env={}), {(MAIL_KEY, "composio", MAIL_ID): mail_spec()}
    )
    server = Server(state, tmp_path / "server.log")
    every: list[str] = []
    server.start()
    try:
        for round_ in range(rounds):
            ids = [f"msg_{round_}_{i}_{uuid.uuid4().hex[:8]}" for i in range(per_round)]
            every += ids
            kill_at = rng.randint(per_round // 5, per_round * 4 // 5)
            acked = asyncio.run(send(server, ids, kill_after=kill_at))
            server.kill()  # in case the burst ended first
            assert len(acked) >= kill_at
            check_state_files_open(state)
            server.start()
            for _ in range(20):  # sender-style retries: the unacked, plus some acked again
                missing = [i for i in ids if i not in acked]
                if not missing:
                    break
                again = rng.sample(sorted(acked), min(len(acked), per_round // 10))
                acked |= asyncio.run(send(server, missing + again))
            assert acked == set(ids)
        settle(state, every)
        for replay in range(3):  # every delivery re-sent 3x, fresh timestamps, across a restart
            if replay == 1:
                server.stop()
                server.start()
            assert asyncio.run(send(server, every)) == set(every)
        settle(state, every)
    finally:
        server.stop()
        server.kill()
    check_state_files_open(state)
    log = server.log.read_text(errors="replace")
    assert SECRET not in log and not canaries.leaks(log), "a secret in the server's log"
    check_exactly_once(state, every, require_reclaimed=require_reclaimed)


def check_state_files_open(state: Path) -> None:
    """What a SIGKILL left: every database intact; the inbox and the ledger open and read."""
    for name in ("inbox.db", "ledger.db", "runs.db", "outbox.db"):
        if (state / name).exists():
            with sqlite3.connect(state / name) as conn:
                assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",), name
    with Inbox(state / "inbox.db") as inbox:
        assert sum(inbox.counts().values()) > 0
    with Ledger(state / "ledger.db") as ledger:
        assert ledger.entries()


def check_exactly_once(state: Path, ids: list[str], *, require_reclaimed: bool) -> None:
    """Every acknowledged delivery stored and done exactly once.

    ``require_reclaimed`` also demands that a kill landed while the worker held claims. Whether
    it does depends on where the random kill falls, so only the large run requires it; the lease
    path itself is tested deterministically in test_inbox.py and test_worker.py.
    """
    ids = stored_ids(ids)
    with sqlite3.connect(state / "inbox.db") as inbox:
        stored = dict(inbox.execute("SELECT id, status FROM deliveries").fetchall())
        reclaimed = inbox.execute("SELECT COUNT(*) FROM deliveries WHERE attempts > 1").fetchone()
    assert set(stored) == set(ids), "every acknowledged delivery is stored, once"
    assert set(stored.values()) == {"done"}
    if require_reclaimed:
        assert reclaimed[0] > 0, "some claims of a killed worker came back after their lease"
    with sqlite3.connect(state / "outbox.db") as outbox:
        threads = dict(
            outbox.execute("SELECT run_key, COUNT(*) FROM outbox_threads GROUP BY run_key")
        )
    assert set(threads) == set(ids) and set(threads.values()) == {1}, "executed exactly once"
    with sqlite3.connect(state / "runs.db") as runs:
        succeeded = dict(
            runs.execute(
                "SELECT run_id, COUNT(*) FROM runs WHERE status = 'succeeded' GROUP BY run_id"
            )
        )
        running = runs.execute("SELECT COUNT(*) FROM runs WHERE status = 'running'").fetchone()
    assert set(succeeded) == set(ids) and set(succeeded.values()) == {1}
    assert running[0] == 0, "attempts cut short by a kill are closed as abandoned"


def test_sigkill_mid_burst_small(tmp_path: Path) -> None:
    crash_rounds(tmp_path, rounds=2, per_round=250, seed=1, require_reclaimed=False)


@pytest.mark.slow
def test_sigkill_mid_burst_ten_cycles(tmp_path: Path) -> None:
    crash_rounds(tmp_path, rounds=10, per_round=1000, seed=2, require_reclaimed=True)
