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

import builtins
import json
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from planner_operator.core import clock as clock_mod
from planner_operator.core import times
from planner_operator.core.records import Run
from planner_operator.state import sql

COMPONENT = "runs"
_V1 = """
    CREATE TABLE runs (
        id {identity},
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
"""
# v2: trigger runs keep the seed's TriggerEvent and TriggerResult (JSON) beside the run.
_V2 = """
    ALTER TABLE runs ADD COLUMN event TEXT;
    ALTER TABLE runs ADD COLUMN trigger_result TEXT;
    CREATE INDEX runs_by_run_id ON runs (run_id);
"""
# v3: a slot remembers the scheduled fire (UTC instant) that claimed it, not only its run.
_V3 = """
    ALTER TABLE run_slots ADD COLUMN fire TEXT;
"""
SQLITE_MIGRATIONS: tuple[str, ...] = (
    sql.SQLITE.ddl(_V1),
    _V2,
    _V3,
    # v4: one stored time format (core.times): ``Z`` instead of ``+00:00``.
    f"""
    UPDATE runs SET started_at = COALESCE(strftime('{times.SQLITE_FORMAT}', started_at),
        started_at), finished_at = COALESCE(strftime('{times.SQLITE_FORMAT}', finished_at),
        finished_at);
    """,
)

# PostgreSQL started at SQLite's v4 schema (v4 itself only rewrote SQLite's old rows).
POSTGRES_MIGRATIONS: tuple[str, ...] = (sql.POSTGRES.ddl(_V1 + _V2 + _V3),)

MIGRATIONS = sql.Migrations(SQLITE_MIGRATIONS, POSTGRES_MIGRATIONS)

# The embedded scheduler's counters, in the same database as the runs they count (a component
# of its own since it was added: files made before keep their version rows).
COUNTERS_COMPONENT = "scheduler"
_COUNTERS = """
    CREATE TABLE scheduler_counters (
        key TEXT PRIMARY KEY,
        fires INTEGER NOT NULL DEFAULT 0,
        missed INTEGER NOT NULL DEFAULT 0,
        overlap_skipped INTEGER NOT NULL DEFAULT 0,
        last_slot TEXT
    );
"""
COUNTERS_MIGRATIONS = sql.Migrations((_COUNTERS,), (_COUNTERS,))

Status = Literal["running", "waiting", "succeeded", "failed", "cancelled", "skipped"]
# Not ended yet: ``waiting`` is a run its platform suspended (Mastra), polled until it ends.
OPEN = ("running", "waiting")


_COLUMNS = (
    "id, key, kind, run_id, attempt, origin, slot, status, reason, action, rendered, result, "
    "error, started_at, finished_at, event, trigger_result"
)


@dataclass(frozen=True)
class JobCounters:
    """What the embedded scheduler counted for one job (``status``, metrics)."""

    fires: int = 0
    missed: int = 0
    overlap_skipped: int = 0


@dataclass(frozen=True)
class FireCount:
    """What one scheduler step adds to a job's counters, and the skipped slots it writes as
    (slot, reason) run rows; ``slot`` is the last slot fired, if this step fired one."""

    fires: int = 0
    missed: int = 0
    overlap_skipped: int = 0
    slot: str | None = None
    skipped: Sequence[tuple[str, str]] = ()


@dataclass(frozen=True)
class RunDelta:
    """Run history since a metrics scrape's last look (see ``read.metrics_state.RunTally``)."""

    high: int  # the newest row id now
    settled: list[tuple[int, str | None, str | None]]  # (id, status|None if gone, finished_at)
    finished: list[tuple[str, str, str, str, int, str | None]]  # key kind origin status n last
    started: list[tuple[int, str, str, str]]  # (id, key, kind, origin) of new running rows


class RunStore(sql.Store):
    """Run history; one store shared by the server's threads (and replicas on PostgreSQL).

    Starting a run is insert-or-ignore on (key, run id, attempt), a unique key every replica
    shares, so two processes recording the same attempt get one row.
    """

    COMPONENT = COMPONENT
    MIGRATIONS = MIGRATIONS

    def __init__(
        self, where: Path | str | sql.Database, *, clock: clock_mod.Clock = clock_mod.SYSTEM
    ) -> None:
        super().__init__(where, clock=clock)
        try:
            self._db.migrate(COUNTERS_COMPONENT, COUNTERS_MIGRATIONS)
        except BaseException:
            self._db.close()
            raise

    def _now(self) -> str:
        return times.now(self.clock)

    def claim_slot(
        self, key: str, slot: str, run_id: str, *, fire: str | None = None
    ) -> tuple[str, str | None]:
        """Claim a wall-clock slot for a scheduled fire; returns the holder's (run id, fire).

        The caller compares: the same ``fire`` (a retry, a step re-invocation, a rerun of the
        fire) or, for claims recorded without one, the same run id, is the holder itself.
        """
        with self._db.transaction(serial=False) as tx:
            tx.execute(
                "INSERT INTO run_slots (key, slot, run_id, fire) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (key, slot) DO NOTHING",
                (key, slot, run_id, fire),
            )
            row = tx.execute(
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
        event: Any = None,
    ) -> int:
        """Record a run as started (idempotent per key, run id and attempt); returns its row id.

        ``event`` (a trigger run's TriggerEvent) goes into the same insert: the webhook worker
        starts one run per delivery, and every transaction saved there is drain rate.
        """
        with self._db.transaction(serial=False) as tx:
            tx.execute(
                "INSERT INTO runs (key, kind, run_id, attempt, origin, slot, status, "
                "action, rendered, started_at, event) "
                "VALUES (?, ?, ?, ?, ?, ?, 'running', ?, ?, ?, ?) "
                "ON CONFLICT (key, run_id, attempt) DO NOTHING",
                (
                    *(key, kind, run_id, attempt, origin, slot, action, rendered),
                    *(self._now(), _dumps(event)),
                ),
            )
            row = tx.execute(
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
        rows = self._db.query(
            "SELECT id FROM runs WHERE key = ? AND run_id = ? ORDER BY id LIMIT 1", (key, run_id)
        )
        if rows:
            return int(rows[0][0])
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
        with self._db.transaction(serial=False) as tx:
            tx.execute(
                "UPDATE runs SET attempt = CASE WHEN attempt > ? THEN attempt ELSE ? END, "
                "error = COALESCE(?, error) WHERE id = ? AND status = 'running'",
                (attempt, attempt, error, row_id),
            )

    def settle(
        self,
        row_id: int,
        *,
        status: Status,
        result: Any = None,
        error: str | None = None,
        trigger_result: Any = None,
        was: Status = "running",
    ) -> bool:
        """Finish a run still in status ``was`` (a no-op once it has ended); True if it was.

        What a re-invoked function calls after its step: the step itself normally recorded the
        end already, and a second writer must not overwrite it. The poller of waiting runs
        settles with ``was="waiting"``, so two replicas polling one run end it once.
        """
        with self._db.transaction(serial=False) as tx:
            cur = tx.execute(
                "UPDATE runs SET status = ?, result = ?, error = ?, "
                "trigger_result = COALESCE(?, trigger_result), finished_at = ? "
                "WHERE id = ? AND status = ?",
                (
                    *(status, _dumps_result(result), error, _dumps(trigger_result)),
                    *(self._now(), row_id, was),
                ),
            )
        return cur.rowcount > 0

    def wait(self, row_id: int, *, result: Any, note: str | None = None) -> bool:
        """Mark a run not yet ended as ``waiting`` (suspended on its platform), ``result``
        saying what it awaits and how to poll it; False if the run has ended meanwhile."""
        with self._db.transaction(serial=False) as tx:
            cur = tx.execute(
                "UPDATE runs SET status = 'waiting', result = ?, error = ? "
                "WHERE id = ? AND status IN ('running', 'waiting')",
                (_dumps_result(result), note, row_id),
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
        trigger_result: Any = None,
    ) -> None:
        """End a run; a trigger run's TriggerResult is stored in the same update."""
        with self._db.transaction(serial=False) as tx:
            tx.execute(
                "UPDATE runs SET status = ?, result = ?, error = ?, reason = ?, "
                "rendered = COALESCE(?, rendered), action = COALESCE(?, action), "
                "trigger_result = COALESCE(?, trigger_result), finished_at = ? WHERE id = ?",
                (
                    *(status, _dumps_result(result), error, reason, rendered, action),
                    *(_dumps(trigger_result), self._now(), row_id),
                ),
            )

    def get(self, row_id: int) -> Run | None:
        rows = self._db.query(f"SELECT {_COLUMNS} FROM runs WHERE id = ?", (row_id,))
        return _run(rows[0]) if rows else None

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
        rows = self._db.query(
            f"SELECT {_COLUMNS} FROM runs WHERE {' AND '.join(where)} ORDER BY id DESC LIMIT ?",
            (*params, limit),
        )
        return [_run(r) for r in rows]

    def last(self, key: str) -> Run | None:
        runs = self.list(key=key, limit=1)
        return runs[0] if runs else None

    def last_of(self, keys: Sequence[str]) -> dict[str, Run]:
        """``last(key)`` of each of ``keys`` that has runs, one query per 500 keys (a page of
        100 jobs used to be 100 queries)."""
        out: dict[str, Run] = {}
        for start in range(0, len(keys), 500):
            chunk = tuple(keys[start : start + 500])
            marks = ", ".join("?" * len(chunk))
            rows = self._db.query(
                f"SELECT {_COLUMNS} FROM runs WHERE id IN "
                f"(SELECT MAX(id) FROM runs WHERE key IN ({marks}) GROUP BY key)",
                chunk,
            )
            out.update((run.key, run) for run in map(_run, rows))
        return out

    def last_slots(self, keys: Iterable[str]) -> dict[str, str | None]:
        """``last(key).slot`` of each of ``keys`` that has runs, in one read: the scheduler's
        restart asks for 10,000 jobs at once, not in 10,000 queries."""
        wanted = set(keys)
        rows = self._db.query(
            "SELECT r.key, r.slot FROM runs r JOIN "
            "(SELECT key, MAX(id) AS id FROM runs GROUP BY key) newest ON r.id = newest.id"
        )
        return {str(k): s for k, s in rows if k in wanted}

    def for_delivery(self, delivery_id: str) -> builtins.list[Run]:
        """Runs whose run id is the delivery id or one of its replays, oldest first."""
        rows = self._db.query(
            f"SELECT {_COLUMNS} FROM runs WHERE run_id = ? OR run_id LIKE ? ESCAPE '\\' "
            "ORDER BY id",
            (delivery_id, _like_prefix(delivery_id).removesuffix("%") + "~replay%"),
        )
        return [_run(r) for r in rows]

    # -- trigger runs (webhook worker) ---------------------------------------------------------

    def attach(self, row_id: int, *, event: Any = None, trigger_result: Any = None) -> None:
        """Store a trigger run's TriggerEvent and/or TriggerResult (JSON-able dicts)."""
        with self._db.transaction(serial=False) as tx:
            tx.execute(
                "UPDATE runs SET event = COALESCE(?, event), "
                "trigger_result = COALESCE(?, trigger_result) WHERE id = ?",
                (_dumps(event), _dumps(trigger_result), row_id),
            )

    def succeeded(self, key: str, run_id: str) -> Run | None:
        """The succeeded attempt of a run, if any: a re-delivered event must not run twice."""
        rows = self._db.query(
            f"SELECT {_COLUMNS} FROM runs WHERE key = ? AND run_id = ? "
            "AND status = 'succeeded' ORDER BY id LIMIT 1",
            (key, run_id),
        )
        return _run(rows[0]) if rows else None

    def waiting_for(self, key: str, run_id: str) -> Run | None:
        """The waiting attempt of a run, if any: its poller owns it, a re-delivery must not
        start another attempt beside it."""
        rows = self._db.query(
            f"SELECT {_COLUMNS} FROM runs WHERE key = ? AND run_id = ? "
            "AND status = 'waiting' ORDER BY id LIMIT 1",
            (key, run_id),
        )
        return _run(rows[0]) if rows else None

    def waiting_counts(self) -> dict[str, int]:
        """Waiting runs per kind (``/metrics``)."""
        rows = self._db.query(
            "SELECT kind, COUNT(*) FROM runs WHERE status = 'waiting' GROUP BY kind"
        )
        return {str(k): int(n) for k, n in rows}

    def abandon(self, key: str, run_id: str, *, before_attempt: int, reason: str) -> int:
        """Close earlier attempts left ``running`` by a worker that died mid-run."""
        with self._db.transaction(serial=False) as tx:
            cur = tx.execute(
                "UPDATE runs SET status = 'failed', error = ?, finished_at = ? "
                "WHERE key = ? AND run_id = ? AND attempt < ? AND status = 'running'",
                (reason, self._now(), key, run_id, before_attempt),
            )
        return int(cur.rowcount)

    # -- the embedded scheduler's counters -------------------------------------------------------

    def count_fires(self, key: str, count: FireCount) -> None:
        """Add to a job's counters and write its ``skipped`` (slot, reason) run rows, in one
        transaction: a restart writes a job's missed slots at once, not one commit per row."""
        at = self._now()
        with self._db.transaction() as tx:
            for missed_slot, why in count.skipped:
                tx.execute(
                    "INSERT INTO runs (key, kind, run_id, attempt, origin, slot, status, "
                    "reason, started_at, finished_at) VALUES (?, 'job', ?, 0, 'scheduler', ?, "
                    "'skipped', ?, ?, ?)",
                    (key, f"skip-{uuid.uuid4().hex[:12]}", missed_slot, why, at, at),
                )
            tx.execute(
                "INSERT INTO scheduler_counters (key, fires, missed, overlap_skipped, last_slot) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT (key) DO UPDATE SET "
                "fires = scheduler_counters.fires + excluded.fires, "
                "missed = scheduler_counters.missed + excluded.missed, "
                "overlap_skipped = scheduler_counters.overlap_skipped + excluded.overlap_skipped, "
                "last_slot = COALESCE(excluded.last_slot, scheduler_counters.last_slot)",
                (key, count.fires, count.missed, count.overlap_skipped, count.slot),
            )

    def counters(self, *, keys: Sequence[str] | None = None) -> dict[str, JobCounters]:
        """The scheduler's counters per job key (``status``, the API, metrics); ``keys``: only
        those (a page of the API needs a hundred, not every job's)."""
        select = "SELECT key, fires, missed, overlap_skipped FROM scheduler_counters"
        if keys is not None:
            if not keys:
                return {}
            rows = []
            for at in range(0, len(keys), 500):  # under every engine's bound-parameter limit
                chunk = list(keys[at : at + 500])
                marks = ",".join("?" * len(chunk))
                rows += self._db.query(f"{select} WHERE key IN ({marks})", chunk)
        else:
            rows = self._db.query(select)
        return {str(r[0]): JobCounters(int(r[1]), int(r[2]), int(r[3])) for r in rows}

    # -- metrics ---------------------------------------------------------------------------------

    def delta(self, *, upto: int, watching: Sequence[int]) -> RunDelta:
        """What changed since row ``upto``: rows ``watching`` (running last time) that settled,
        finished rows added since, grouped, and rows added since that still run. One snapshot,
        so a row is never counted twice; it reads a few rows, however long the history."""
        with self._db.snapshot() as tx:
            top = tx.execute("SELECT MAX(id) FROM runs").fetchone()
            high = int(top[0] or 0) if top else 0
            settled: list[tuple[int, str | None, str | None]] = []
            ids = list(watching)
            for start in range(0, len(ids), 500):
                chunk = ids[start : start + 500]
                marks = ",".join("?" * len(chunk))
                found = {
                    int(i): (status, at)
                    for i, status, at in tx.execute(
                        f"SELECT id, status, finished_at FROM runs WHERE id IN ({marks})", chunk
                    ).fetchall()
                }
                for row_id in chunk:
                    status, at = found.get(row_id, (None, None))
                    if status not in OPEN:
                        settled.append((row_id, status, at))
            finished = tx.execute(
                "SELECT key, kind, origin, status, COUNT(*), MAX(finished_at) FROM runs "
                "WHERE id > ? AND id <= ? AND status NOT IN ('running', 'waiting') "
                "GROUP BY key, kind, origin, status",
                (upto, high),
            ).fetchall()
            started = tx.execute(
                "SELECT id, key, kind, origin FROM runs "
                "WHERE id > ? AND id <= ? AND status IN ('running', 'waiting')",
                (upto, high),
            ).fetchall()
        return RunDelta(
            high,
            settled,
            [(str(k), str(kd), str(o), str(st), int(n), at) for k, kd, o, st, n, at in finished],
            [(int(i), str(k), str(kd), str(o)) for i, k, kd, o in started],
        )


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
