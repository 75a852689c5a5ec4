"""Operator secrets (the Composio webhook signing secret): one current value per name, plus the
value it replaced for a grace window, so a rotation never rejects a delivery already in flight.

Every process that verifies deliveries (each ``serve`` replica) and every process that rotates
(``composio rotate-secret``) must see the same value, so the secret lives in the operator's
state, not beside one process. :class:`SecretStore` is the interface; :class:`SqliteSecrets` is
the embedded implementation, a database of its own (``<state dir>/secrets.db``) created private
(mode 0600, SQLite gives its WAL and shm files the same mode) and refused when group or others can
read it, since the value is a credential. The shared PostgreSQL store implements the same
interface over its own table; callers only name :class:`SecretStore`.

Values never appear in ``repr``, messages or logs.
"""

from __future__ import annotations

import contextlib
import os
import stat
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from planner_operator.core import clock as clock_mod
from planner_operator.core.closing import Closing
from planner_operator.errors import PlannerError, StateError
from planner_operator.state import db

COMPONENT = "secrets"
FILE_NAME = "secrets.db"
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE secrets (
        name TEXT PRIMARY KEY,
        value TEXT NOT NULL,
        set_at REAL NOT NULL,
        previous TEXT,
        previous_until REAL
    );
    """,
)


@dataclass(frozen=True)
class Secret:
    """A stored secret: the current value and, until ``previous_until``, the one before it."""

    value: str = field(repr=False)
    set_at: float
    previous: str | None = field(default=None, repr=False)
    previous_until: float | None = None

    def accepted(self, now: float) -> tuple[str, ...]:
        """The values a verifier accepts at ``now``: current first, then the previous one."""
        keep = self.previous and self.previous_until is not None and now < self.previous_until
        return (self.value, self.previous) if keep and self.previous else (self.value,)


class SecretStore(Protocol):
    """Where operator secrets are kept; each call is one transaction."""

    @property
    def where(self) -> str: ...

    def get(self, name: str) -> Secret | None: ...

    def put(self, name: str, value: str, *, keep_previous_for: float = 0.0) -> None:
        """Make ``value`` current; the old value stays accepted ``keep_previous_for`` seconds."""
        ...

    def close(self) -> None: ...


class SqliteSecrets(Closing):
    """:class:`SecretStore` over a private SQLite file (thread-safe: one lock per store)."""

    def __init__(self, path: Path | str, *, clock: clock_mod.Clock = clock_mod.SYSTEM) -> None:
        self.path = Path(path)
        self._clock = clock
        self._lock = threading.Lock()
        _create_private(self.path)
        self._conn = db.connect(self.path, check_same_thread=False, clock=clock)
        try:
            db.migrate(self._conn, COMPONENT, MIGRATIONS, clock=clock)
        except BaseException:
            self.close()
            raise

    @property
    def where(self) -> str:
        return str(self.path)

    def get(self, name: str) -> Secret | None:
        with self._lock:
            row = self._conn.execute(
                "SELECT value, set_at, previous, previous_until FROM secrets WHERE name = ?",
                (name,),
            ).fetchone()
        if row is None:
            return None
        return Secret(str(row[0]), float(row[1]), row[2], None if row[3] is None else float(row[3]))

    def put(self, name: str, value: str, *, keep_previous_for: float = 0.0) -> None:
        if not value:
            raise PlannerError(f"refusing to store an empty secret as {name}")
        now = clock_mod.epoch(self._clock)
        until = now + keep_previous_for if keep_previous_for > 0 else None
        with self._lock, db.transaction(self._conn):
            old = self._conn.execute("SELECT value FROM secrets WHERE name = ?", (name,)).fetchone()
            if old is not None and str(old[0]) == value:  # the same again: keep what is accepted
                return
            previous = str(old[0]) if old is not None and until is not None else None
            self._conn.execute(
                "INSERT INTO secrets (name, value, set_at, previous, previous_until) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT (name) DO UPDATE SET value = excluded.value, "
                "set_at = excluded.set_at, previous = excluded.previous, "
                "previous_until = excluded.previous_until",
                (name, value, now, previous, until if previous else None),
            )

    def close(self) -> None:
        with contextlib.suppress(AttributeError):
            self._conn.close()


def open_secrets(state_dir: Path, *, clock: clock_mod.Clock = clock_mod.SYSTEM) -> SqliteSecrets:
    return SqliteSecrets(Path(state_dir) / FILE_NAME, clock=clock)


def _create_private(path: Path) -> None:
    """Create the file 0600 before SQLite opens it (no chmod-after race); refuse an open one."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        os.close(fd)
        mode = path.stat().st_mode
    except OSError as exc:
        raise StateError(f"cannot open the operator secrets file {path}: {exc}") from exc
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise StateError(
            f"{path} is readable by other users (mode {stat.S_IMODE(mode):o}): run "
            f"`chmod 600 {path}`, then `planner-operator composio rotate-secret`, since the "
            "secret may have leaked"
        )
