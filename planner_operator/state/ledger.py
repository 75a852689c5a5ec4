"""The ledger: which remote objects the operator created, so it only ever deletes its own.

Like Flux's garbage collection and kubectl's ApplySets, ownership is recorded by us, never
inferred from names on the remote side. Apply writes one row per successful remote write, each in
its own transaction, so a crash mid-apply leaves a ledger that matches what actually happened and
the next plan converges without duplicates (the Terraform ``errored.tfstate`` lesson).

A key has at most one *active* row (a partial unique index enforces it). A replace (a trigger
whose config changed) goes create-new → :meth:`Ledger.swap` → delete-old → :meth:`Ledger.forget`;
between the two steps the old object stays as a *retired* row, so a crash there leaves it owned
and the next plan deletes it instead of leaking it.

A create is announced first (:meth:`Ledger.write_intent`, its own transaction) and the intent is
cleared with the row that records its result, so an object whose create was cut off before the
ledger heard of it is still known to be ours (see :class:`~planner_operator.core.records.Intent`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from planner_operator.core import canonical, specs, times
from planner_operator.core.keys import Kind
from planner_operator.core.records import HistoryOp, HistoryRow, Intent, OwnedEntry
from planner_operator.errors import StateError
from planner_operator.state import sql
from planner_operator.state.intents import IntentStore, stored_or_now

COMPONENT = "ledger"

_V1 = """
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
"""
# v2: one row per applied change to a key, written in the same transaction as the resources
# row, so `explain` can tell which schedule (and paused state) applied at any past moment.
# Seeded with every active row as a 'baseline': the spec in effect since its applied_at.
_V2 = """
    CREATE TABLE history (
        id {identity},
        at TEXT NOT NULL,
        key TEXT NOT NULL,
        kind TEXT NOT NULL,
        op TEXT NOT NULL
            CHECK (op IN ('baseline', 'create', 'update', 'delete', 'adopt', 'forget')),
        backend TEXT NOT NULL,
        remote_id TEXT NOT NULL,
        spec_hash TEXT NOT NULL,
        enabled INTEGER,
        schedule TEXT,
        timezone TEXT,
        revision TEXT NOT NULL DEFAULT '',
        spec_json TEXT NOT NULL
    );
    CREATE INDEX history_by_key ON history (key, id);
    INSERT INTO history (at, key, kind, op, backend, remote_id, spec_hash, revision, spec_json)
        SELECT applied_at, key, kind, 'baseline', backend, remote_id, spec_hash, revision,
            spec_json
        FROM resources WHERE retired = 0 ORDER BY applied_at, key;
"""
# v3: write-ahead intents, one per backend and key: a create about to be made (module doc).
_V3 = """
    CREATE TABLE intents (
        id {identity},
        backend TEXT NOT NULL,
        key TEXT NOT NULL,
        kind TEXT NOT NULL CHECK (kind IN ('job', 'trigger')),
        spec_hash TEXT NOT NULL,
        spec_json TEXT NOT NULL,
        revision TEXT NOT NULL DEFAULT '',
        created_at TEXT NOT NULL,
        UNIQUE (backend, key)
    );
"""
# Append only: released entries never change (db.migrate explains why).
SQLITE_MIGRATIONS: tuple[str, ...] = (
    _V1,
    sql.SQLITE.ddl(_V2),
    sql.SQLITE.ddl(_V3),
    # v4: one stored time format (core.times): rows of older versions wrote microseconds and
    # +00:00; keep a value SQLite cannot read as it was rather than lose it.
    f"""
    UPDATE resources SET applied_at = COALESCE(strftime('{times.SQLITE_FORMAT}', applied_at),
        applied_at);
    UPDATE meta SET updated_at = COALESCE(strftime('{times.SQLITE_FORMAT}', updated_at),
        updated_at);
    UPDATE history SET at = COALESCE(strftime('{times.SQLITE_FORMAT}', at), at);
    UPDATE intents SET created_at = COALESCE(strftime('{times.SQLITE_FORMAT}', created_at),
        created_at);
    """,
)

# PostgreSQL started at SQLite's v4 schema (v4 itself only rewrote SQLite's old rows).
POSTGRES_MIGRATIONS: tuple[str, ...] = (sql.POSTGRES.ddl(_V1 + _V2 + _V3),)

MIGRATIONS = sql.Migrations(SQLITE_MIGRATIONS, POSTGRES_MIGRATIONS)

_COLUMNS = (
    "backend, remote_id, key, kind, spec_hash, spec_json, revision, source, applied_at, "
    "protect, retired"
)

_HISTORY_COLUMNS = (
    "id, at, key, kind, op, backend, remote_id, spec_hash, enabled, schedule, timezone, "
    "revision, spec_json"
)

_UPSERT = f"""
    INSERT INTO resources ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0)
    ON CONFLICT (backend, remote_id) DO UPDATE SET
        key = excluded.key, kind = excluded.kind, spec_hash = excluded.spec_hash,
        spec_json = excluded.spec_json, revision = excluded.revision, source = excluded.source,
        applied_at = excluded.applied_at, protect = excluded.protect, retired = 0
"""


class Ledger(IntentStore):
    """The ownership ledger (a SQLite file shared with the apply lock, or the shared database).

    Every write method is one serial transaction; reads see only committed state. Open it
    through ``state.open.ledger(settings)``; tests may pass a file path.
    """

    COMPONENT = COMPONENT
    MIGRATIONS = MIGRATIONS

    # -- reads -------------------------------------------------------------------------------

    def entries(
        self, *, include_retired: bool = True, kind: Kind | None = None
    ) -> list[OwnedEntry]:
        """Every owned object (of ``kind``, else all), ordered by key (active before retired),
        for the planner; ``serve``'s trigger routes read only the triggers."""
        terms = ([] if include_retired else ["retired = 0"]) + (
            [] if kind is None else ["kind = ?"]
        )
        where = f"WHERE {' AND '.join(terms)}" if terms else ""
        rows = self._db.query(
            f"SELECT {_COLUMNS} FROM resources {where} ORDER BY key, retired, backend, remote_id",
            () if kind is None else (kind,),
        )
        return [_entry(row) for row in rows]

    def get(self, key: str) -> OwnedEntry | None:
        """The active owner of ``key``; retired rows are ignored (see the module docstring)."""
        rows = self._db.query(
            f"SELECT {_COLUMNS} FROM resources WHERE key = ? AND retired = 0", (key,)
        )
        return _entry(rows[0]) if rows else None

    def get_many(self, keys: Sequence[str]) -> dict[str, OwnedEntry]:
        """The active owners of ``keys`` that have one, in one query per 500 keys: a page of
        100 resources is one read, not 100."""
        out: dict[str, OwnedEntry] = {}
        for start in range(0, len(keys), _CHUNK):
            chunk = keys[start : start + _CHUNK]
            marks = ", ".join("?" * len(chunk))
            rows = self._db.query(
                f"SELECT {_COLUMNS} FROM resources WHERE key IN ({marks}) AND retired = 0",
                tuple(chunk),
            )
            out.update((e.key, e) for e in map(_entry, rows))
        return out

    def get_meta(self, name: str) -> str | None:
        rows = self._db.query("SELECT value FROM meta WHERE name = ?", (name,))
        return str(rows[0][0]) if rows else None

    def meta(self, names: Sequence[str]) -> dict[str, str]:
        """Several operator facts in one read (``/metrics`` wants two at every scrape)."""
        if not names:
            return {}
        marks = ",".join("?" * len(names))
        rows = self._db.query(f"SELECT name, value FROM meta WHERE name IN ({marks})", names)
        return {str(name): str(value) for name, value in rows}

    def change_mark(self) -> tuple[int, int, str | None, str | None]:
        """Moves whenever the owned set or what a reconcile records changes: the last history
        row's id (every ownership write adds one in its transaction), the active row count, the
        ``last_reconcile`` record and when the ``agents`` record was written. Readers that keep
        an index of the ledger in memory compare it instead of reading every row."""
        rows = self._db.query(
            "SELECT (SELECT MAX(id) FROM history), "
            "(SELECT COUNT(*) FROM resources WHERE retired = 0), "
            "(SELECT value FROM meta WHERE name = 'last_reconcile'), "
            "(SELECT updated_at FROM meta WHERE name = 'agents')"
        )
        high, count, last, agents = rows[0]
        return (
            int(high or 0),
            int(count),
            None if last is None else str(last),
            None if agents is None else str(agents),
        )

    def managed_counts(self) -> dict[tuple[str, str], int]:
        """Active owned objects per (kind, backend), for ``planner_managed_resources``."""
        rows = self._db.query(
            "SELECT kind, backend, COUNT(*) FROM resources WHERE retired = 0 GROUP BY kind, backend"
        )
        return {(str(kind), str(backend)): int(count) for kind, backend, count in rows}

    def history(self, key: str) -> list[HistoryRow]:
        """Every recorded change to ``key``, oldest first (``explain`` replays them)."""
        rows = self._db.query(
            f"SELECT {_HISTORY_COLUMNS} FROM history WHERE key = ? ORDER BY id", (key,)
        )
        return [_history_row(row) for row in rows]

    def owner_of(self, *, backend: str, remote_id: str) -> str | None:
        """The key whose active row holds this remote object, if any."""
        rows = self._db.query(
            "SELECT key FROM resources WHERE backend = ? AND remote_id = ? AND retired = 0",
            (backend, remote_id),
        )
        return str(rows[0][0]) if rows else None

    # -- writes ------------------------------------------------------------------------------

    def record(self, entry: OwnedEntry, *, intent: Intent | None = None) -> None:
        """Make ``entry`` the active owner of its key, after a create or update succeeded.

        A different active row for the same key is *replaced* (deleted), not retired: use
        :meth:`swap` when the old remote object still exists and must be deleted later.
        ``intent``, the one announced for this create, is cleared in the same transaction.
        """
        _require_active(entry)
        with self._db.transaction() as tx:
            self._clear(tx, intent)
            before = _active(tx, entry.key)
            tx.execute(
                "DELETE FROM resources WHERE key = ? AND retired = 0 "
                "AND NOT (backend = ? AND remote_id = ?)",
                (entry.key, entry.backend, entry.remote_id),
            )
            self._upsert(tx, entry)
            if before != (entry.backend, entry.remote_id, entry.spec_hash):  # else: no change
                self._log(tx, entry, "create" if before is None else "update")

    def swap(self, key: str, new: OwnedEntry, *, intent: Intent | None = None) -> None:
        """Make ``new`` the active owner of ``key`` and retire the previous active row.

        Used by a replace right after the new object was created: the old object remains owned
        (retired) until its delete succeeds and :meth:`forget` removes it. ``intent`` as in
        :meth:`record`.
        """
        if new.key != key:
            raise ValueError(f"swap({key!r}) got an entry for {new.key!r}")
        _require_active(new)
        with self._db.transaction() as tx:
            self._clear(tx, intent)
            tx.execute(
                "UPDATE resources SET retired = 1 WHERE key = ? AND retired = 0 "
                "AND NOT (backend = ? AND remote_id = ?)",
                (key, new.backend, new.remote_id),
            )
            self._upsert(tx, new)
            self._log(tx, new, "update")

    def forget(self, *, backend: str, remote_id: str) -> None:
        """Drop one row, active or retired, after its remote object was deleted (idempotent)."""
        with self._db.transaction() as tx:
            rows = tx.execute(
                f"SELECT {_COLUMNS} FROM resources WHERE backend = ? AND remote_id = ?",
                (backend, remote_id),
            ).fetchall()
            tx.execute(
                "DELETE FROM resources WHERE backend = ? AND remote_id = ?", (backend, remote_id)
            )
            for row in rows:
                gone = _entry(row)
                op: HistoryOp = "forget" if gone.retired else "delete"
                self._log(tx, gone, op, at=times.now(self.clock))

    def adopt(self, entry: OwnedEntry) -> None:
        """Take ownership of an existing remote object, refusing to steal one already owned.

        Unlike :meth:`record`, which follows a write the operator just made, adoption is a human
        claim about an object found remotely; claiming a key (or object) that the ledger already
        ties to something else would orphan that other object, so it is an error.
        """
        _require_active(entry)
        with self._db.transaction() as tx:
            current = tx.execute(
                "SELECT backend, remote_id FROM resources WHERE key = ? AND retired = 0",
                (entry.key,),
            ).fetchone()
            if current is not None and tuple(current) != (entry.backend, entry.remote_id):
                raise StateError(
                    f"cannot adopt {entry.remote_id} ({entry.backend}) for {entry.key}: the key is "
                    f"already owned by {current[1]} ({current[0]}); delete or forget that one first"
                )
            other = tx.execute(
                "SELECT key FROM resources WHERE backend = ? AND remote_id = ? AND key <> ?",
                (entry.backend, entry.remote_id, entry.key),
            ).fetchone()
            if other is not None:
                raise StateError(
                    f"cannot adopt {entry.remote_id} ({entry.backend}) for {entry.key}: it is "
                    f"already owned as {other[0]}"
                )
            before = _active(tx, entry.key)
            self._upsert(tx, entry)
            if before != (entry.backend, entry.remote_id, entry.spec_hash):
                self._log(tx, entry, "adopt")

    def set_meta(self, name: str, value: str) -> None:
        """Store a small operator fact (last applied revision, last summary, last error)."""
        with self._db.transaction() as tx:
            tx.execute(
                "INSERT INTO meta (name, value, updated_at) VALUES (?, ?, ?) "
                "ON CONFLICT (name) DO UPDATE SET value = excluded.value, "
                "updated_at = excluded.updated_at",
                (name, value, times.now(self.clock)),
            )

    # -- helpers -----------------------------------------------------------------------------

    def _log(self, tx: sql.Tx, entry: OwnedEntry, op: HistoryOp, *, at: str | None = None) -> None:
        """Append a history row; callers are inside the transaction that changed ``resources``."""
        spec = dict(entry.spec)
        schedule = spec.get("schedule")
        tx.execute(
            f"INSERT INTO history ({_HISTORY_COLUMNS.removeprefix('id, ')}) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                at or stored_or_now(entry.applied_at, self.clock),
                entry.key,
                entry.kind,
                op,
                entry.backend,
                entry.remote_id,
                entry.spec_hash,
                int(specs.enabled(spec)),
                None if schedule is None else str(schedule),
                specs.timezone(spec) if schedule is not None else None,
                entry.revision,
                canonical.canonical_json(spec),
            ),
        )

    def _upsert(self, tx: sql.Tx, entry: OwnedEntry) -> None:
        tx.execute(
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
                stored_or_now(entry.applied_at, self.clock),
                int(entry.protect),
            ),
        )


_CHUNK = 500  # keys per IN list: under every engine's parameter limit


def _active(tx: sql.Tx, key: str) -> tuple[str, str, str] | None:
    row = tx.execute(
        "SELECT backend, remote_id, spec_hash FROM resources WHERE key = ? AND retired = 0",
        (key,),
    ).fetchone()
    return None if row is None else (str(row[0]), str(row[1]), str(row[2]))


def _require_active(entry: OwnedEntry) -> None:
    if entry.retired:
        raise ValueError(
            f"{entry.key}: only active entries are written directly; swap() retires old ones"
        )


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
        applied_at=times.parse(applied),
        protect=bool(protect),
        retired=bool(retired),
    )


def _history_row(row: tuple[Any, ...]) -> HistoryRow:
    """Baseline rows (seeded by the migration in SQL) leave the derived columns to the spec."""
    id_, at, key, kind, op, backend, remote_id, hash_, enabled, schedule, tz, revision, spec = row
    data = json.loads(spec)
    if schedule is None and "schedule" in data:
        schedule, tz = str(data["schedule"]), specs.timezone(data)
    return HistoryRow(
        id=int(id_),
        at=times.parse(at),
        key=key,
        kind=kind,
        op=op,
        backend=backend,
        remote_id=remote_id,
        spec_hash=hash_,
        enabled=specs.enabled(data) if enabled is None else bool(enabled),
        schedule=schedule,
        timezone=tz,
        revision=revision,
        spec=data,
    )
