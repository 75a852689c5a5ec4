"""The ledger: which remote objects the operator created, so it only ever deletes its own.

Like Flux's garbage collection and kubectl's ApplySets, ownership is recorded by us, never
inferred from names on the remote side. Apply writes one row per successful remote write, each in
its own transaction, so a crash mid-apply leaves a ledger that matches what actually happened and
the next plan converges without duplicates (the Terraform ``errored.tfstate`` lesson).

A key has at most one *active* row (a partial unique index enforces it). A replace (a trigger
whose config changed) goes create-new → :meth:`Ledger.swap` → delete-old → :meth:`Ledger.forget`;
between the two steps the old object stays as a *retired* row, so a crash there leaves it owned
and the next plan deletes it instead of leaking it.
"""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime
from typing import Any

from planner_operator import canonical, db
from planner_operator.backends.base import Kind
from planner_operator.errors import StateError
from planner_operator.owned import OwnedEntry

COMPONENT = "ledger"

# Append only: released entries never change (db.migrate explains why).
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE resources (
        backend TEXT NOT NULL,
        remote_id TEXT NOT NULL,
        key TEXT NOT NULL,
        kind TEXT NOT NULL CHECK (kind IN ('job', 'trigger')),
        spec_hash TEXT NOT NULL,
        spec_json TEXT NOT NULL,
        revision TEXT NOT NULL DEFAULT '',
        source TEXT NOT NULL DEFAULT '',
        applied_at TEXT NOT NULL,
        protect INTEGER NOT NULL DEFAULT 0,
        retired INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (backend, remote_id)
    );
    CREATE UNIQUE INDEX resources_active_key ON resources (key) WHERE retired = 0;
    CREATE TABLE meta (
        name TEXT PRIMARY KEY,
        value TEXT NOT NULL,
        updated_at TEXT NOT NULL
    );
    """,
)

_COLUMNS = (
    "backend, remote_id, key, kind, spec_hash, spec_json, revision, source, applied_at, "
    "protect, retired"
)

_UPSERT = f"""
    INSERT INTO resources ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0)
    ON CONFLICT (backend, remote_id) DO UPDATE SET
        key = excluded.key, kind = excluded.kind, spec_hash = excluded.spec_hash,
        spec_json = excluded.spec_json, revision = excluded.revision, source = excluded.source,
        applied_at = excluded.applied_at, protect = excluded.protect, retired = 0
"""


class Ledger(db.Store):
    """The ownership ledger in a SQLite file (usually shared with the apply lock).

    Every write method is one transaction; reads see only committed state. The caller chooses
    the path (``.planner/state.db`` by default at the CLI), so tests and several workspaces never
    share a ledger by accident.
    """

    COMPONENT = COMPONENT
    MIGRATIONS = MIGRATIONS

    # -- reads -------------------------------------------------------------------------------

    def entries(self, *, include_retired: bool = True) -> list[OwnedEntry]:
        """Every owned object, ordered by key (active before retired), for the planner."""
        where = "" if include_retired else "WHERE retired = 0"
        rows = self._query(
            f"SELECT {_COLUMNS} FROM resources {where} ORDER BY key, retired, backend, remote_id"
        )
        return [_entry(row) for row in rows]

    def get(self, key: str) -> OwnedEntry | None:
        """The active owner of ``key``; retired rows are ignored (see the module docstring)."""
        rows = self._query(
            f"SELECT {_COLUMNS} FROM resources WHERE key = ? AND retired = 0", (key,)
        )
        return _entry(rows[0]) if rows else None

    def get_meta(self, name: str) -> str | None:
        rows = self._query("SELECT value FROM meta WHERE name = ?", (name,))
        return str(rows[0][0]) if rows else None

    # -- writes ------------------------------------------------------------------------------

    def record(self, entry: OwnedEntry) -> None:
        """Make ``entry`` the active owner of its key, after a create or update succeeded.

        A different active row for the same key is *replaced* (deleted), not retired: use
        :meth:`swap` when the old remote object still exists and must be deleted later.
        """
        _require_active(entry)
        with db.transaction(self._conn):
            self._drop_other_active(entry)
            self._upsert(entry)

    def swap(self, key: str, new: OwnedEntry) -> None:
        """Make ``new`` the active owner of ``key`` and retire the previous active row.

        Used by a replace right after the new object was created: the old object remains owned
        (retired) until its delete succeeds and :meth:`forget` removes it.
        """
        if new.key != key:
            raise ValueError(f"swap({key!r}) got an entry for {new.key!r}")
        _require_active(new)
        with db.transaction(self._conn):
            self._conn.execute(
                "UPDATE resources SET retired = 1 WHERE key = ? AND retired = 0 "
                "AND NOT (backend = ? AND remote_id = ?)",
                (key, new.backend, new.remote_id),
            )
            self._upsert(new)

    def owner_of(self, *, backend: str, remote_id: str) -> str | None:
        """The key whose active row holds this remote object, if any."""
        row = self._conn.execute(
            "SELECT key FROM resources WHERE backend = ? AND remote_id = ? AND retired = 0",
            (backend, remote_id),
        ).fetchone()
        return None if row is None else str(row[0])

    def forget(self, *, backend: str, remote_id: str) -> None:
        """Drop one row, active or retired, after its remote object was deleted (idempotent)."""
        with db.transaction(self._conn):
            self._conn.execute(
                "DELETE FROM resources WHERE backend = ? AND remote_id = ?", (backend, remote_id)
            )

    def adopt(self, entry: OwnedEntry) -> None:
        """Take ownership of an existing remote object, refusing to steal one already owned.

        Unlike :meth:`record`, which follows a write the operator just made, adoption is a human
        claim about an object found remotely; claiming a key (or object) that the ledger already
        ties to something else would orphan that other object, so it is an error.
        """
        _require_active(entry)
        with db.transaction(self._conn):
            current = self._conn.execute(
                "SELECT backend, remote_id FROM resources WHERE key = ? AND retired = 0",
                (entry.key,),
            ).fetchone()
            if current is not None and tuple(current) != (entry.backend, entry.remote_id):
                raise StateError(
                    f"cannot adopt {entry.remote_id} ({entry.backend}) for {entry.key}: the key is "
                    f"already owned by {current[1]} ({current[0]}); delete or forget that one first"
                )
            other = self._conn.execute(
                "SELECT key FROM resources WHERE backend = ? AND remote_id = ? AND key <> ?",
                (entry.backend, entry.remote_id, entry.key),
            ).fetchone()
            if other is not None:
                raise StateError(
                    f"cannot adopt {entry.remote_id} ({entry.backend}) for {entry.key}: it is "
                    f"already owned as {other[0]}"
                )
            self._upsert(entry)

    def set_meta(self, name: str, value: str) -> None:
        """Store a small operator fact (last applied revision, last summary, last error)."""
        with db.transaction(self._conn):
            self._conn.execute(
                "INSERT INTO meta (name, value, updated_at) VALUES (?, ?, ?) "
                "ON CONFLICT (name) DO UPDATE SET value = excluded.value, "
                "updated_at = excluded.updated_at",
                (name, value, db.utcnow_iso()),
            )

    # -- helpers -----------------------------------------------------------------------------

    def _query(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        try:
            return list(self._conn.execute(sql, params).fetchall())
        except sqlite3.Error as exc:
            raise StateError(f"ledger {self.path}: {exc}") from exc

    def _drop_other_active(self, entry: OwnedEntry) -> None:
        self._conn.execute(
            "DELETE FROM resources WHERE key = ? AND retired = 0 "
            "AND NOT (backend = ? AND remote_id = ?)",
            (entry.key, entry.backend, entry.remote_id),
        )

    def _upsert(self, entry: OwnedEntry) -> None:
        self._conn.execute(
            _UPSERT,
            (
                entry.backend,
                entry.remote_id,
                entry.key,
                entry.kind,
                entry.spec_hash,
                canonical.canonical_json(dict(entry.spec)),
                entry.revision,
                entry.source,
                _iso(entry.applied_at),
                int(entry.protect),
            ),
        )


def _require_active(entry: OwnedEntry) -> None:
    if entry.retired:
        raise ValueError(
            f"{entry.key}: only active entries are written directly; swap() retires old ones"
        )


def _iso(value: datetime | None) -> str:
    """UTC ISO-8601; a naive datetime is taken to be UTC already (the operator only uses UTC)."""
    if value is None:
        return db.utcnow_iso()
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat()


def _entry(row: tuple[Any, ...]) -> OwnedEntry:
    (
        backend,
        remote_id,
        key,
        kind,
        hash_,
        spec_json,
        revision,
        source,
        applied,
        protect,
        retired,
    ) = row
    kind_: Kind = "job" if kind == "job" else "trigger"
    return OwnedEntry(
        key=key,
        kind=kind_,
        backend=backend,
        remote_id=remote_id,
        spec_hash=hash_,
        spec=json.loads(spec_json),
        revision=revision,
        source=source,
        applied_at=datetime.fromisoformat(applied),
        protect=bool(protect),
        retired=bool(retired),
    )
