"""One applier at a time: a named lock row in the state database (Terraform's state locking).

Two applies interleaving their creates and ledger writes could both create the same object or
delete each other's work. The lock lives in the same SQLite file as the ledger, so whoever can
write the ledger sees the lock, and taking it is a single ``BEGIN IMMEDIATE`` check-and-insert
(no race between "is it free?" and "take it").

A crashed applier cannot release its row, so a lock counts as stale, and is taken over, when its
holder is on this host and its pid is gone, or when it is older than ``stale_after`` (a holder on
another host cannot be probed). The error for a held lock names holder, pid, host and start time,
because the person reading it must decide whether that process is really still running. A
takeover is never silent: it is logged here, and :attr:`ApplyLock.takeover` is the sentence the
caller prints, because a takeover by age may have pushed aside an apply that was still running.
"""

from __future__ import annotations

import getpass
import logging
import os
import secrets
import socket
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Self

from planner_operator.core import clock as clock_mod
from planner_operator.core import times
from planner_operator.core.closing import Closing
from planner_operator.errors import LockError
from planner_operator.state import sql

COMPONENT = "lock"

_LOCKS_TABLE = """
    CREATE TABLE locks (
        name TEXT PRIMARY KEY,
        holder TEXT NOT NULL,
        pid INTEGER NOT NULL,
        host TEXT NOT NULL,
        started_at TEXT NOT NULL,
        token TEXT NOT NULL
    );
    """
MIGRATIONS = sql.Migrations(
    (
        _LOCKS_TABLE,
        # v2: one stored time format (core.times)
        f"UPDATE locks SET started_at = COALESCE(strftime('{times.SQLITE_FORMAT}', started_at), "
        "started_at);",
    ),
    # On PostgreSQL the row only describes the holder; the advisory lock is the lock.
    (_LOCKS_TABLE,),
)

DEFAULT_STALE_AFTER = timedelta(hours=1)

log = logging.getLogger("planner_operator.state.lock")


@dataclass(frozen=True)
class LockHolder:
    """Who holds (or held) a lock, as shown to a human deciding whether to clear it."""

    name: str
    holder: str
    pid: int
    host: str
    started_at: datetime

    def describe(self) -> str:
        return (
            f"{self.holder} (pid {self.pid} on {self.host}, since {times.display(self.started_at)})"
        )

    @classmethod
    def from_row(cls, row: tuple[object, ...]) -> LockHolder:
        """``(name, holder, pid, host, started_at)`` as both engines' ``locks`` table stores it."""
        name, holder, pid, host, started_at = row
        return cls(
            name=str(name),
            holder=str(holder),
            pid=int(str(pid)),
            host=str(host),
            started_at=times.parse(str(started_at)),
        )


class ApplyLocker(Closing):
    """One applier at a time, whatever engine keeps the lock (:class:`ApplyLock` on a SQLite
    file, ``pg_lock.PostgresApplyLock`` on the shared database). ``with lock:`` acquires,
    waiting ``timeout``, and leaves through ``close()`` (which releases)."""

    def __init__(
        self,
        *,
        name: str,
        holder: str | None,
        timeout: float,
        stale_after: timedelta,
        clock: clock_mod.Clock,
    ) -> None:
        self.clock = clock
        self.name = name
        self.holder = holder or default_holder()
        self.timeout = timeout
        self.stale_after = stale_after
        self.took_over: LockHolder | None = None
        self.takeover: str | None = None  # the sentence to print after taking a dead one's lock
        self._host = socket.gethostname()
        self._token: str | None = None
        # Release may come from another thread (a timer, a signal handler, asyncio.to_thread),
        # so the connection may cross threads; ``_guard`` keeps its use serial.
        self._guard = threading.RLock()

    @property
    def where(self) -> str:
        raise NotImplementedError

    @property
    def held(self) -> bool:
        return self._token is not None

    def acquire(self, timeout: float, poll: float = 0.2) -> None:
        raise NotImplementedError

    def release(self) -> None:
        raise NotImplementedError

    def current(self) -> LockHolder | None:
        raise NotImplementedError

    def clear(self) -> LockHolder | None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        self.acquire(self.timeout)
        return self


def default_holder() -> str:
    """``user@host``: enough for a colleague to know whom to ask."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (containers) and no USER variable
        user = f"uid{os.getuid()}" if hasattr(os, "getuid") else "unknown"
    return f"{user}@{socket.gethostname()}"


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid exists on this host (signal 0 probes without signalling)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    except OSError:
        return True  # unknown: assume alive, never steal a lock on a guess
    return True


class ApplyLock(ApplyLocker):
    """The apply lock; use as ``with ApplyLock(path, timeout=30): ...``.

    ``timeout`` is how long :meth:`__enter__` waits; :meth:`acquire` takes its own. After a
    takeover, ``took_over`` holds the stale holder so the caller can say so. Leaving the ``with``
    block releases *and closes*, so one object serves one ``with``. ``takeover`` says in one
    sentence whose stale lock was taken and why it counted as stale (also logged as a warning).
    """

    def __init__(
        self,
        where: Path | str | sql.Database,
        *,
        name: str = "apply",
        holder: str | None = None,
        timeout: float = 0.0,
        stale_after: timedelta = DEFAULT_STALE_AFTER,
        clock: clock_mod.Clock = clock_mod.SYSTEM,
    ) -> None:
        super().__init__(
            name=name, holder=holder, timeout=timeout, stale_after=stale_after, clock=clock
        )
        self._db = sql.opened(where, COMPONENT, MIGRATIONS, clock=clock)

    @property
    def where(self) -> str:
        return self._db.where

    def acquire(self, timeout: float, poll: float = 0.2) -> None:
        """Take the lock, waiting up to ``timeout`` seconds; ``LockError`` names the holder.

        Re-acquiring a lock this object already holds is a no-op.
        """
        if self._token is not None:
            return
        deadline = self.clock.monotonic() + max(timeout, 0.0)
        while True:
            current = self._try_take()
            if current is None:
                return
            remaining = deadline - self.clock.monotonic()
            if remaining <= 0:
                raise LockError(self._held_message(current))
            self.clock.sleep(min(max(poll, 0.001), remaining))

    def release(self) -> None:
        """Remove this object's own row (never someone else's, e.g. after a takeover)."""
        with self._guard:
            if self._token is None:
                return
            with self._db.transaction() as tx:
                tx.execute(
                    "DELETE FROM locks WHERE name = ? AND token = ?", (self.name, self._token)
                )
            self._token = None

    def current(self) -> LockHolder | None:
        """Who holds the lock now, if anyone (for ``status`` and ``unlock``)."""
        with self._guard:
            rows = self._db.query(
                "SELECT name, holder, pid, host, started_at FROM locks WHERE name = ?",
                (self.name,),
            )
        return LockHolder.from_row(rows[0]) if rows else None

    def clear(self) -> LockHolder | None:
        """Remove the lock whoever holds it (``planner-operator unlock``); returns who held it.

        Only for a human who has checked that the holder is gone: clearing a live holder's lock
        lets two applies run at once.
        """
        with self._guard, self._db.transaction() as tx:
            row = tx.execute(
                "SELECT name, holder, pid, host, started_at FROM locks WHERE name = ?",
                (self.name,),
            ).fetchone()
            tx.execute("DELETE FROM locks WHERE name = ?", (self.name,))
        return None if row is None else LockHolder.from_row(row)

    def close(self) -> None:
        """Release (if held) and close the connection."""
        try:
            self.release()
        finally:
            with self._guard:
                self._db.close()

    # -- internals ---------------------------------------------------------------------------

    def _try_take(self) -> LockHolder | None:
        """One atomic attempt: None when taken, else the live holder in the way."""
        token = secrets.token_hex(16)
        with self._guard, self._db.transaction() as tx:
            row = tx.execute(
                "SELECT name, holder, pid, host, started_at FROM locks WHERE name = ?",
                (self.name,),
            ).fetchone()
            current = None if row is None else LockHolder.from_row(row)
            stale = None if current is None else self._stale_reason(current)
            if current is not None and stale is None:
                return current
            tx.execute("DELETE FROM locks WHERE name = ?", (self.name,))
            tx.execute(
                "INSERT INTO locks (name, holder, pid, host, started_at, token) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (self.name, self.holder, os.getpid(), self._host, times.now(self.clock), token),
            )
            self._token = token
            self.took_over = current
            self.takeover = None
            if current is not None:
                self.takeover = (
                    f"took over the stale apply lock {self.name!r} held by "
                    f"{current.describe()}: {stale}"
                )
        if self.takeover is not None:
            log.warning("%s", self.takeover)
        return None

    def _stale_reason(self, current: LockHolder) -> str | None:
        if current.host == self._host and not pid_alive(current.pid):
            return f"process {current.pid} no longer runs on this host"
        age = self.clock.now() - current.started_at
        if age > self.stale_after:
            return (
                f"it is {_duration(age)} old, older than the {_duration(self.stale_after)} "
                f"after which a lock counts as stale (a holder on another host cannot be probed)"
            )
        return None

    def _held_message(self, current: LockHolder) -> str:
        return (
            f"another apply holds the lock {self.name!r}: {current.describe()}. Wait for it to "
            f"finish; if that process is gone, run `planner-operator unlock` (or delete the "
            f"{self.name!r} row of table locks in {self.where} after checking the process is gone)"
        )


def _duration(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    if seconds >= 3600 and seconds % 3600 == 0:
        return f"{seconds // 3600} h"
    if seconds >= 3600:
        return f"{seconds // 3600} h {seconds % 3600 // 60} min"
    if seconds >= 60:
        return f"{seconds // 60} min"
    return f"{seconds} s"
