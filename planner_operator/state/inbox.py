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
from pathlib import Path
from typing import Any

from planner_operator.core import clock as clock_mod
from planner_operator.core import settings as settings_mod
from planner_operator.core.records import Delivery, NewDelivery
from planner_operator.core.settings import Settings
from planner_operator.errors import StateError
from planner_operator.state import db

COMPONENT = "inbox"
FILE_NAME = settings_mod.INBOX_DB_FILE  # under the state dir: Settings.inbox_db
RETENTION = 7 * 24 * 3600.0

MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE deliveries (
        id TEXT PRIMARY KEY,
        source TEXT NOT NULL,
        trigger_key TEXT,
        remote_id TEXT,
        event_type TEXT,
        received_at REAL NOT NULL,
        headers TEXT NOT NULL,
        body BLOB NOT NULL,
        status TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_at REAL NOT NULL,
        lease_until REAL,
        lease_owner TEXT,
        last_error TEXT,
        outcome TEXT,
        duplicates INTEGER NOT NULL DEFAULT 0,
        last_duplicate_at REAL,
        replays INTEGER NOT NULL DEFAULT 0,
        updated_at REAL NOT NULL
    );
    CREATE INDEX deliveries_due ON deliveries (status, next_attempt_at);
    CREATE INDEX deliveries_received ON deliveries (received_at);
    CREATE TABLE trigger_status (
        ref TEXT PRIMARY KEY,
        state TEXT NOT NULL,
        reason TEXT,
        delivery_id TEXT,
        at REAL NOT NULL
    );
    """,
    # v2: ids namespaced by source. Through a prefix no stored id can have (ids are visible
    # ASCII), so no renamed id meets one not yet renamed; the executors' idempotency keys of
    # deliveries still pending at the upgrade change with them.
    "UPDATE deliveries SET id = ' ' || source || ':' || id;"
    "UPDATE deliveries SET id = substr(id, 2);",
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


class Inbox(db.Store):
    """The inbox database; one connection, safe to share between threads (a lock serialises)."""

    COMPONENT = COMPONENT
    MIGRATIONS = MIGRATIONS

    def __init__(
        self,
        path: Path | str,
        *,
        synchronous: db.Synchronous = "NORMAL",
        clock: clock_mod.Clock = clock_mod.SYSTEM,
    ) -> None:
        self.synchronous = synchronous
        self._checkpointer: Any = None  # a second connection, only for checkpoints
        super().__init__(path, synchronous=synchronous, check_same_thread=False, clock=clock)

    def _epoch(self) -> float:
        """Now as the Unix time the inbox stores: leases, retries, arrivals compare as floats."""
        return clock_mod.epoch(self.clock)

    def close(self) -> None:
        super().close()
        if self._checkpointer is not None:
            self._checkpointer.close()

    def manual_checkpoints(self) -> None:
        """Stop this connection's commits from checkpointing (the step that fsyncs the database
        file); call :meth:`checkpoint` from another thread instead."""
        with self._lock:
            self._conn.execute("PRAGMA wal_autocheckpoint = 0")

    def checkpoint(self) -> None:
        """Copy committed WAL pages into the database file, without blocking writers."""
        if self._checkpointer is None:
            self._checkpointer = db.connect(self.path, check_same_thread=False, clock=self.clock)
        self._checkpointer.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()

    # -- ingest --------------------------------------------------------------------------------

    def insert_many(self, items: Sequence[NewDelivery]) -> list[bool]:
        """Store deliveries in one transaction; ``True`` for new ones, ``False`` for repeats."""
        out: list[bool] = []
        now = self._epoch()
        with self._lock, db.transaction(self._conn):
            for d in items:
                at = now if d.received_at is None else d.received_at
                cur = self._conn.execute(
                    "INSERT OR IGNORE INTO deliveries (id, source, trigger_key, remote_id, "
                    "event_type, received_at, headers, body, status, next_attempt_at, updated_at) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'received', ?, ?)",
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
                    self._conn.execute(
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
        with self._lock, db.transaction(self._conn):
            rows = self._conn.execute(
                "SELECT id FROM deliveries WHERE status IN ('received', 'failed') "
                "AND next_attempt_at <= ? UNION ALL "
                "SELECT id FROM deliveries WHERE status = 'processing' AND lease_until <= ? "
                "LIMIT ?",
                (now, now, limit),
            ).fetchall()
            ids = [r[0] for r in rows]
            return self._lease(ids, owner, lease, now)

    def claim_id(self, delivery_id: str, owner: str, lease: float) -> Delivery | None:
        """Lease one delivery if it is not leased by someone else (``inbox replay``)."""
        now = self._epoch()
        with self._lock, db.transaction(self._conn):
            row = self._conn.execute(
                "SELECT status, lease_until FROM deliveries WHERE id = ?", (delivery_id,)
            ).fetchone()
            if row is None or (row[0] == "processing" and (row[1] or 0) > now):
                return None
            leased = self._lease([delivery_id], owner, lease, now)
        return leased[0] if leased else None

    def _lease(self, ids: list[str], owner: str, lease: float, now: float) -> list[Delivery]:
        if not ids:
            return []
        marks = ",".join("?" * len(ids))
        self._conn.execute(
            f"UPDATE deliveries SET status = 'processing', attempts = attempts + 1, "
            f"lease_until = ?, lease_owner = ?, updated_at = ? WHERE id IN ({marks})",
            (now + lease, owner, now, *ids),
        )
        rows = self._conn.execute(
            f"SELECT {_COLUMNS} FROM deliveries WHERE id IN ({marks}) ORDER BY received_at",
            ids,
        ).fetchall()
        return [_delivery(r) for r in rows]

    def heartbeat(self, ids: Iterable[str], owner: str, lease: float) -> None:
        """Extend the leases ``owner`` still holds (a live worker's long executor runs)."""
        ids = list(ids)
        if not ids:
            return
        marks = ",".join("?" * len(ids))
        with self._lock, db.transaction(self._conn):
            self._conn.execute(
                f"UPDATE deliveries SET lease_until = ? WHERE lease_owner = ? "
                f"AND status = 'processing' AND id IN ({marks})",
                (self._epoch() + lease, owner, *ids),
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
        now = self._epoch()
        with self._lock, db.transaction(self._conn):
            cur = self._conn.execute(
                "UPDATE deliveries SET status = ?, outcome = COALESCE(?, outcome), "
                "last_error = ?, next_attempt_at = COALESCE(?, next_attempt_at), "
                "lease_until = NULL, lease_owner = NULL, updated_at = ? "
                "WHERE id = ? AND lease_owner = ? AND status = 'processing'",
                (status, outcome, error, retry_at, now, delivery_id, owner),
            )
            return cur.rowcount == 1

    def requeue(self, delivery_id: str) -> Delivery:
        """Make a stored delivery due again (``inbox replay``).

        A delivery that already ran (done or ignored) gets a new idempotency key, so the replay
        really runs again; a dead or failed one keeps its key, so an attempt that reached the
        platform unseen is not duplicated.
        """
        now = self._epoch()
        with self._lock, db.transaction(self._conn):
            row = self._conn.execute(
                "SELECT status FROM deliveries WHERE id = ?", (delivery_id,)
            ).fetchone()
            if row is None:
                raise StateError(f"no delivery {delivery_id} in the inbox")
            bump = 1 if row[0] in ("done", "ignored") else 0
            self._conn.execute(
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
        with self._lock:
            row = self._conn.execute(
                f"SELECT {_COLUMNS} FROM deliveries WHERE id = ?", (delivery_id,)
            ).fetchone()
        return None if row is None else _delivery(row)

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
        with self._lock:
            rows = self._conn.execute(
                f"SELECT {_COLUMNS} FROM deliveries WHERE {' AND '.join(where)} "
                "ORDER BY received_at DESC, id LIMIT ?",
                (*params, limit),
            ).fetchall()
        return [_delivery(r) for r in rows]

    def counts(self) -> dict[str, int]:
        with self._lock:
            rows = self._conn.execute(
                "SELECT status, COUNT(*) FROM deliveries GROUP BY status"
            ).fetchall()
        return {str(s): int(n) for s, n in rows}

    # -- housekeeping --------------------------------------------------------------------------

    def prune(self, *, retention: float = RETENTION, now: float | None = None) -> int:
        """Forget finished deliveries older than ``retention`` (pending ones are kept)."""
        cutoff = (self._epoch() if now is None else now) - retention
        with self._lock, db.transaction(self._conn):
            cur = self._conn.execute(
                "DELETE FROM deliveries WHERE received_at < ? "
                "AND status NOT IN ('received', 'processing', 'failed')",
                (cutoff,),
            )
            self._conn.execute("DELETE FROM trigger_status WHERE at < ?", (cutoff - RETENTION,))
        return int(cur.rowcount)

    # -- trigger lifecycle status ---------------------------------------------------------------

    def set_trigger_status(
        self, ref: str, state: str, reason: str | None, *, delivery_id: str, at: float
    ) -> None:
        """Remember a lifecycle event for ``ref`` (``trigger:<id>`` or ``account:<id>``).

        Deliveries come in any order: an older event never overwrites a newer one.
        """
        with self._lock, db.transaction(self._conn):
            self._conn.execute(
                "INSERT INTO trigger_status (ref, state, reason, delivery_id, at) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT (ref) DO UPDATE SET state = excluded.state, "
                "reason = excluded.reason, delivery_id = excluded.delivery_id, at = excluded.at "
                "WHERE excluded.at >= trigger_status.at",
                (ref, state, reason, delivery_id, at),
            )

    def clear_trigger_status(self, refs: Iterable[str], *, older_than: float) -> None:
        """A later message from the trigger proves it works again."""
        refs = list(refs)
        if not refs:
            return
        marks = ",".join("?" * len(refs))
        with self._lock, db.transaction(self._conn):
            self._conn.execute(
                f"DELETE FROM trigger_status WHERE ref IN ({marks}) AND at < ?",
                (*refs, older_than),
            )

    def trigger_status_rows(self) -> dict[str, tuple[str, str | None, float]]:
        with self._lock:
            rows = self._conn.execute(
                "SELECT ref, state, reason, at FROM trigger_status"
            ).fetchall()
        return {str(r[0]): (str(r[1]), r[2], float(r[3])) for r in rows}


def trigger_statuses(settings: Settings) -> dict[str, tuple[str, str]]:
    """Lifecycle state per trigger key, for ``status``: ``{key: (state, reason)}``.

    ``state`` is ``disabled`` (Composio disabled the trigger instance) or ``expired`` (its
    connected account expired). Events name Composio ids; they are matched to keys through the
    ledger here, at read time, so an event that arrived before its trigger was recorded still
    counts. Returns ``{}`` when there is no inbox yet.
    """
    from planner_operator.state.ledger import Ledger

    path = settings.inbox_db
    if not path.exists():
        return {}
    with Inbox(path) as inbox:
        rows = inbox.trigger_status_rows()
    if not rows:
        return {}
    with Ledger(settings.ledger_db) as ledger:
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
    return Delivery(*values)
