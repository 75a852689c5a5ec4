"""Run history: every fire of a job or trigger, with what it did and how it ended.

One row per (resource key, run id, attempt), written with insert-or-ignore, because the code that
records a run may execute more than once for the same attempt (Inngest re-invokes a function
for every step; a worker may be retried). A job run keeps one row for all its attempts
(:meth:`RunStore.resume`, :meth:`RunStore.retrying`): Inngest retries a step within one run id.

Slots are claimed in their own table, by the *scheduled fire* that holds them (its instant), so
the two fires Inngest makes for one repeated wall-clock time (DST fall-back) are told apart,
while a rerun or replay of a fire (a new run id, the same scheduled event) is not a repeat.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from planner_operator.core import clock as clock_mod
from planner_operator.core.records import Run
from planner_operator.state import db

COMPONENT = "runs"
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE runs (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        key TEXT NOT NULL,
        kind TEXT NOT NULL,
        run_id TEXT NOT NULL,
        attempt INTEGER NOT NULL DEFAULT 0,
        origin TEXT NOT NULL,
        slot TEXT,
        status TEXT NOT NULL,
        reason TEXT,
        action TEXT,
        rendered TEXT,
        result TEXT,
        error TEXT,
        started_at TEXT NOT NULL,
        finished_at TEXT,
        UNIQUE (key, run_id, attempt)
    );
    CREATE INDEX runs_by_key ON runs (key, id);
    CREATE INDEX runs_by_status ON runs (status, id);
    CREATE TABLE run_slots (
        key TEXT NOT NULL,
        slot TEXT NOT NULL,
        run_id TEXT NOT NULL,
        PRIMARY KEY (key, slot)
    );
    """,
    # v2: trigger runs keep the seed's TriggerEvent and TriggerResult (JSON) beside the run.
    """
    ALTER TABLE runs ADD COLUMN event TEXT;
    ALTER TABLE runs ADD COLUMN trigger_result TEXT;
    CREATE INDEX runs_by_run_id ON runs (run_id);
    """,
    # v3: a slot remembers the scheduled fire (UTC instant) that claimed it, not only its run.
    """
    ALTER TABLE run_slots ADD COLUMN fire TEXT;
    """,
)

Status = Literal["running", "succeeded", "failed", "skipped"]


_COLUMNS = (
    "id, key, kind, run_id, attempt, origin, slot, status, reason, action, rendered, result, "
    "error, started_at, finished_at, event, trigger_result"
)


class RunStore(db.Store):
    COMPONENT = COMPONENT
    MIGRATIONS = MIGRATIONS

    def __init__(self, path: Path | str, *, clock: clock_mod.Clock = clock_mod.SYSTEM) -> None:
        # one connection, used from threads
        super().__init__(path, check_same_thread=False, clock=clock)

    def _now(self) -> str:
        return clock_mod.iso(self.clock, "milliseconds")

    def claim_slot(
        self, key: str, slot: str, run_id: str, *, fire: str | None = None
    ) -> tuple[str, str | None]:
        """Claim a wall-clock slot for a scheduled fire; returns the holder's (run id, fire).

        The caller compares: the same ``fire`` (a retry, a step re-invocation, a rerun of the
        fire) or, for claims recorded without one, the same run id, is the holder itself.
        """
        with self._lock, db.transaction(self._conn):
            self._conn.execute(
                "INSERT OR IGNORE INTO run_slots (key, slot, run_id, fire) VALUES (?, ?, ?, ?)",
                (key, slot, run_id, fire),
            )
            row = self._conn.execute(
                "SELECT run_id, fire FROM run_slots WHERE key = ? AND slot = ?", (key, slot)
            ).fetchone()
        return str(row[0]), None if row[1] is None else str(row[1])

    def start(
        self,
        *,
        key: str,
        kind: str,
        run_id: str,
        attempt: int = 0,
        origin: str,
        slot: str | None = None,
        action: str | None = None,
        rendered: str | None = None,
    ) -> int:
        """Record a run as started (idempotent per key, run id and attempt); returns its row id."""
        with self._lock, db.transaction(self._conn):
            self._conn.execute(
                "INSERT OR IGNORE INTO runs (key, kind, run_id, attempt, origin, slot, status, "
                "action, rendered, started_at) VALUES (?, ?, ?, ?, ?, ?, 'running', ?, ?, ?)",
                (key, kind, run_id, attempt, origin, slot, action, rendered, self._now()),
            )
            row = self._conn.execute(
                "SELECT id FROM runs WHERE key = ? AND run_id = ? AND attempt = ?",
                (key, run_id, attempt),
            ).fetchone()
        return int(row[0])

    def resume(
        self,
        *,
        key: str,
        kind: str,
        run_id: str,
        origin: str,
        slot: str | None = None,
        action: str | None = None,
        rendered: str | None = None,
    ) -> int:
        """The one row of a run, whatever attempt it is on: found by (key, run id), else started.

        Inngest calls a function again for every step and every retry; each call resumes the
        same row rather than starting one per attempt.
        """
        with self._lock:
            row = self._conn.execute(
                "SELECT id FROM runs WHERE key = ? AND run_id = ? ORDER BY id LIMIT 1",
                (key, run_id),
            ).fetchone()
        if row is not None:
            return int(row[0])
        return self.start(
            key=key,
            kind=kind,
            run_id=run_id,
            origin=origin,
            slot=slot,
            action=action,
            rendered=rendered,
        )

    def retrying(self, row_id: int, *, attempt: int, error: str | None = None) -> None:
        """Record that a run is on ``attempt`` (0-based), with the error that made it retry."""
        with self._lock, db.transaction(self._conn):
            self._conn.execute(
                "UPDATE runs SET attempt = MAX(attempt, ?), error = COALESCE(?, error) "
                "WHERE id = ? AND status = 'running'",
                (attempt, error, row_id),
            )

    def settle(
        self, row_id: int, *, status: Status, result: Any = None, error: str | None = None
    ) -> bool:
        """Finish a run still ``running`` (a no-op once it has ended); True if it was running.

        What a re-invoked function calls after its step: the step itself normally recorded the
        end already, and a second writer must not overwrite it.
        """
        with self._lock, db.transaction(self._conn):
            cur = self._conn.execute(
                "UPDATE runs SET status = ?, result = ?, error = ?, finished_at = ? "
                "WHERE id = ? AND status = 'running'",
                (status, _dumps_result(result), error, self._now(), row_id),
            )
        return cur.rowcount > 0

    def finish(
        self,
        row_id: int,
        *,
        status: Status,
        result: Any = None,
        error: str | None = None,
        reason: str | None = None,
        rendered: str | None = None,
        action: str | None = None,
    ) -> None:
        with self._lock, db.transaction(self._conn):
            self._conn.execute(
                "UPDATE runs SET status = ?, result = ?, error = ?, reason = ?, "
                "rendered = COALESCE(?, rendered), action = COALESCE(?, action), "
                "finished_at = ? WHERE id = ?",
                (
                    status,
                    _dumps_result(result),
                    error,
                    reason,
                    rendered,
                    action,
                    self._now(),
                    row_id,
                ),
            )

    def get(self, row_id: int) -> Run | None:
        with self._lock:
            row = self._conn.execute(
                f"SELECT {_COLUMNS} FROM runs WHERE id = ?", (row_id,)
            ).fetchone()
        return None if row is None else _run(row)

    def list(
        self,
        *,
        key: str | None = None,
        prefix: str | None = None,
        status: str | None = None,
        limit: int = 50,
        before_id: int | None = None,
    ) -> list[Run]:
        """Newest first; ``prefix`` selects an agent (``agent/``) or a kind (``agent/jobs/``)."""
        where, params = ["1 = 1"], []
        filters: Mapping[str, Any] = {
            "key = ?": key,
            "key LIKE ? ESCAPE '\\'": _like_prefix(prefix) if prefix else None,
            "status = ?": status,
            "id < ?": before_id,
        }
        for clause, value in filters.items():
            if value is not None:
                where.append(clause)
                params.append(value)
        with self._lock:
            rows = self._conn.execute(
                f"SELECT {_COLUMNS} FROM runs WHERE {' AND '.join(where)} ORDER BY id DESC LIMIT ?",
                (*params, limit),
            ).fetchall()
        return [_run(r) for r in rows]

    def last(self, key: str) -> Run | None:
        runs = self.list(key=key, limit=1)
        return runs[0] if runs else None

    # -- trigger runs (webhook worker) ---------------------------------------------------------

    def attach(self, row_id: int, *, event: Any = None, trigger_result: Any = None) -> None:
        """Store a trigger run's TriggerEvent and/or TriggerResult (JSON-able dicts)."""
        with self._lock, db.transaction(self._conn):
            self._conn.execute(
                "UPDATE runs SET event = COALESCE(?, event), "
                "trigger_result = COALESCE(?, trigger_result) WHERE id = ?",
                (_dumps(event), _dumps(trigger_result), row_id),
            )

    def succeeded(self, key: str, run_id: str) -> Run | None:
        """The succeeded attempt of a run, if any: a re-delivered event must not run twice."""
        with self._lock:
            row = self._conn.execute(
                f"SELECT {_COLUMNS} FROM runs WHERE key = ? AND run_id = ? "
                "AND status = 'succeeded' ORDER BY id LIMIT 1",
                (key, run_id),
            ).fetchone()
        return None if row is None else _run(row)

    def abandon(self, key: str, run_id: str, *, before_attempt: int, reason: str) -> int:
        """Close earlier attempts left ``running`` by a worker that died mid-run."""
        with self._lock, db.transaction(self._conn):
            cur = self._conn.execute(
                "UPDATE runs SET status = 'failed', error = ?, finished_at = ? "
                "WHERE key = ? AND run_id = ? AND attempt < ? AND status = 'running'",
                (reason, self._now(), key, run_id, before_attempt),
            )
        return int(cur.rowcount)


def _like_prefix(prefix: str) -> str:
    return prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def _dumps_result(result: Any) -> str | None:
    return None if result is None else json.dumps(result, default=str)


def _dumps(value: Any) -> str | None:
    return None if value is None else json.dumps(value, default=str, sort_keys=True)


def _run(row: tuple[Any, ...]) -> Run:
    values = list(row)
    for index in (11, 15, 16):  # result, event, trigger_result
        values[index] = json.loads(values[index]) if values[index] is not None else None
    return Run(*values)
