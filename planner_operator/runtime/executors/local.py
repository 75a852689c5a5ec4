"""The embedded executor: a local outbox of chat threads and workflow runs (SQLite).

With no agent platform configured, "start a chat thread" means recording the thread, its
opening message and context where ``status`` and the dashboard can show it, so a new user sees
exactly what each job and trigger would send. Calls are idempotent by the run key. Results say
``"sink": "local"`` (see :attr:`LocalOutbox.sink`), so run history never passes a local thread
off as one the agent platform started.

The same file is the journal of locally run workflows (``executors.workflows``): a workflow's
result is stored under its run key, so a retried or re-delivered run returns the first result
instead of running the workflow again.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from planner_operator.core import clock as clock_mod
from planner_operator.core import times
from planner_operator.state import sql

COMPONENT = "outbox"
SQLITE_MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE outbox_threads (
        thread_id TEXT PRIMARY KEY,
        run_key TEXT UNIQUE,
        agent TEXT NOT NULL,
        message TEXT NOT NULL,
        context TEXT NOT NULL,
        created_at TEXT NOT NULL
    );
    CREATE TABLE outbox_workflows (
        id TEXT PRIMARY KEY,
        run_key TEXT UNIQUE,
        workflow TEXT NOT NULL,
        input TEXT NOT NULL,
        context TEXT NOT NULL,
        created_at TEXT NOT NULL
    );
    """,
    # v2: results of workflows run in-process (the journal that makes them idempotent)
    """
    ALTER TABLE outbox_workflows ADD COLUMN result TEXT;
    """,
    # v3: one stored time format (core.times)
    " ".join(
        f"UPDATE {table} SET created_at = COALESCE(strftime('{times.SQLITE_FORMAT}', "
        "created_at), created_at);"
        for table in ("outbox_threads", "outbox_workflows")
    ),
)
# A stand-in for the agent platform on one machine: SQLite only (it lists by rowid).
MIGRATIONS = sql.Migrations(SQLITE_MIGRATIONS, ())


class LocalOutbox(sql.Store):
    """Both executor Protocols over one SQLite file."""

    sink = "local"  # labels results: no agent platform saw these threads

    COMPONENT = COMPONENT
    MIGRATIONS = MIGRATIONS

    def __init__(self, path: Path | str, *, clock: clock_mod.Clock = clock_mod.SYSTEM) -> None:
        super().__init__(path, clock=clock)

    def start_thread(self, *, agent: str, message: str, context: Mapping[str, Any]) -> str:
        run_key = context.get("run_key")
        with self._db.transaction() as tx:
            if run_key is not None:
                row = tx.execute(
                    "SELECT thread_id FROM outbox_threads WHERE run_key = ?", (run_key,)
                ).fetchone()
                if row is not None:
                    return str(row[0])
            thread_id = f"thr_{secrets.token_hex(8)}"
            tx.execute(
                "INSERT INTO outbox_threads VALUES (?, ?, ?, ?, ?, ?)",
                (thread_id, run_key, agent, message, _json(context), times.now(self.clock)),
            )
        return thread_id

    def run(self, *, workflow: str, input: Mapping[str, Any], context: Mapping[str, Any]) -> Any:
        run_key = context.get("run_key")
        with self._db.transaction() as tx:
            if run_key is not None:
                row = tx.execute(
                    "SELECT id FROM outbox_workflows WHERE run_key = ?", (run_key,)
                ).fetchone()
                if row is not None:
                    return {"workflow_run_id": str(row[0]), "status": "queued"}
            run_id = f"wfr_{secrets.token_hex(8)}"
            tx.execute(
                "INSERT INTO outbox_workflows (id, run_key, workflow, input, context, "
                "created_at) VALUES (?, ?, ?, ?, ?, ?)",
                (run_id, run_key, workflow, _json(input), _json(context), times.now(self.clock)),
            )
        return {"workflow_run_id": run_id, "status": "queued"}

    def workflow_result(self, run_key: str) -> tuple[bool, Any]:
        """``(True, result)`` when a local workflow already ran under ``run_key``."""
        rows = self._db.query(
            "SELECT result FROM outbox_workflows WHERE run_key = ? AND result IS NOT NULL",
            (run_key,),
        )
        return (True, json.loads(rows[0][0])) if rows else (False, None)

    def record_workflow(
        self,
        *,
        workflow: str,
        input: Mapping[str, Any],
        context: Mapping[str, Any],
        result: Any,
    ) -> Any:
        """Journal a finished local workflow run; returns the result stored first for its key."""
        run_key = context.get("run_key")
        with self._db.transaction() as tx:
            tx.execute(
                "INSERT INTO outbox_workflows "
                "(id, run_key, workflow, input, context, created_at, result) "
                "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                (
                    f"wfr_{secrets.token_hex(8)}",
                    run_key,
                    workflow,
                    _json(input),
                    _json(context),
                    times.now(self.clock),
                    json.dumps(result, sort_keys=True, default=str),
                ),
            )
            if run_key is None:
                return result
            row = tx.execute(
                "SELECT result FROM outbox_workflows WHERE run_key = ?", (run_key,)
            ).fetchone()
        return result if row is None or row[0] is None else json.loads(row[0])

    def threads(self, *, agent: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
        query = "SELECT thread_id, agent, message, context, created_at FROM outbox_threads"
        params: tuple[Any, ...] = ()
        if agent is not None:
            query += " WHERE agent = ?"
            params = (agent,)
        rows = self._db.query(query + " ORDER BY rowid DESC LIMIT ?", (*params, limit))
        return [
            {
                "thread_id": r[0],
                "agent": r[1],
                "message": r[2],
                "context": json.loads(r[3]),
                "created_at": r[4],
            }
            for r in rows
        ]

    def workflow_runs(self, *, limit: int = 50) -> list[dict[str, Any]]:
        rows = self._db.query(
            "SELECT id, workflow, input, context, created_at FROM outbox_workflows "
            "ORDER BY rowid DESC LIMIT ?",
            (limit,),
        )
        return [
            {
                "id": r[0],
                "workflow": r[1],
                "input": json.loads(r[2]),
                "context": json.loads(r[3]),
                "created_at": r[4],
            }
            for r in rows
        ]


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)
