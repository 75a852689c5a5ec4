"""The inbox store contract, on SQLite and PostgreSQL (the ``store`` fixture): dedupe, leases,
settle guards, replay keys, pruning, lifecycle status, and claims shared by several replicas."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from planner_operator.core.records import NewDelivery
from planner_operator.core.settings import Settings
from planner_operator.errors import StateError, StateUnavailable
from planner_operator.read import status as status_mod
from planner_operator.server.webhooks import GroupCommitter
from planner_operator.state import inbox as inbox_mod
from planner_operator.state import open as state_open
from planner_operator.state.inbox import Inbox
from tests.support.webhook_env import MAIL_ID, MAIL_KEY, apply_triggers, default_triggers


@pytest.fixture
def inbox(store: Settings) -> Iterator[Inbox]:
    with state_open.inbox(store) as box:
        yield box


def new(delivery_id: str, at: float | None = None) -> NewDelivery:
    return NewDelivery(
        id=delivery_id,
        source="composio",
        body=b'{"x": 1}',
        headers={"webhook-id": delivery_id},
        received_at=time.time() if at is None else at,
    )


def test_insert_is_insert_or_ignore_and_counts_duplicates(inbox: Inbox) -> None:
    assert inbox.insert_many([new("a"), new("b"), new("a")]) == [True, True, False]
    assert inbox.insert(new("b")) is False
    a, b = inbox.get("a"), inbox.get("b")
    assert a is not None and b is not None
    assert (a.duplicates, b.duplicates, a.status, a.body) == (1, 1, "received", b'{"x": 1}')
    assert inbox.counts() == {"received": 2}


def test_claim_leases_each_delivery_to_one_owner(inbox: Inbox) -> None:
    inbox.insert_many([new(f"d{i}") for i in range(5)])
    first = inbox.claim("w1", 3, lease=60)
    second = inbox.claim("w2", 10, lease=60)
    assert len(first) == 3 and len(second) == 2
    assert not {d.id for d in first} & {d.id for d in second}
    assert all(d.status == "processing" and d.attempts == 1 for d in first + second)
    assert inbox.claim("w3", 10, lease=60) == []


def test_an_expired_lease_comes_back_and_the_old_owner_cannot_settle(inbox: Inbox) -> None:
    inbox.insert(new("d"))
    [claimed] = inbox.claim("dead-worker", 1, lease=5)
    assert inbox.claim("w2", 1, lease=5, now=time.time() + 1) == []
    [again] = inbox.claim("w2", 1, lease=60, now=time.time() + 6)
    assert (again.id, again.attempts, again.lease_owner) == ("d", 2, "w2")
    assert inbox.settle("d", "dead-worker", status="done") is False
    assert inbox.settle("d", "w2", status="done", outcome="ran") is True
    final = inbox.get("d")
    assert final is not None and (final.status, final.outcome, final.lease_owner) == (
        "done",
        "ran",
        None,
    )
    assert claimed.attempts == 1


def test_heartbeat_keeps_a_lease(inbox: Inbox) -> None:
    inbox.insert(new("d"))
    inbox.claim("w1", 1, lease=2)
    inbox.heartbeat(["d"], "w1", lease=60)
    assert inbox.claim("w2", 1, lease=60, now=time.time() + 10) == []
    inbox.heartbeat(["d"], "someone-else", lease=1000)  # only the owner extends
    assert inbox.claim("w2", 1, lease=60, now=time.time() + 61) != []


def test_settle_many_settles_in_one_go_and_keeps_the_owner_guard(inbox: Inbox) -> None:
    inbox.insert_many([new("a"), new("b"), new("c")])
    mine = inbox.claim("w1", 2, lease=60)
    [other] = inbox.claim("w2", 1, lease=60)
    kept = inbox.settle_many(
        "w1",
        [
            inbox_mod.Settlement(mine[0].id, "done", "ran"),
            inbox_mod.Settlement(mine[1].id, "failed", "retry", "boom", retry_at=time.time() + 60),
            inbox_mod.Settlement(other.id, "done", "not mine"),
        ],
    )
    assert kept == [True, True, False]
    assert inbox.counts() == {"done": 1, "failed": 1, "processing": 1}
    failed = inbox.get(mine[1].id)
    assert failed is not None and failed.last_error == "boom" and failed.lease_owner is None


def test_the_leases_of_a_gone_owner_can_be_ended_at_once(inbox: Inbox) -> None:
    inbox.insert_many([new("a"), new("b"), new("c")])
    inbox.claim("gone", 2, lease=60)
    inbox.claim("alive", 1, lease=60)
    assert inbox.lease_owners() == {"gone", "alive"}
    assert inbox.claim("w", 10, lease=60) == []  # every lease still runs for a minute
    assert inbox.expire_leases(["gone"]) == 2
    assert inbox.lease_owners() == {"alive"}
    taken = inbox.claim("w", 10, lease=60)
    assert sorted(d.id for d in taken) == ["a", "b"] and all(d.attempts == 2 for d in taken)
    assert inbox.expire_leases([]) == 0


def test_release_gives_back_unstarted_claims_without_counting_an_attempt(inbox: Inbox) -> None:
    inbox.insert_many([new("a"), new("b")])
    claimed = inbox.claim("w1", 2, lease=60)
    assert inbox.release([d.id for d in claimed], "w2") == 0  # only the owner's own claims
    assert inbox.release([d.id for d in claimed], "w1") == 2
    assert inbox.counts() == {"received": 2}
    again = inbox.claim("w2", 10, lease=60)
    assert sorted((d.id, d.attempts) for d in again) == [("a", 1), ("b", 1)]
    inbox.settle("a", "w2", status="failed", error="boom", retry_at=time.time() - 1)
    [retry] = inbox.claim("w3", 1, lease=60)
    assert inbox.release([retry.id], "w3") == 1
    back = inbox.get("a")
    assert back is not None and (back.status, back.attempts) == ("failed", 1)


def test_backlog_counts_due_work_and_the_age_of_the_oldest(inbox: Inbox) -> None:
    now = time.time()
    assert inbox.backlog(now=now) == inbox_mod.Backlog(0, 0.0)
    inbox.insert_many([new("old", at=now - 30), new("new", at=now - 5), new("later", at=now)])
    [leased] = inbox.claim("w", 1, lease=60, now=now)  # the oldest, being run: not backlog
    assert leased.id == "old"
    found = inbox.backlog(now=now + 1)
    assert found.count == 2 and found.age == pytest.approx(6.0, abs=0.01)
    # at +61 the lease has run out (due again for 1 s); "new" has been due for 66 s
    found = inbox.backlog(now=now + 61)
    assert found.count == 3 and found.age == pytest.approx(66.0, abs=0.01)


def test_failed_deliveries_wait_for_their_retry_time(inbox: Inbox) -> None:
    inbox.insert(new("d"))
    inbox.claim("w", 1, lease=60)
    inbox.settle("d", "w", status="failed", error="503", retry_at=time.time() + 30)
    assert inbox.claim("w", 1, lease=60) == []
    [due] = inbox.claim("w", 1, lease=60, now=time.time() + 31)
    assert (due.attempts, due.last_error) == (2, "503")


def test_requeue_keeps_the_key_of_a_dead_letter_but_not_of_a_done_delivery(inbox: Inbox) -> None:
    inbox.insert_many([new("dead"), new("done")])
    for d in inbox.claim("w", 2, lease=60):
        inbox.settle(d.id, "w", status=d.id)
    dead, done = inbox.requeue("dead"), inbox.requeue("done")
    assert (dead.status, dead.attempts, dead.run_key) == ("received", 0, "dead")
    assert done.run_key == "done~replay1"
    with pytest.raises(StateError, match="no delivery"):
        inbox.requeue("missing")


def test_prune_forgets_finished_deliveries_after_seven_days(inbox: Inbox) -> None:
    old = time.time() - 8 * 24 * 3600
    inbox.insert_many([new("old-done", old), new("old-pending", old), new("recent")])
    [claimed] = [d for d in inbox.claim("w", 3, lease=60) if d.id == "old-done"]
    inbox.settle(claimed.id, "w", status="done")
    assert inbox.prune() == 1
    assert inbox.get("old-done") is None
    assert inbox.get("old-pending") is not None  # never drop what has not run
    assert inbox.insert(new("old-done")) is True  # past the horizon: a new delivery


def test_claim_id_respects_a_live_lease(inbox: Inbox) -> None:
    inbox.insert(new("d"))
    inbox.claim("w", 1, lease=60)
    assert inbox.claim_id("d", "cli", lease=60) is None
    inbox.settle("d", "w", status="dead")
    got = inbox.claim_id("d", "cli", lease=60)
    assert got is not None and got.lease_owner == "cli"


def test_trigger_status_keeps_the_newest_event_and_maps_to_keys(store: Settings) -> None:
    settings = store
    apply_triggers(settings, default_triggers())
    assert status_mod.lifecycle(settings) == {}
    with state_open.inbox(settings) as box:
        box.set_trigger_status(f"trigger:{MAIL_ID}", "disabled", "new", delivery_id="2", at=200)
        box.set_trigger_status(f"trigger:{MAIL_ID}", "disabled", "old", delivery_id="1", at=100)
        box.set_trigger_status("account:ca_other", "expired", "x", delivery_id="3", at=100)
    assert status_mod.lifecycle(settings) == {MAIL_KEY: ("disabled", "new")}
    with state_open.inbox(settings) as box:
        box.clear_trigger_status([f"trigger:{MAIL_ID}"], older_than=150)  # older message
    assert status_mod.lifecycle(settings) == {MAIL_KEY: ("disabled", "new")}
    with state_open.inbox(settings) as box:
        box.clear_trigger_status([f"trigger:{MAIL_ID}"], older_than=250)
        box.set_trigger_status("account:ca_1", "expired", "reconnect", delivery_id="4", at=300)
    assert status_mod.lifecycle(settings) == {MAIL_KEY: ("expired", "reconnect")}


def test_group_commit_batches_concurrent_submits(inbox: Inbox) -> None:
    woken: list[int] = []

    async def scenario() -> list[bool]:
        committer = GroupCommitter(inbox, on_commit=lambda: woken.append(1))
        await committer.start()
        ids = [f"g{i}" for i in range(200)] + ["g0", "g1"]
        results = await asyncio.gather(*(committer.submit(new(i)) for i in ids))
        await committer.stop()
        assert committer.batches < 50  # far fewer transactions than deliveries
        return list(results)

    results = asyncio.run(scenario())
    assert results == [True] * 200 + [False, False]
    assert inbox.counts() == {"received": 200}
    assert woken


def test_group_commit_runs_a_networked_commit_off_the_event_loop(inbox: Inbox) -> None:
    """A PostgreSQL commit is a network round trip, and while the database is down it waits
    for a connection (seconds): on the event loop that would stall every request, /healthz
    included, instead of letting them answer 503."""
    loop_threads: list[bool] = []
    real = inbox.insert_many

    def insert_many(items: Sequence[NewDelivery]) -> list[bool]:
        loop_threads.append(threading.current_thread() is threading.main_thread())
        return real(items)

    inbox.insert_many = insert_many  # type: ignore[method-assign]

    async def scenario() -> None:
        committer = GroupCommitter(inbox)
        await committer.start()
        assert await committer.submit(new("n1"))
        await committer.stop()

    asyncio.run(scenario())
    on_loop = inbox.cheap_commits  # SQLite NORMAL: a write() into the page cache, measured faster
    assert loop_threads == [on_loop]


def test_group_commit_reports_a_failed_commit_to_every_waiter(tmp_path: Path) -> None:
    store = Inbox(tmp_path / "inbox.db")

    async def scenario() -> None:
        committer = GroupCommitter(store)
        await committer.start()
        store.close()  # every commit now fails
        outcomes = await asyncio.gather(
            *(committer.submit(new(f"x{i}")) for i in range(3)), return_exceptions=True
        )
        assert all(isinstance(o, Exception) for o in outcomes)
        await committer.stop()
        with pytest.raises(StateError, match="not running"):
            await committer.submit(new("late"))

    asyncio.run(scenario())


def test_group_commit_fails_a_batch_at_once_while_the_database_is_away(tmp_path: Path) -> None:
    """One by one is for a delivery that spoils its batch; with the database away each would
    wait for a connection in turn (10 s each), so every waiter gets the 503 at once."""
    store = Inbox(tmp_path / "inbox.db")
    calls: list[int] = []

    def away(items: Sequence[NewDelivery]) -> list[bool]:
        calls.append(len(items))
        raise StateUnavailable("state database: no connection within 10 s")

    store.insert_many = away  # type: ignore[method-assign]

    async def scenario() -> list[object]:
        committer = GroupCommitter(store)
        await committer.start()
        outcomes = await asyncio.gather(
            *(committer.submit(new(f"x{i}")) for i in range(20)), return_exceptions=True
        )
        await committer.stop()
        return list(outcomes)

    outcomes = asyncio.run(scenario())
    assert all(isinstance(o, StateUnavailable) for o in outcomes)
    assert sum(calls) == 20 and all(n > 0 for n in calls)  # each delivery tried once
    store.close()


def test_migration_v2_namespaces_stored_ids_by_source(tmp_path: Path) -> None:
    """Ids stored before v2 get their source prefix, so a re-send after the upgrade is still a
    duplicate; ids that already look namespaced do not collide on the way (issue 17 item 1)."""
    from planner_operator.state import db

    path = tmp_path / "inbox.db"
    conn = db.connect(path)
    db.migrate(conn, inbox_mod.COMPONENT, inbox_mod.MIGRATIONS.sqlite[:1])
    old = [("msg_a", "composio"), ("composio:msg_a", "composio"), ("a/b:x", "webhook")]
    for old_id, source in old:
        conn.execute(
            "INSERT INTO deliveries (id, source, received_at, headers, body, status, "
            "next_attempt_at, updated_at) VALUES (?, ?, 1, '{}', x'7b7d', 'done', 1, 1)",
            (old_id, source),
        )
    conn.close()
    with Inbox(path) as store:
        ids = {d.id for d in store.list(limit=10)}
        assert ids == {"composio:msg_a", "composio:composio:msg_a", "webhook:a/b:x"}
        again = NewDelivery(
            id=inbox_mod.delivery_id("composio", "msg_a"), source="composio", body=b"{}"
        )
        assert store.insert(again) is False


def test_replicas_claim_disjoint_deliveries_and_share_one_dedupe_key(store: Settings) -> None:
    """Two inbox objects on one store stand for two replicas (two connections on PostgreSQL):
    a delivery both receive is new to exactly one, and concurrent claims never lease one row
    twice (SKIP LOCKED on PostgreSQL, one writer per file on SQLite)."""
    import threading

    with state_open.inbox(store) as one, state_open.inbox(store) as two:
        firsts = [one.insert(new(f"d{i}")) for i in range(60)]
        seconds = [two.insert(new(f"d{i}")) for i in range(60)]
        assert firsts == [True] * 60 and seconds == [False] * 60
        taken: dict[str, list[str]] = {"a": [], "b": []}
        gate = threading.Barrier(2)

        def work(box: Inbox, owner: str) -> None:
            gate.wait()
            while batch := box.claim(owner, 3, lease=60):
                taken[owner] += [d.id for d in batch]

        threads = [threading.Thread(target=work, args=(b, o)) for b, o in ((one, "a"), (two, "b"))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        claimed = taken["a"] + taken["b"]
        assert sorted(claimed) == sorted(f"d{i}" for i in range(60))  # each exactly once
        assert all(one.settle(i, "a", status="done") for i in taken["a"])
        assert not any(one.settle(i, "a", status="done") for i in taken["b"])  # not a's lease


def test_only_a_sqlite_wal_commit_is_cheap_enough_for_the_event_loop(store: Settings) -> None:
    """The webhook group committer commits on the event loop only when a commit is a write into
    the page cache; a PostgreSQL commit (a round trip and the server's fsync) there stalled
    every request and kept PostgreSQL ingest at a tenth of SQLite's (bench/webhook_bench.py)."""
    from planner_operator.server.webhooks import GroupCommitter

    with state_open.inbox(store) as inbox:
        committer = GroupCommitter(inbox)
        assert committer.inline is (store.database_url is None)
    if store.database_url is None:
        with state_open.inbox(store, synchronous="FULL") as full:
            assert GroupCommitter(full).inline is False


def test_a_batch_stores_each_id_once_and_counts_every_repeat(store: Settings) -> None:
    """A group commit's batch: repeats within the batch and of stored ids are answered False and
    counted as duplicates, as single inserts would be."""
    with state_open.inbox(store) as inbox:
        assert inbox.insert(new("b")) is True
        many = [new(f"m{n}") for n in range(300)]
        assert inbox.insert_many([new("a"), new("a"), new("b"), *many, new("a")]) == [
            True,
            False,
            False,
            *[True] * 300,
            False,
        ]
        a, b = inbox.get("a"), inbox.get("b")
        assert a is not None and a.duplicates == 2
        assert b is not None and b.duplicates == 1
        assert inbox.counts().get("received") == 302
        assert inbox.insert_many([]) == []
