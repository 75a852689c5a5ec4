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
from datetime import datetime
from typing import Any

from planner_operator.core import canonical, times
from planner_operator.core import clock as clock_mod
from planner_operator.core.records import Intent
from planner_operator.state import sql

_COLUMNS = "id, backend, key, kind, spec_hash, spec_json, revision, created_at"


class IntentStore(sql.Store):
    """Reads and writes of the ``intents`` table (one row per backend and key)."""

    def intents(self) -> list[Intent]:
        """Every pending intent (announced and not yet settled), for the planner."""
        rows = self._db.query(f"SELECT {_COLUMNS} FROM intents ORDER BY key, backend")
        return [_intent(row) for row in rows]

    def write_intent(self, intent: Intent) -> tuple[Intent, bool]:
        """Announce a create before making it; returns the stored intent and whether it is new.

        An intent already pending for the backend and key is kept as it is (``False``): it may
        cover an object an earlier, interrupted create left, which this create may not take over.
        """
        with self._db.transaction() as tx:
            row = tx.execute(
                f"SELECT {_COLUMNS} FROM intents WHERE backend = ? AND key = ?",
                (intent.backend, intent.key),
            ).fetchone()
            if row is not None:
                return _intent(row), False
            stored = tx.execute(
                f"INSERT INTO intents ({_COLUMNS.removeprefix('id, ')}) "
                f"VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING {_COLUMNS}",
                (
                    intent.backend,
                    intent.key,
                    intent.kind,
                    intent.spec_hash,
                    canonical.canonical_json(dict(intent.spec)),
                    intent.revision,
                    stored_or_now(intent.created_at, self.clock),
                ),
            ).fetchone()
        return _intent(stored), True

    def clear_intent(self, intent: Intent) -> None:
        """Drop this intent (by row id: a newer one for the same key stays); idempotent."""
        with self._db.transaction() as tx:
            self._clear(tx, intent)

    def _clear(self, tx: sql.Tx, intent: Intent | None) -> None:
        """For callers already inside a transaction (the ledger's record and swap)."""
        if intent is not None:
            tx.execute(
                "DELETE FROM intents WHERE id = ? AND backend = ? AND key = ?",
                (intent.id, intent.backend, intent.key),
            )


def stored_or_now(value: datetime | None, clock: clock_mod.Clock) -> str:
    """``value`` as stored text, or ``clock``'s now for None (a naive datetime is UTC)."""
    return times.now(clock) if value is None else times.stored(value)


def _intent(row: tuple[Any, ...]) -> Intent:
    id_, backend, key, kind, hash_, spec_json, revision, created = row
    return Intent(
        key=key,
        kind="job" if kind == "job" else "trigger",
        backend=backend,
        spec_hash=hash_,
        spec=json.loads(spec_json),
        revision=revision,
        created_at=times.parse(created),
        id=int(id_),
    )
