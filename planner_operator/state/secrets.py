"""Operator secrets (the Composio webhook signing secret): one current value per name, plus the
value it replaced for a grace window, so a rotation never rejects a delivery already in flight.

Every process that verifies deliveries (each ``serve`` replica) and every process that rotates
(``composio rotate-secret``) must see the same value, so the secret lives in the operator's
state, not beside one process: a table of the shared PostgreSQL database, or on one machine a
SQLite database of its own (``<state dir>/secrets.db``) created private (mode 0600, SQLite gives
its WAL and shm files the same mode) and refused when group or others can read it, since the
value is a credential. :class:`SecretStore` is the interface, :class:`Secrets` the one
implementation over either engine (``state.sql``); ``state.open.secrets`` opens it.

Values never appear in ``repr``, messages or logs.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from planner_operator.core import clock as clock_mod
from planner_operator.core import settings as settings_mod
from planner_operator.errors import PlannerError, StateError
from planner_operator.state import sql

COMPONENT = "secrets"
FILE_NAME = settings_mod.SECRETS_DB_FILE
# Times stay epoch seconds here: a grace window is arithmetic on them, never shown or sorted.
MIGRATIONS = sql.Migrations(
    (
        """
    CREATE TABLE secrets (
        name TEXT PRIMARY KEY,
        value TEXT NOT NULL,
        set_at REAL NOT NULL,
        previous TEXT,
        previous_until REAL
    );
    """,
    ),
    (
        """
    CREATE TABLE secrets (
        name TEXT PRIMARY KEY,
        value TEXT NOT NULL,
        set_at DOUBLE PRECISION NOT NULL,
        previous TEXT,
        previous_until DOUBLE PRECISION
    );
    """,
    ),
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


class Secrets(sql.Store):
    """:class:`SecretStore` over a private SQLite file or the shared database's table."""

    COMPONENT = COMPONENT
    MIGRATIONS = MIGRATIONS

    def __init__(
        self, where: Path | str | sql.Database, *, clock: clock_mod.Clock = clock_mod.SYSTEM
    ) -> None:
        if isinstance(where, str | Path):
            _create_private(Path(where))
        super().__init__(where, clock=clock)

    def get(self, name: str) -> Secret | None:
        rows = self._db.query(
            "SELECT value, set_at, previous, previous_until FROM secrets WHERE name = ?", (name,)
        )
        if not rows:
            return None
        value, set_at, previous, until = rows[0]
        return Secret(str(value), float(set_at), previous, None if until is None else float(until))

    def put(self, name: str, value: str, *, keep_previous_for: float = 0.0) -> None:
        if not value:
            raise PlannerError(f"refusing to store an empty secret as {name}")
        now = clock_mod.epoch(self.clock)
        until = now + keep_previous_for if keep_previous_for > 0 else None
        with self._db.transaction() as tx:  # serial: the read and the write see one value
            old = tx.execute("SELECT value FROM secrets WHERE name = ?", (name,)).fetchone()
            if old is not None and str(old[0]) == value:  # the same again: keep what is accepted
                return
            previous = str(old[0]) if old is not None and until is not None else None
            tx.execute(
                "INSERT INTO secrets (name, value, set_at, previous, previous_until) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT (name) DO UPDATE SET value = excluded.value, "
                "set_at = excluded.set_at, previous = excluded.previous, "
                "previous_until = excluded.previous_until",
                (name, value, now, previous, until if previous else None),
            )


_conforms: type[SecretStore] = Secrets


def _create_private(path: Path) -> None:
    """Create the file 0600 before SQLite opens it (no chmod-after race); refuse an open one."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        os.close(fd)
        mode = path.stat().st_mode
    except OSError as exc:
        raise StateError(f"cannot open the operator secrets file {path}: {exc}") from exc
    refuse_if_readable(path, mode)


def refuse_if_readable(path: Path, mode: int) -> None:
    """A secret in a file others can read may have leaked: stop, and say how to recover."""
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise StateError(
            f"{path} is readable by other users (mode {stat.S_IMODE(mode):o}): run "
            f"`chmod 600 {path}`, then `planner-operator composio rotate-secret`, since the "
            "secret may have leaked"
        )
