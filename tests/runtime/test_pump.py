"""The worker loop's batching: quick runs are claimed ahead and settled together; slow runs are
claimed one free slot at a time; a shutdown gives back what it claimed and never started."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from planner_operator.core.records import NewDelivery
from planner_operator.core.settings import Settings
from planner_operator.runtime import pump, waiting
from planner_operator.runtime.worker import Routes, Worker, WorkerConfig
from planner_operator.state import sql
from planner_operator.state.inbox import Inbox
from planner_operator.state.runs import RunStore
from tests.support.webhook_env import Recorder, apply_triggers, composio_body, default_triggers


def make(tmp_path: Path, recorder: Recorder, **config: float) -> tuple[Worker, Inbox, list[str]]:
    """A worker whose inbox connection records every statement it runs."""
    settings = Settings.resolve(state_dir=tmp_path, env={})
    apply_triggers(settings, default_triggers())
    inbox = Inbox(settings.inbox_db)
    statements: list[str] = []
    assert isinstance(inbox._db, sql.SqliteDatabase)
    inbox._db.conn.set_trace_callback(statements.append)
    worker = Worker(
        inbox=inbox,
        routes=Routes(settings),
        runs=RunStore(settings.runs_db),
        executors=recorder.executors(),
        config=WorkerConfig(poll=0.02, **config),  # type: ignore[arg-type]
    )
    return worker, inbox, statements


def put(inbox: Inbox, count: int) -> None:
    body = composio_body()
    inbox.insert_many([NewDelivery(id=f"m{i}", source="composio", body=body) for i in range(count)])


def serve(worker: Worker, until: Callable[[], bool], *, grace: float = 2.0) -> None:
    async def scenario() -> None:
        task = asyncio.create_task(worker.run())
        deadline = time.monotonic() + 60
        while not until() and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        task.cancel()
        await worker.wait_idle(grace)

    asyncio.run(scenario())


def count(statements: list[str], prefix: str) -> int:
    return sum(1 for s in statements if s.lstrip().upper().startswith(prefix))


def test_a_burst_of_quick_runs_is_claimed_and_settled_in_batches(tmp_path: Path) -> None:
    recorder = Recorder()
    worker, inbox, statements = make(tmp_path, recorder)
    put(inbox, 400)
    serve(worker, lambda: inbox.counts().get("done", 0) == 400)
    assert inbox.counts() == {"done": 400}
    assert sorted(recorder.keys) == sorted(f"m{i}" for i in range(400))  # each ran once
    claims = count(statements, "UPDATE DELIVERIES SET STATUS = 'PROCESSING'")
    transactions = count(statements, "BEGIN")
    # a claim per free slot (4) and a settle per delivery: 500 transactions for 400 deliveries
    assert claims < 400 / 8, claims
    assert transactions < 400 / 2, transactions


def test_slow_runs_are_not_claimed_ahead(tmp_path: Path) -> None:
    recorder = Recorder(delay=0.2)
    worker, inbox, _ = make(tmp_path, recorder, concurrency=2)
    put(inbox, 6)
    leased: list[int] = []

    def sample() -> bool:
        leased.append(inbox.counts().get("processing", 0))
        return inbox.counts().get("done", 0) == 6

    serve(worker, sample)
    assert inbox.counts() == {"done": 6}
    assert max(leased) <= 2  # never more leased than slots: other workers may take the rest


def test_shutdown_gives_back_claims_it_never_started(tmp_path: Path) -> None:
    recorder = Recorder()
    worker, inbox, _ = make(tmp_path, recorder, concurrency=1)
    put(inbox, 300)
    serve(worker, lambda: inbox.counts().get("done", 0) >= 50)
    counts = inbox.counts()
    assert counts.get("processing", 0) == 0  # settled, or given back: nothing waits on a lease
    left = inbox.claim("next", 1000, lease=60)
    assert len(left) + counts["done"] == 300
    assert {d.attempts for d in left} == {1}  # the unstarted claims did not count as attempts
    assert pump.AHEAD > 1


def test_a_slow_poll_of_a_waiting_run_does_not_hold_up_the_claims(tmp_path: Path) -> None:
    """A poll may wait on a resumed Mastra run for minutes (PLANNER_MASTRA_WAIT): it runs in a
    thread of its own, and deliveries keep being claimed and run meanwhile."""
    release = threading.Event()
    polling = threading.Event()

    class SlowPlatform(Recorder):
        def run(
            self, *, workflow: str, input: Mapping[str, Any], context: Mapping[str, Any]
        ) -> Any:
            polling.set()
            release.wait(30)
            return {"ok": True}

    platform = SlowPlatform()
    worker, inbox, _ = make(tmp_path, platform)
    row = worker.runs.start(key="a/jobs/j", kind="job", run_id="r1", origin="scheduler")
    made = waiting.call(workflow="w", input={}, context={"run_key": "k"})
    worker.runs.wait(row, result={"awaiting": None, "next_poll_at": "", "call": made})
    put(inbox, 3)

    def three_done_while_polling() -> bool:
        return polling.is_set() and inbox.counts().get("done", 0) == 3

    try:
        serve(worker, three_done_while_polling)
        assert polling.is_set() and inbox.counts().get("done") == 3
        assert not release.is_set()
        waited = worker.runs.get(row)
        assert waited is not None and waited.status == "waiting"  # the poll is still under way
    finally:
        release.set()
