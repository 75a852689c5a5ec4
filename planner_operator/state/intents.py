"""The ledger's write-ahead intents: creates announced before they are made.

Kept apart from ledger.py only for size; the table is the ledger's (its migration lives there)
and :class:`~planner_operator.state.ledger.Ledger` is the one class that uses this.

Apply announces a create here, in its own committed transaction, before the remote write, and
clears the intent in the transaction that records the result. A crash or a lost response in
between leaves the intent behind, and with it the knowledge that an unowned remote object with
that backend and key is ours (see :class:`~planner_operator.core.records.Intent`).
"""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime
from typing import Any

from planner_operator.core import canonical
from planner_operator.core import clock as clock_mod
from planner_operator.core.records import Intent
from planner_operator.errors import StateError
from planner_operator.state import db

_COLUMNS = "id, backend, key, kind, spec_hash, spec_json, revision, created_at"


class IntentStore(db.Store):
    """Reads and writes of the ``intents`` table (one row per backend and key)."""

    def intents(self) -> list[Intent]:
        """Every pending intent (announced and not yet settled), for the planner."""
        try:
            rows = self._conn.execute(
                f"SELECT {_COLUMNS} FROM intents ORDER BY key, backend"
            ).fetchall()
        except sqlite3.Error as exc:
            raise StateError(f"ledger {self.path}: {exc}") from exc
        return [_intent(row) for row in rows]

    def write_intent(self, intent: Intent) -> tuple[Intent, bool]:
        """Announce a create before making it; returns the stored intent and whether it is new.

        An intent already pending for the backend and key is kept as it is (``False``): it may
        cover an object an earlier, interrupted create left, which this create may not take over.
        """
        with db.transaction(self._conn):
            row = self._conn.execute(
                f"SELECT {_COLUMNS} FROM intents WHERE backend = ? AND key = ?",
                (intent.backend, intent.key),
            ).fetchone()
            if row is not None:
                return _intent(row), False
            cursor = self._conn.execute(
                f"INSERT INTO intents ({_COLUMNS.removeprefix('id, ')}) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    intent.backend,
                    intent.key,
                    intent.kind,
                    intent.spec_hash,
                    canonical.canonical_json(dict(intent.spec)),
                    intent.revision,
                    utc_iso(intent.created_at, self.clock),
                ),
            )
            stored = self._conn.execute(
                f"SELECT {_COLUMNS} FROM intents WHERE id = ?", (cursor.lastrowid,)
            ).fetchone()
        return _intent(stored), True

    def clear_intent(self, intent: Intent) -> None:
        """Drop this intent (by row id: a newer one for the same key stays); idempotent."""
        with db.transaction(self._conn):
            self._clear(intent)

    def _clear(self, intent: Intent | None) -> None:
        """For callers already inside a transaction (the ledger's record and swap)."""
        if intent is not None:
            self._conn.execute(
                "DELETE FROM intents WHERE id = ? AND backend = ? AND key = ?",
                (intent.id, intent.backend, intent.key),
            )


def utc_iso(value: datetime | None, clock: clock_mod.Clock) -> str:
    """UTC ISO-8601 (``clock``'s now for None); a naive datetime is taken to be UTC already
    (the operator only uses UTC)."""
    if value is None:
        return db.now_iso(clock)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat()


def _intent(row: tuple[Any, ...]) -> Intent:
    id_, backend, key, kind, hash_, spec_json, revision, created = row
    return Intent(
        key=key,
        kind="job" if kind == "job" else "trigger",
        backend=backend,
        spec_hash=hash_,
        spec=json.loads(spec_json),
        revision=revision,
        created_at=datetime.fromisoformat(created),
        id=int(id_),
    )
