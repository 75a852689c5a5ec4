"""The embedded backend: jobs and triggers kept in a local SQLite file, no cloud needed.

It is the default when no Inngest or Composio is configured, and the reference implementation of
the backend Protocols, so it mimics the remote semantics the planner must cope with rather than
being maximally convenient: ids are random (a re-created object gets a new id), a trigger's
``REPLACE_FIELDS`` are part of its identity (changing one means a new object, as in Composio), and
deletes of missing objects fail with ``NotFound``.

Two extras exist for tests and the status page: :class:`LocalFaults` injects the failures apply
must survive (429, 5xx, a write that committed but timed out) without mocks, and ``set_state``
simulates out-of-band changes (someone pausing a job in a dashboard) so drift can be exercised.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from planner_operator.backends.base import (
    REPLACE_FIELDS,
    BackendInfo,
    Page,
    RemoteObject,
    RemoteState,
    ScheduleBackend,
    TriggerBackend,
)
from planner_operator.core import canonical, specs, times
from planner_operator.core import clock as clock_mod
from planner_operator.core.keys import Kind
from planner_operator.errors import BackendError, Conflict, NotFound, UnknownOutcome
from planner_operator.state import sql

NAME = "local"
COMPONENT = "local_backend"

# v3 (PostgreSQL v2): a counter every write moves, so a reader can tell in one query that
# nothing changed instead of listing 20,000 objects (``version``); timestamps cannot: two
# writes may share a millisecond, and a manual clock never moves
_CHANGES = (
    "CREATE TABLE local_changes (name TEXT PRIMARY KEY, n BIGINT NOT NULL);"
    " INSERT INTO local_changes (name, n) VALUES ('local_jobs', 0), ('local_triggers', 0);"
)

# Both tables in one component: the two classes share a file and must agree on its schema.
SQLITE_MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE local_jobs (
        remote_id TEXT PRIMARY KEY,
        key TEXT NOT NULL UNIQUE,
        spec_json TEXT NOT NULL,
        state TEXT NOT NULL,
        reason TEXT,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
    );
    CREATE TABLE local_triggers (
        remote_id TEXT PRIMARY KEY,
        key TEXT NOT NULL,
        identity TEXT NOT NULL,
        spec_json TEXT NOT NULL,
        state TEXT NOT NULL,
        reason TEXT,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        UNIQUE (key, identity)
    );
    """,
    # v2: one stored time format (core.times)
    " ".join(
        f"UPDATE {table} SET {column} = COALESCE(strftime('{times.SQLITE_FORMAT}', {column}), "
        f"{column});"
        for table in ("local_jobs", "local_triggers")
        for column in ("created_at", "updated_at")
    ),
    _CHANGES,
)
# The embedded backend stands in for a remote system; its tables are portable SQL, so the same
# schema serves on the shared database (v1 there is SQLite's v2).
MIGRATIONS = sql.Migrations(SQLITE_MIGRATIONS, (SQLITE_MIGRATIONS[0], _CHANGES))


@dataclass
class LocalFaults:
    """Failures to inject into the next calls; all off by default.

    * ``fail_next``: each write call (create/update/delete) pops the first error and raises it
      *instead of* writing: a 429, a 500, a refused request.
    * ``commit_then_fail``: the next write is performed and committed, then ``UnknownOutcome`` is
      raised (the timeout whose write actually landed); resets itself after firing.
    * ``fail_list``: each ``list`` call pops and raises the first error (remote unreachable).
    * ``calls``: every write attempted, as ``(operation, key or remote id)``, so a test can count
      retries without wrapping the backend.
    """

    fail_next: list[BackendError] = field(default_factory=list)
    commit_then_fail: bool = False
    fail_list: list[BackendError] = field(default_factory=list)
    calls: list[tuple[str, str]] = field(default_factory=list)

    def before_write(self, operation: str, target: str) -> None:
        self.calls.append((operation, target))
        if self.fail_next:
            raise self.fail_next.pop(0)

    def after_write(self, operation: str, target: str) -> None:
        if self.commit_then_fail:
            self.commit_then_fail = False
            raise UnknownOutcome(f"{operation} {target}: timed out (injected)", backend=NAME)

    def before_list(self) -> None:
        if self.fail_list:
            raise self.fail_list.pop(0)


class _LocalBackend(sql.Store):
    """What jobs and triggers share; subclasses say how an object is identified."""

    kind: ClassVar[Kind]
    table: ClassVar[str]
    prefix: ClassVar[str]
    off_state: ClassVar[RemoteState]

    COMPONENT = COMPONENT
    MIGRATIONS = MIGRATIONS

    def __init__(
        self,
        where: Path | str | sql.Database,
        *,
        faults: LocalFaults | None = None,
        clock: clock_mod.Clock = clock_mod.SYSTEM,
    ) -> None:
        super().__init__(where, clock=clock)
        self.faults = faults or LocalFaults()

    @property
    def info(self) -> BackendInfo:
        return BackendInfo(name=NAME, kind=self.kind, detail=self.where)

    def version(self) -> tuple[int, str]:
        """A cheap mark that moves with every create, update, delete and state change of the
        table (a counter each write transaction moves): how the embedded scheduler
        notices an apply and the read side skips a re-read of unchanged objects, on SQLite and
        on the shared database alike."""
        rows = self._db.query("SELECT n FROM local_changes WHERE name = ?", (self.table,))
        return (int(rows[0][0]) if rows else 0), self.table

    # -- Protocol ----------------------------------------------------------------------------

    def list(self, *, cursor: str | None = None, limit: int = 100) -> Page:
        """Objects ordered by remote id; the cursor is the last id of the previous page."""
        if limit < 1:
            raise ValueError(f"limit must be at least 1, got {limit}")
        self.faults.before_list()
        rows = self._db.query(
            f"SELECT remote_id, key, spec_json, state, reason FROM {self.table} "
            "WHERE remote_id > ? ORDER BY remote_id LIMIT ?",
            (cursor or "", limit + 1),
        )
        more = len(rows) > limit
        items = tuple(self._object(row) for row in rows[:limit])
        return Page(items=items, next_cursor=items[-1].remote_id if more else None)

    def create(self, key: str, spec: Mapping[str, Any]) -> RemoteObject:
        """Upsert on the object's identity: a retry after a lost response finds the first one."""
        self.faults.before_write("create", key)
        spec_json = canonical.canonical_json(dict(spec))
        now = times.now(self.clock)
        with self._db.transaction() as tx:
            remote_id = self._find(tx, key, spec)
            if remote_id is None:
                remote_id = f"{self.prefix}_{secrets.token_hex(6)}"
                self._insert(tx, remote_id, key, spec, spec_json, now)
            else:
                tx.execute(
                    f"UPDATE {self.table} SET spec_json = ?, state = ?, reason = NULL, "
                    "updated_at = ? WHERE remote_id = ?",
                    (spec_json, self._state_of(spec), now, remote_id),
                )
            _changed(tx, self.table)
        self.faults.after_write("create", key)
        return self._get(remote_id)

    def update(self, remote_id: str, key: str, spec: Mapping[str, Any]) -> RemoteObject:
        """Change an object in place; refuses (``Conflict``) what would need a replace."""
        self.faults.before_write("update", remote_id)
        with self._db.transaction() as tx:
            row = tx.execute(
                f"SELECT key, spec_json FROM {self.table} WHERE remote_id = ?", (remote_id,)
            ).fetchone()
            if row is None:
                raise NotFound(f"{self.kind} {remote_id} does not exist", backend=NAME)
            self._check_update(tx, remote_id, key, json.loads(row[1]), spec)
            tx.execute(
                f"UPDATE {self.table} SET key = ?, spec_json = ?, state = ?, reason = NULL, "
                "updated_at = ? WHERE remote_id = ?",
                (
                    key,
                    canonical.canonical_json(dict(spec)),
                    self._state_of(spec),
                    times.now(self.clock),
                    remote_id,
                ),
            )
            _changed(tx, self.table)
        self.faults.after_write("update", remote_id)
        return self._get(remote_id)

    def delete(self, remote_id: str) -> None:
        self.faults.before_write("delete", remote_id)
        with self._db.transaction() as tx:
            gone = tx.execute(
                f"DELETE FROM {self.table} WHERE remote_id = ?", (remote_id,)
            ).rowcount
            _changed(tx, self.table)
        if not gone:
            raise NotFound(f"{self.kind} {remote_id} does not exist", backend=NAME)
        self.faults.after_write("delete", remote_id)

    # -- out-of-band changes -----------------------------------------------------------------

    def set_state(self, remote_id: str, state: RemoteState, reason: str | None = None) -> None:
        """Change an object behind the operator's back, as a dashboard user or an outage would.

        Pausing/disabling or re-activating also flips ``spec["enabled"]`` so the object stays
        self-consistent and the planner sees the drift on the field it compares; ``"error"``
        leaves the spec alone and only reports ``reason``.
        """
        allowed = ("active", self.off_state, "error")
        if state not in allowed:
            raise ValueError(f"a {self.kind} state is one of {allowed}, not {state!r}")
        with self._db.transaction() as tx:
            row = tx.execute(
                f"SELECT spec_json FROM {self.table} WHERE remote_id = ?", (remote_id,)
            ).fetchone()
            if row is None:
                raise NotFound(f"{self.kind} {remote_id} does not exist", backend=NAME)
            spec = json.loads(row[0])
            if state == self.off_state:
                spec["enabled"] = False
            elif state == "active" and not specs.enabled(spec):
                spec["enabled"] = True
            tx.execute(
                f"UPDATE {self.table} SET spec_json = ?, state = ?, reason = ?, updated_at = ? "
                "WHERE remote_id = ?",
                (canonical.canonical_json(spec), state, reason, times.now(self.clock), remote_id),
            )
            _changed(tx, self.table)

    # -- helpers -----------------------------------------------------------------------------

    def _state_of(self, spec: Mapping[str, Any]) -> RemoteState:
        return "active" if specs.enabled(spec) else self.off_state

    def _get(self, remote_id: str) -> RemoteObject:
        rows = self._db.query(
            f"SELECT remote_id, key, spec_json, state, reason FROM {self.table} "
            "WHERE remote_id = ?",
            (remote_id,),
        )
        if not rows:  # deleted between our write and this read, by another process
            raise NotFound(f"{self.kind} {remote_id} does not exist", backend=NAME)
        return self._object(rows[0])

    def _object(self, row: tuple[Any, ...]) -> RemoteObject:
        remote_id, key, spec_json, state, reason = row
        return RemoteObject(
            remote_id=remote_id,
            kind=self.kind,
            spec=json.loads(spec_json),
            key=key,
            state=state,
            reason=reason,
        )

    def _identity(self, spec: Mapping[str, Any]) -> dict[str, str]:
        """The columns besides ``key`` that tell one object from another (none for a job)."""
        return {}

    def _check_fixed(self, remote_id: str, old: Mapping[str, Any], new: Mapping[str, Any]) -> None:
        """Refuse an in-place change the remote system would refuse; nothing is fixed by default."""

    def _find(
        self, tx: sql.Tx, key: str, spec: Mapping[str, Any], *, besides: str | None = None
    ) -> str | None:
        """The object with this identity, other than ``besides``."""
        identity = self._identity(spec)
        where = " AND ".join(["key = ?", *(f"{column} = ?" for column in identity)])
        params: list[str] = [key, *identity.values()]
        if besides is not None:
            where += " AND remote_id <> ?"
            params.append(besides)
        row = tx.execute(f"SELECT remote_id FROM {self.table} WHERE {where}", params).fetchone()
        return None if row is None else str(row[0])

    def _insert(
        self,
        tx: sql.Tx,
        remote_id: str,
        key: str,
        spec: Mapping[str, Any],
        spec_json: str,
        now: str,
    ) -> None:
        identity = self._identity(spec)
        columns = ["remote_id", "key", *identity, "spec_json", "state", "created_at", "updated_at"]
        values = [remote_id, key, *identity.values(), spec_json, self._state_of(spec), now, now]
        tx.execute(
            f"INSERT INTO {self.table} ({', '.join(columns)}, reason) "
            f"VALUES ({', '.join('?' for _ in values)}, NULL)",
            values,
        )

    def _check_update(
        self,
        tx: sql.Tx,
        remote_id: str,
        key: str,
        old: Mapping[str, Any],
        new: Mapping[str, Any],
    ) -> None:
        self._check_fixed(remote_id, old, new)
        other = self._find(tx, key, new, besides=remote_id)
        if other is not None:
            config = " and this config" if self._identity(new) else ""
            raise Conflict(f"{self.kind} {other} already has key {key}{config}", backend=NAME)


class LocalScheduleBackend(_LocalBackend):
    """Scheduled jobs, one per key; the embedded scheduler reads this table."""

    kind = "job"
    table = "local_jobs"
    prefix = "job"
    off_state = "paused"


class LocalTriggerBackend(_LocalBackend):
    """Event triggers; identity is key + the fields Composio fixes at creation."""

    kind = "trigger"
    table = "local_triggers"
    prefix = "trg"
    off_state = "disabled"

    def _identity(self, spec: Mapping[str, Any]) -> dict[str, str]:
        return {"identity": _identity(spec)}

    def _check_fixed(self, remote_id: str, old: Mapping[str, Any], new: Mapping[str, Any]) -> None:
        fixed = REPLACE_FIELDS["trigger"]
        before, after = canonical.subset(old, fixed), canonical.subset(new, fixed)
        changed = sorted(f for f in fixed if before.get(f) != after.get(f))
        if changed:
            raise Conflict(
                f"trigger {remote_id}: {', '.join(changed)} cannot change in place; "
                "create a new trigger and delete this one (a replace)",
                backend=NAME,
            )


def _changed(tx: sql.Tx, table: str) -> None:
    """Move ``version``'s counter of ``table``, in the write's own transaction (it commits
    with it, or not at all)."""
    tx.execute("UPDATE local_changes SET n = n + 1 WHERE name = ?", (table,))


def _identity(spec: Mapping[str, Any]) -> str:
    return canonical.spec_hash(canonical.subset(spec, REPLACE_FIELDS["trigger"]))


# mypy checks both classes against the Protocols here, not only where a caller happens to use them.
_schedule_conforms: type[ScheduleBackend] = LocalScheduleBackend
_trigger_conforms: type[TriggerBackend] = LocalTriggerBackend
