"""The apply lock on PostgreSQL: a session-level advisory lock, plus a row naming its holder.

On a shared database the appliers may be on different hosts, so "is its pid alive?" cannot be
asked, and a lock row alone could outlive a crashed holder for as long as ``stale_after``. An
advisory lock belongs to the connection that took it: when the holder exits, crashes or loses
its network, the server frees the lock. So the lock is ``pg_try_advisory_lock`` on a connection
of its own, held for the whole apply; the ``locks`` row (holder, pid, host, since) is only what
a second applier's error and ``status`` show. A row whose advisory lock nobody holds is a
crashed holder's leftover: the next applier takes over and reports it (``took_over``).
"""

from __future__ import annotations

import logging
import os
import secrets
from datetime import timedelta
from typing import Any

import psycopg

from planner_operator.core import clock as clock_mod
from planner_operator.core import times
from planner_operator.errors import LockError
from planner_operator.state import lock as lock_mod
from planner_operator.state import postgres
from planner_operator.state.lock import LockHolder

log = logging.getLogger("planner_operator.state.lock")

_SELECT = "SELECT name, holder, pid, host, started_at FROM locks WHERE name = %s"


class PostgresApplyLock(lock_mod.ApplyLocker):
    """Same interface as :class:`~planner_operator.state.lock.ApplyLock` (``ApplyLocker``)."""

    def __init__(
        self,
        pool: postgres.Pool,
        *,
        name: str = "apply",
        holder: str | None = None,
        timeout: float = 0.0,
        stale_after: timedelta = lock_mod.DEFAULT_STALE_AFTER,  # unused: the server frees it
        clock: clock_mod.Clock = clock_mod.SYSTEM,
    ) -> None:
        super().__init__(
            name=name, holder=holder, timeout=timeout, stale_after=stale_after, clock=clock
        )
        self.pool = pool
        self._key = postgres.lock_key(f"lock:{name}")
        self._session: psycopg.Connection[Any] | None = None  # holds the advisory lock
        pool.migrate(lock_mod.COMPONENT, lock_mod.MIGRATIONS.postgres)

    @property
    def where(self) -> str:
        return self.pool.where

    def acquire(self, timeout: float, poll: float = 0.2) -> None:
        """Take the lock, waiting up to ``timeout`` seconds; ``LockError`` names the holder."""
        with self._guard:
            if self._token is not None:
                return
            deadline = self.clock.monotonic() + max(timeout, 0.0)
            session = self.pool.connect()
            try:
                while not self._try(session):
                    remaining = deadline - self.clock.monotonic()
                    if remaining <= 0:
                        raise LockError(self._held_message(self.current()))
                    self.clock.sleep(min(max(poll, 0.001), remaining))
            except BaseException:
                session.close()
                raise
            self._session = session

    def _try(self, session: psycopg.Connection[Any]) -> bool:
        with self.pool.errors():
            row = session.execute("SELECT pg_try_advisory_lock(%s, %s)", self._key).fetchone()
            if not (row and row[0]):
                return False
            token = secrets.token_hex(16)
            with session.transaction():
                left = session.execute(_SELECT, (self.name,)).fetchone()
                session.execute("DELETE FROM locks WHERE name = %s", (self.name,))
                session.execute(
                    "INSERT INTO locks (name, holder, pid, host, started_at, token) "
                    "VALUES (%s, %s, %s, %s, %s, %s)",
                    (self.name, self.holder, os.getpid(), self._host, times.now(self.clock), token),
                )
            self.took_over = None if left is None else LockHolder.from_row(left)
            self.takeover = None
            if self.took_over is not None:
                self.takeover = (
                    f"took over the apply lock {self.name!r} left by {self.took_over.describe()}: "
                    "its connection to the database is gone (the process ended or crashed)"
                )
                log.warning("%s", self.takeover)
            self._token = token
        return True

    def release(self) -> None:
        """Drop this holder's row and the advisory lock (closing the session frees it too)."""
        with self._guard:
            session, token = self._session, self._token
            self._session, self._token = None, None
            if session is None:
                return
            try:
                with self.pool.errors():
                    session.execute(
                        "DELETE FROM locks WHERE name = %s AND token = %s", (self.name, token)
                    )
                    session.execute("SELECT pg_advisory_unlock(%s, %s)", self._key)
            finally:
                session.close()

    def current(self) -> LockHolder | None:
        """Who holds the lock now: the row, if a live connection holds the advisory lock."""
        with self.pool.errors(), self.pool.connection() as conn:
            if not _advisory_held(conn, self._key):
                return None
            row = conn.execute(_SELECT, (self.name,)).fetchone()
        return None if row is None else LockHolder.from_row(row)

    def clear(self) -> LockHolder | None:
        """``planner-operator unlock``: remove a crashed holder's row. A live holder cannot be
        cleared from here (its connection holds the lock); the error says how to end it."""
        with self.pool.errors(), self.pool.connection() as conn, conn.transaction():
            row = conn.execute(_SELECT, (self.name,)).fetchone()
            backend = _advisory_held(conn, self._key)
            if backend:
                who = (
                    LockHolder.from_row(row).describe() if row is not None else "an unknown holder"
                )
                raise LockError(
                    f"the apply lock {self.name!r} is held by a live connection: {who}, "
                    f"database backend pid {backend}. It is freed when that process exits or its "
                    f"connection drops; to end it now, run SELECT pg_terminate_backend({backend}) "
                    f"on {self.where}"
                )
            conn.execute("DELETE FROM locks WHERE name = %s", (self.name,))
        return None if row is None else LockHolder.from_row(row)

    def close(self) -> None:
        self.release()

    def _held_message(self, current: LockHolder | None) -> str:
        who = current.describe() if current is not None else "a process whose row is missing"
        return (
            f"another apply holds the lock {self.name!r}: {who}. Wait for it to finish; the "
            f"lock is freed by itself when that process exits (an advisory lock on "
            f"{self.where})"
        )


def _advisory_held(conn: psycopg.Connection[Any], key: tuple[int, int]) -> int:
    """The backend pid holding the advisory lock ``key``, or 0."""
    row = conn.execute(
        "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND classid = %s::int::oid "
        "AND objid = %s::int::oid AND objsubid = 2 AND granted LIMIT 1",
        key,
    ).fetchone()
    return int(row[0]) if row else 0
