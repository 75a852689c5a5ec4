"""The durable webhook inbox: a delivery is committed here before its 202 is sent.

Senders retry anything they don't see acknowledged and may deliver twice anyway (Composio
#1940), so the inbox is keyed by the delivery id (``webhook-id``) with insert-or-ignore: a
repeat is counted on the original row and acknowledged again, never run again. Ids are kept
:data:`RETENTION` (7 days), longer than any sender's retry horizon (Svix ~28 h, Stripe 72 h).

Each sender picks its own ids, so the key is namespaced by source (:func:`delivery_id`:
``composio:<webhook-id>``, ``webhook:<agent>/<trigger>:<id>``, ``local:<id>``): a Composio id
shaped like a generic webhook's can no longer make that webhook's real delivery a "duplicate".

Workers claim due deliveries in a ``BEGIN IMMEDIATE`` transaction with a lease: a worker that
dies leaves ``processing`` rows whose lease runs out and which the next claim takes back; a
live worker renews its leases (:meth:`Inbox.heartbeat`). Every settle (done, retry, dead) is
guarded by the lease owner, so a worker that lost its lease cannot overwrite the new owner.

Statuses: ``received`` (due), ``processing`` (leased), ``failed`` (an attempt failed; due again
at ``next_attempt_at``), ``done``, ``ignored`` (nothing to run: filter, disabled, unknown
trigger), ``dead`` (gave up; replayable). A duplicate is not a row of its own: the original row
counts it (``duplicates``).

Ingress commits deliveries in batches (group commit: ``server.webhooks.GroupCommitter``).

The ``trigger_status`` table keeps what lifecycle events said (a trigger Composio disabled, a
connected account that expired), for ``status``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from planner_operator.core import clock as clock_mod
from planner_operator.core import times
from planner_operator.core.records import Delivery, NewDelivery
from planner_operator.errors import StateError
from planner_operator.state import db, sql

COMPONENT = "inbox"
RETENTION = 7 * 24 * 3600.0

# Released history: v1 stored times as REAL epoch seconds, v3 as text (core.times).
_DELIVERIES = """
    CREATE TABLE deliveries (
        id TEXT PRIMARY KEY,
        source TEXT NOT NULL,
        trigger_key TEXT,
        remote_id TEXT,
        event_type TEXT,
        received_at {time} NOT NULL,
        headers TEXT NOT NULL,
        body {blob} NOT NULL,
        status TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_at {time} NOT NULL,
        lease_until {time},
        lease_owner TEXT,
        last_error TEXT,
        outcome TEXT,
        duplicates INTEGER NOT NULL DEFAULT 0,
        last_duplicate_at {time},
        replays INTEGER NOT NULL DEFAULT 0,
        updated_at {time} NOT NULL
    );
    CREATE INDEX deliveries_due ON deliveries (status, next_attempt_at);
    CREATE INDEX deliveries_received ON deliveries (received_at);
    CREATE TABLE trigger_status (
        ref TEXT PRIMARY KEY,
        state TEXT NOT NULL,
        reason TEXT,
        delivery_id TEXT,
        at {time} NOT NULL
    );
"""


def _epoch_to_text(column: str) -> str:
    return f"strftime('{times.SQLITE_FORMAT}', {column}, 'unixepoch')"


MIGRATIONS = sql.Migrations(
    (
        _DELIVERIES.format(blob="BLOB", time="REAL"),
        # v2: ids namespaced by source. Through a prefix no stored id can have (ids are visible
        # ASCII), so no renamed id meets one not yet renamed; the executors' idempotency keys of
        # deliveries still pending at the upgrade change with them.
        "UPDATE deliveries SET id = ' ' || source || ':' || id;"
        "UPDATE deliveries SET id = substr(id, 2);",
        # v3: one stored time format (core.times) instead of REAL epoch seconds: the tables are
        # rebuilt (SQLite cannot change a column's type) and every time rewritten.
        "ALTER TABLE deliveries RENAME TO deliveries_v1;"
        "ALTER TABLE trigger_status RENAME TO trigger_status_v1;"
        "DROP INDEX deliveries_due; DROP INDEX deliveries_received;"
        + _DELIVERIES.format(blob="BLOB", time="TEXT")
        + f"""
    INSERT INTO deliveries SELECT id, source, trigger_key, remote_id, event_type,
        {_epoch_to_text("received_at")}, headers, body, status, attempts,
        {_epoch_to_text("next_attempt_at")}, {_epoch_to_text("lease_until")}, lease_owner,
        last_error, outcome, duplicates, {_epoch_to_text("last_duplicate_at")}, replays,
        {_epoch_to_text("updated_at")}
        FROM deliveries_v1;
    INSERT INTO trigger_status SELECT ref, state, reason, delivery_id, {_epoch_to_text("at")}
        FROM trigger_status_v1;
    DROP TABLE deliveries_v1;
    DROP TABLE trigger_status_v1;
    """,
    ),
    (_DELIVERIES.format(blob="BYTEA", time="TEXT"),),
)

SOURCES = ("composio", "webhook", "local")


def delivery_id(source: str, sent_id: str) -> str:
    """The inbox key (and executor idempotency key) of a delivery ``source`` calls ``sent_id``."""
    if source not in SOURCES:
        raise ValueError(f"unknown delivery source {source!r}")
    return f"{source}:{sent_id}"


_COLUMNS = (
    "id, source, trigger_key, remote_id, event_type, received_at, headers, body, status, "
    "attempts, next_attempt_at, lease_until, lease_owner, last_error, outcome, duplicates, "
    "last_duplicate_at, replays, updated_at"
)


def _t(seconds: float) -> str:
    return times.from_epoch(seconds)


@dataclass(frozen=True)
class Settlement:
    """How one attempt ended, as :meth:`Inbox.settle_many` records it."""

    delivery_id: str
    status: str
    outcome: str | None = None
    error: str | None = None
    retry_at: float | None = None


@dataclass(frozen=True)
class Backlog:
    """Work waiting for a worker: ``age`` is how long the longest-waiting one has been due.

    The age is what says the workers fall behind (a burst faster than they drain, a stopped
    worker); the count alone cannot tell a large burst being worked off from a stuck one.
    """

    count: int
    age: float  # seconds; 0 when nothing waits


class Inbox(sql.Store):
    """The inbox; safe to share between threads, and between replicas on PostgreSQL.

    No write here needs the store to itself: ingest is insert-or-ignore on the delivery id (one
    unique key for every replica), a claim passes over rows another claimer has locked (``FOR
    UPDATE SKIP LOCKED``), and every settle is guarded by the lease owner.
    """

    COMPONENT = COMPONENT
    MIGRATIONS = MIGRATIONS

    def __init__(
        self,
        where: Path | str | sql.Database,
        *,
        synchronous: db.Synchronous = "NORMAL",
        clock: clock_mod.Clock = clock_mod.SYSTEM,
    ) -> None:
        self.synchronous = synchronous
        super().__init__(where, synchronous=synchronous, clock=clock)

    @property
    def cheap_commits(self) -> bool:
        """Whether a commit only writes into the page cache (a SQLite WAL at ``synchronous``
        NORMAL or OFF), cheap enough to run on an event loop. A PostgreSQL commit is a round
        trip and an fsync on the server, so its caller should commit from a thread."""
        return not self._db.dialect.postgres and self.synchronous in ("OFF", "NORMAL")

    def _epoch(self) -> float:
        """Now as Unix time: leases, retries and arrivals are computed in seconds."""
        return clock_mod.epoch(self.clock)

    def manual_checkpoints(self) -> None:
        """Stop this store's commits from checkpointing (the step that fsyncs a SQLite file);
        call :meth:`checkpoint` from another thread instead. Nothing to do on PostgreSQL."""
        self._db.manual_checkpoints()

    def checkpoint(self) -> None:
        """Copy committed WAL pages into the database file, without blocking writers."""
        self._db.checkpoint()

    # -- ingest --------------------------------------------------------------------------------

    def insert_many(self, items: Sequence[NewDelivery]) -> list[bool]:
        """Store deliveries in one transaction; ``True`` for new ones, ``False`` for repeats."""
        out: list[bool] = []
        now = self._epoch()
        with self._db.transaction(serial=False) as tx:
            for d in items:
                at = _t(now if d.received_at is None else d.received_at)
                cur = tx.execute(
                    "INSERT INTO deliveries (id, source, trigger_key, remote_id, "
                    "event_type, received_at, headers, body, status, next_attempt_at, updated_at) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'received', ?, ?) ON CONFLICT (id) DO NOTHING",
                    (
                        d.id,
                        d.source,
                        d.trigger_key,
                        d.remote_id,
                        d.event_type,
                        at,
                        json.dumps(dict(d.headers), sort_keys=True),
                        d.body,
                        at,
                        at,
                    ),
                )
                new = cur.rowcount == 1
                if not new:
                    tx.execute(
                        "UPDATE deliveries SET duplicates = duplicates + 1, "
                        "last_duplicate_at = ? WHERE id = ?",
                        (at, d.id),
                    )
                out.append(new)
        return out

    def insert(self, item: NewDelivery) -> bool:
        return self.insert_many([item])[0]

    # -- claims --------------------------------------------------------------------------------

    def claim(
        self, owner: str, limit: int, lease: float, *, now: float | None = None
    ) -> list[Delivery]:
        """Lease up to ``limit`` due deliveries (new, retry due, or lease expired) to ``owner``."""
        now = self._epoch() if now is None else now
        stamp = _t(now)
        with self._db.transaction(serial=False) as tx:
            if self._db.dialect.postgres:  # one SELECT: SKIP LOCKED cannot follow a UNION
                sql_text = (
                    "SELECT id FROM deliveries WHERE (status IN ('received', 'failed') "
                    "AND next_attempt_at <= ?) OR (status = 'processing' AND lease_until <= ?) "
                    f"ORDER BY next_attempt_at LIMIT ? {self._db.dialect.skip_locked}"
                )
            else:  # one writer per file already; the UNION uses deliveries_due for both halves
                sql_text = (
                    "SELECT id FROM deliveries WHERE status IN ('received', 'failed') "
                    "AND next_attempt_at <= ? UNION ALL "
                    "SELECT id FROM deliveries WHERE status = 'processing' AND lease_until <= ? "
                    "LIMIT ?"
                )
            ids = [r[0] for r in tx.execute(sql_text, (stamp, stamp, limit)).fetchall()]
            return _lease(tx, ids, owner, lease, now)

    def claim_id(self, delivery_id: str, owner: str, lease: float) -> Delivery | None:
        """Lease one delivery if it is not leased by someone else (``inbox replay``)."""
        now = self._epoch()
        with self._db.transaction(serial=False) as tx:
            row = tx.execute(
                "SELECT status, lease_until FROM deliveries WHERE id = ? "
                f"{self._db.dialect.for_update}",
                (delivery_id,),
            ).fetchone()
            if row is None or (row[0] == "processing" and (row[1] or "") > _t(now)):
                return None
            leased = _lease(tx, [delivery_id], owner, lease, now)
        return leased[0] if leased else None

    def heartbeat(self, ids: Iterable[str], owner: str, lease: float) -> None:
        """Extend the leases ``owner`` still holds (a live worker's long executor runs)."""
        ids = list(ids)
        if not ids:
            return
        marks = ",".join("?" * len(ids))
        with self._db.transaction(serial=False) as tx:
            tx.execute(
                f"UPDATE deliveries SET lease_until = ? WHERE lease_owner = ? "
                f"AND status = 'processing' AND id IN ({marks})",
                (_t(self._epoch() + lease), owner, *ids),
            )

    def settle(
        self,
        delivery_id: str,
        owner: str,
        *,
        status: str,
        outcome: str | None = None,
        error: str | None = None,
        retry_at: float | None = None,
    ) -> bool:
        """Record how an attempt ended; ``False`` when ``owner`` no longer holds the lease."""
        [kept] = self.settle_many(
            owner, [Settlement(delivery_id, status, outcome, error, retry_at)]
        )
        return kept

    def settle_many(self, owner: str, items: Sequence[Settlement]) -> list[bool]:
        """Settle several attempts in one transaction (the worker's batch after a burst).

        Per item as :meth:`settle`: ``False`` where ``owner`` no longer holds the lease.
        """
        now = _t(self._epoch())
        out: list[bool] = []
        with self._db.transaction(serial=False) as tx:
            for s in items:
                retry = None if s.retry_at is None else _t(s.retry_at)
                cur = tx.execute(
                    "UPDATE deliveries SET status = ?, outcome = COALESCE(?, outcome), "
                    "last_error = ?, next_attempt_at = COALESCE(?, next_attempt_at), "
                    "lease_until = NULL, lease_owner = NULL, updated_at = ? "
                    "WHERE id = ? AND lease_owner = ? AND status = 'processing'",
                    (s.status, s.outcome, s.error, retry, now, s.delivery_id, owner),
                )
                out.append(cur.rowcount == 1)
        return out

    def lease_owners(self, *, now: float | None = None) -> set[str]:
        """Who holds live leases now (for a worker to spot owners that are provably gone)."""
        rows = self._db.query(
            "SELECT DISTINCT lease_owner FROM deliveries WHERE status = 'processing' "
            "AND lease_until > ? AND lease_owner IS NOT NULL",
            (_t(self._epoch() if now is None else now),),
        )
        return {str(r[0]) for r in rows}

    def expire_leases(self, owners: Iterable[str]) -> int:
        """End the leases of ``owners`` now, so the next claim takes their deliveries back.

        Only for owners known to be gone (``state.liveness``): a live owner would find its
        lease lost when it settles, and its run would have been attempted twice.
        """
        owners = list(owners)
        if not owners:
            return 0
        marks = ",".join("?" * len(owners))
        with self._db.transaction(serial=False) as tx:
            cur = tx.execute(
                f"UPDATE deliveries SET lease_until = ? WHERE status = 'processing' "
                f"AND lease_owner IN ({marks})",
                (_t(self._epoch()), *owners),
            )
        return int(cur.rowcount)

    def release(self, ids: Iterable[str], owner: str) -> int:
        """Give back claims ``owner`` never started (a worker shutting down): due again at
        once, and the claim's attempt not counted."""
        ids = list(ids)
        if not ids:
            return 0
        marks = ",".join("?" * len(ids))
        now = _t(self._epoch())
        with self._db.transaction(serial=False) as tx:
            # back to how it was before the claim (both engines read ``attempts`` before the
            # update): new ('received') or waiting for a retry ('failed'), due now either way
            cur = tx.execute(
                "UPDATE deliveries SET attempts = attempts - 1, "
                "status = CASE WHEN attempts <= 1 THEN 'received' ELSE 'failed' END, "
                "next_attempt_at = ?, lease_until = NULL, lease_owner = NULL, updated_at = ? "
                f"WHERE status = 'processing' AND lease_owner = ? AND id IN ({marks})",
                (now, now, owner, *ids),
            )
        return int(cur.rowcount)

    def requeue(self, delivery_id: str) -> Delivery:
        """Make a stored delivery due again (``inbox replay``).

        A delivery that already ran (done or ignored) gets a new idempotency key, so the replay
        really runs again; a dead or failed one keeps its key, so an attempt that reached the
        platform unseen is not duplicated.
        """
        now = _t(self._epoch())
        with self._db.transaction(serial=False) as tx:
            row = tx.execute(
                f"SELECT status FROM deliveries WHERE id = ? {self._db.dialect.for_update}",
                (delivery_id,),
            ).fetchone()
            if row is None:
                raise StateError(f"no delivery {delivery_id} in the inbox")
            bump = 1 if row[0] in ("done", "ignored") else 0
            tx.execute(
                "UPDATE deliveries SET status = 'received', attempts = 0, next_attempt_at = ?, "
                "lease_until = NULL, lease_owner = NULL, last_error = NULL, "
                "replays = replays + ?, updated_at = ? WHERE id = ?",
                (now, bump, now, delivery_id),
            )
        found = self.get(delivery_id)
        assert found is not None
        return found

    # -- reads ---------------------------------------------------------------------------------

    def get(self, delivery_id: str) -> Delivery | None:
        rows = self._db.query(f"SELECT {_COLUMNS} FROM deliveries WHERE id = ?", (delivery_id,))
        return _delivery(rows[0]) if rows else None

    def list(
        self, *, status: str | None = None, key: str | None = None, limit: int = 50
    ) -> list[Delivery]:
        """Newest first."""
        where, params = ["1 = 1"], []
        if status:
            where.append("status = ?")
            params.append(status)
        if key:
            where.append("trigger_key = ?")
            params.append(key)
        rows = self._db.query(
            f"SELECT {_COLUMNS} FROM deliveries WHERE {' AND '.join(where)} "
            "ORDER BY received_at DESC, id LIMIT ?",
            (*params, limit),
        )
        return [_delivery(r) for r in rows]

    def counts(self) -> dict[str, int]:
        rows = self._db.query("SELECT status, COUNT(*) FROM deliveries GROUP BY status")
        return {str(s): int(n) for s, n in rows}

    def oldest_pending(self) -> float | None:
        """When the oldest unfinished delivery arrived (Unix seconds), if any."""
        rows = self._db.query(
            "SELECT MIN(received_at) FROM deliveries "
            "WHERE status IN ('received', 'processing', 'failed')"
        )
        return times.epoch(rows[0][0]) if rows and rows[0][0] else None

    def backlog(self, *, now: float | None = None) -> Backlog:
        """Deliveries due and not taken by a live lease, and since when the oldest is due."""
        now = self._epoch() if now is None else now
        stamp = _t(now)
        rows = self._db.query(
            "SELECT COUNT(*), MIN(t) FROM (SELECT next_attempt_at AS t FROM deliveries "
            "WHERE status IN ('received', 'failed') AND next_attempt_at <= ? UNION ALL "
            "SELECT lease_until AS t FROM deliveries WHERE status = 'processing' "
            "AND lease_until <= ?) AS due",
            (stamp, stamp),
        )
        count, oldest = (int(rows[0][0]), rows[0][1]) if rows else (0, None)
        age = max(0.0, now - times.epoch(oldest)) if oldest else 0.0
        return Backlog(count, age)

    # -- housekeeping --------------------------------------------------------------------------

    def prune(self, *, retention: float = RETENTION, now: float | None = None) -> int:
        """Forget finished deliveries older than ``retention`` (pending ones are kept)."""
        cutoff = (self._epoch() if now is None else now) - retention
        with self._db.transaction(serial=False) as tx:
            cur = tx.execute(
                "DELETE FROM deliveries WHERE received_at < ? "
                "AND status NOT IN ('received', 'processing', 'failed')",
                (_t(cutoff),),
            )
            tx.execute("DELETE FROM trigger_status WHERE at < ?", (_t(cutoff - RETENTION),))
        return int(cur.rowcount)

    # -- trigger lifecycle status ---------------------------------------------------------------

    def set_trigger_status(
        self, ref: str, state: str, reason: str | None, *, delivery_id: str, at: float
    ) -> None:
        """Remember a lifecycle event for ``ref`` (``trigger:<id>`` or ``account:<id>``).

        Deliveries come in any order: an older event never overwrites a newer one.
        """
        with self._db.transaction(serial=False) as tx:
            tx.execute(
                "INSERT INTO trigger_status (ref, state, reason, delivery_id, at) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT (ref) DO UPDATE SET state = excluded.state, "
                "reason = excluded.reason, delivery_id = excluded.delivery_id, at = excluded.at "
                "WHERE excluded.at >= trigger_status.at",
                (ref, state, reason, delivery_id, _t(at)),
            )

    def clear_trigger_status(self, refs: Iterable[str], *, older_than: float) -> None:
        """A later message from the trigger proves it works again."""
        refs = list(refs)
        if not refs:
            return
        marks = ",".join("?" * len(refs))
        params = (*refs, _t(older_than))
        # every delivery that ran calls this, and there is almost never a row to clear: a read
        # first spares a write transaction per delivery (measured: a tenth of the drain rate)
        if not self._db.query(
            f"SELECT 1 FROM trigger_status WHERE ref IN ({marks}) AND at < ? LIMIT 1", params
        ):
            return
        with self._db.transaction(serial=False) as tx:
            tx.execute(f"DELETE FROM trigger_status WHERE ref IN ({marks}) AND at < ?", params)

    def trigger_status_rows(self) -> dict[str, tuple[str, str | None, float]]:
        rows = self._db.query("SELECT ref, state, reason, at FROM trigger_status")
        return {str(r[0]): (str(r[1]), r[2], times.epoch(r[3])) for r in rows}


def _lease(tx: sql.Tx, ids: list[str], owner: str, lease: float, now: float) -> list[Delivery]:
    if not ids:
        return []
    marks = ",".join("?" * len(ids))
    rows = tx.execute(
        f"UPDATE deliveries SET status = 'processing', attempts = attempts + 1, "
        f"lease_until = ?, lease_owner = ?, updated_at = ? WHERE id IN ({marks}) "
        f"RETURNING {_COLUMNS}",
        (_t(now + lease), owner, _t(now), *ids),
    ).fetchall()
    return sorted((_delivery(r) for r in rows), key=lambda d: (d.received_at, d.id))


def trigger_statuses(inbox: Inbox, ledger: Any) -> dict[str, tuple[str, str]]:
    """Lifecycle state per trigger key, for ``status``: ``{key: (state, reason)}``.

    ``state`` is ``disabled`` (Composio disabled the trigger instance) or ``expired`` (its
    connected account expired). Events name Composio ids; they are matched to keys through the
    ledger (a ``state.ledger.Ledger``) here, at read time, so an event that arrived before its
    trigger was recorded still counts.
    """
    rows = inbox.trigger_status_rows()
    if not rows:
        return {}
    entries = [e for e in ledger.entries(include_retired=False) if e.kind == "trigger"]
    # Composio speaks only for event triggers: a signed event naming a webhook trigger's id
    # must not mark that trigger disabled.
    entries = [e for e in entries if not e.spec.get("webhook")]
    out: dict[str, tuple[str, str]] = {}
    for entry in entries:
        found = rows.get(f"trigger:{entry.remote_id}")
        account = entry.spec.get("connected_account")
        by_account = rows.get(f"account:{account}") if account else None
        for hit in (found, by_account):
            if hit is not None and (entry.key not in out or hit[0] == "disabled"):
                out[entry.key] = (hit[0], hit[1] or "")
    return out


def _delivery(row: tuple[Any, ...]) -> Delivery:
    values = list(row)
    values[6] = json.loads(values[6]) if values[6] else {}
    values[7] = bytes(values[7])
    for index in (5, 10, 11, 16, 18):  # the times, stored as text, handed out as Unix seconds
        values[index] = None if values[index] is None else times.epoch(values[index])
    return Delivery(*values)
