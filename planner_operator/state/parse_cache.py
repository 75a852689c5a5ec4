"""Parse results kept by content: what loading an agent file gave, so it is not parsed again.

A no-op reconcile used to spend most of its time parsing YAML it had parsed the cycle before.
The reconcile layer (``reconcile.parsecache``) keys each file's checked result by its content
(the git blob id), its name and the loader's version, and keeps it here as opaque JSON text
(``config.cached``). The store knows nothing of agent files: a row is a key, the version that
wrote it and the text.

Everything here can be thrown away: a missing or unreadable row only means the file is parsed
again. So writes are batched, never block a reconcile on contention (a row written twice is the
same row), and old rows go: a write of a new loader version drops every row of other versions,
and the table is kept to :data:`MAX_ROWS` (oldest first). On one machine it is a SQLite file of
its own (``<state dir>/cache.db``, safe to delete); with ``PLANNER_DATABASE_URL`` a table every
process shares, so a CI plan reuses what the applier parsed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from planner_operator.core import times
from planner_operator.state import sql

COMPONENT = "parse_cache"
MAX_ROWS = 50_000  # 25x the 2,000-file benchmark; a row is a few KB
_BATCH = 500  # keys per IN (...) read: well under SQLite's 32,766 parameters
_V1 = """
    CREATE TABLE parse_results (
        key TEXT PRIMARY KEY,
        version TEXT NOT NULL,
        result TEXT NOT NULL,
        stored_at TEXT NOT NULL
    );
    CREATE INDEX parse_results_by_age ON parse_results (stored_at);
"""
MIGRATIONS = sql.Migrations((_V1,), (_V1,))


class ParseCache(sql.Store):
    """Results by key; ``get`` reads many at once, ``put`` writes many in one transaction."""

    COMPONENT = COMPONENT
    MIGRATIONS = MIGRATIONS

    def get(self, keys: Iterable[str]) -> dict[str, str]:
        """The stored text of each of ``keys`` that has a row (in reads of ``_BATCH`` keys)."""
        wanted = list(dict.fromkeys(keys))
        found: dict[str, str] = {}
        for start in range(0, len(wanted), _BATCH):
            chunk = wanted[start : start + _BATCH]
            marks = ", ".join("?" * len(chunk))
            rows = self._db.query(
                f"SELECT key, result FROM parse_results WHERE key IN ({marks})", chunk
            )
            found.update((str(k), str(r)) for k, r in rows)
        return found

    def put(self, version: str, results: Mapping[str, str]) -> None:
        """Keep ``results`` (key -> text) for ``version``; rows of other versions go."""
        if not results:
            return
        at = times.now(self.clock)
        with self._db.transaction() as tx:
            tx.execute("DELETE FROM parse_results WHERE version <> ?", (version,))
            for key, text in results.items():
                tx.execute(
                    "INSERT INTO parse_results (key, version, result, stored_at) "
                    "VALUES (?, ?, ?, ?) ON CONFLICT (key) DO UPDATE SET "
                    "version = excluded.version, result = excluded.result, "
                    "stored_at = excluded.stored_at",
                    (key, version, text, at),
                )
            count = int(tx.execute("SELECT COUNT(*) FROM parse_results").fetchone()[0])
            if count > MAX_ROWS:
                tx.execute(
                    "DELETE FROM parse_results WHERE key IN (SELECT key FROM parse_results "
                    "ORDER BY stored_at, key LIMIT ?)",
                    (count - MAX_ROWS,),
                )

    def count(self) -> int:
        return int(self._db.query("SELECT COUNT(*) FROM parse_results")[0][0])

    def clear(self) -> None:
        with self._db.transaction() as tx:
            tx.execute("DELETE FROM parse_results")
