"""The served job table: the jobs applied to Inngest, which ``serve`` registers as functions.

Inngest has no API to create one function; an app declares its whole function set when it is
synced. So the applier writes the applied jobs here and every serving replica builds its
function set from this table (a shared one on PostgreSQL), with a version bumped on every change
so a server knows when to rebuild and re-sync, and the version last synced successfully.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from planner_operator.core import times
from planner_operator.state import sql

COMPONENT = "inngest_backend"
_STATE = """
    CREATE TABLE inngest_state (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        version INTEGER NOT NULL,
        synced_version INTEGER NOT NULL
    );
    INSERT INTO inngest_state VALUES (1, 0, 0);
"""
_V1 = (
    """
    CREATE TABLE inngest_jobs (
        key TEXT PRIMARY KEY,
        fn_id TEXT NOT NULL UNIQUE,
        spec_json TEXT NOT NULL,
        updated_at TEXT NOT NULL
    );
    """
    + _STATE
)
MIGRATIONS = sql.Migrations(
    (
        _V1,
        # v2: one stored time format (core.times)
        f"UPDATE inngest_jobs SET updated_at = COALESCE(strftime('{times.SQLITE_FORMAT}', "
        "updated_at), updated_at);",
    ),
    (_V1,),
)


@dataclass(frozen=True)
class ServedJob:
    """One applied job as the serving app registers it."""

    key: str
    spec: Mapping[str, Any]


class ServedJobs(sql.Store):
    """The applied jobs, their function ids, and the table's (synced) version."""

    COMPONENT = COMPONENT
    MIGRATIONS = MIGRATIONS

    def jobs(self) -> list[ServedJob]:
        rows = self._db.query("SELECT key, spec_json FROM inngest_jobs ORDER BY key")
        return [ServedJob(str(k), json.loads(s)) for k, s in rows]

    def get(self, key: str) -> ServedJob | None:
        rows = self._db.query("SELECT key, spec_json FROM inngest_jobs WHERE key = ?", (key,))
        return ServedJob(str(rows[0][0]), json.loads(rows[0][1])) if rows else None

    def put(self, key: str, fn_id: str, spec: Mapping[str, Any]) -> None:
        with self._db.transaction() as tx:
            tx.execute(
                "INSERT INTO inngest_jobs (key, fn_id, spec_json, updated_at) "
                "VALUES (?, ?, ?, ?) ON CONFLICT (key) DO UPDATE SET "
                "spec_json = excluded.spec_json, updated_at = excluded.updated_at",
                (key, fn_id, json.dumps(dict(spec), sort_keys=True), times.now(self.clock)),
            )
            tx.execute("UPDATE inngest_state SET version = version + 1")

    def remove_fn(self, fn_id: str) -> bool:
        with self._db.transaction() as tx:
            gone = tx.execute("DELETE FROM inngest_jobs WHERE fn_id = ?", (fn_id,)).rowcount
            tx.execute("UPDATE inngest_state SET version = version + 1")
        return gone > 0

    def key_of(self, fn_id: str) -> str | None:
        rows = self._db.query("SELECT key FROM inngest_jobs WHERE fn_id = ?", (fn_id,))
        return str(rows[0][0]) if rows else None

    def versions(self) -> tuple[int, int]:
        """(current version, version last synced successfully)."""
        rows = self._db.query("SELECT version, synced_version FROM inngest_state")
        return int(rows[0][0]), int(rows[0][1])

    def mark_synced(self, version: int) -> None:
        with self._db.transaction() as tx:
            tx.execute("UPDATE inngest_state SET synced_version = ?", (version,))
