"""The one handle every store runs its SQL through: a SQLite file or a PostgreSQL pool.

A store (ledger, inbox, runs, ...) is written once, against :class:`Database`; it never sees a
``sqlite3`` or ``psycopg`` connection. Most of its SQL is the portable subset both engines
accept (``?`` placeholders, ``ON CONFLICT``, ``RETURNING``, partial indexes); the few places the
engines must differ say so through :class:`Dialect` (``FOR UPDATE SKIP LOCKED``, the DDL of a
migration) or are a store of their own (the apply lock: a lock row on SQLite, an advisory lock on
PostgreSQL).

Transactions are explicit and come in two kinds, because the engines lock differently:

* ``transaction()`` (the default, *serial*): at most one such transaction per store at a time.
  SQLite gets this from ``BEGIN IMMEDIATE`` (one writer per file); PostgreSQL from a
  transaction-level advisory lock named after the store. Read-then-write code (an upsert after
  a check, a history row after a change) is therefore correct on both without retry loops.
* ``transaction(serial=False)``: statements that are each safe under concurrency by
  themselves (``INSERT ... ON CONFLICT DO NOTHING``, an ``UPDATE`` guarded by its ``WHERE``, a
  ``SKIP LOCKED`` claim). Several replicas run these side by side on PostgreSQL; SQLite still
  has one writer per file.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from planner_operator.core import clock as clock_mod
from planner_operator.core.closing import Closing
from planner_operator.errors import StateError
from planner_operator.state import db

Row = tuple[Any, ...]
Params = Sequence[Any]


@dataclass(frozen=True)
class Dialect:
    """What a store needs to know about the engine under it (kept to a few clauses)."""

    name: str  # "sqlite" | "postgres"
    skip_locked: str  # appended to a claim's SELECT: rows another claimer holds are passed over
    for_update: str  # appended to a SELECT whose rows the transaction then changes
    identity: str  # a generated integer primary key

    @property
    def postgres(self) -> bool:
        return self.name == "postgres"

    def ddl(self, text: str) -> str:
        """``text`` with ``{identity}`` spelled for this engine: a table is written once."""
        return text.replace("{identity}", self.identity)


# SQLite has one writer per file, so a write transaction holds every row already.
SQLITE = Dialect(
    "sqlite", skip_locked="", for_update="", identity="INTEGER PRIMARY KEY AUTOINCREMENT"
)
POSTGRES = Dialect(
    "postgres",
    skip_locked="FOR UPDATE SKIP LOCKED",
    for_update="FOR UPDATE",
    identity="BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY",
)


@dataclass(frozen=True)
class Migrations:
    """A component's schema history, once per engine (each list append-only; see db.migrate).

    The two lists are versioned apart: PostgreSQL started at the schema SQLite reached after
    several versions, so its v1 is SQLite's steps up to then run as one (``Dialect.ddl`` spells
    the generated keys), without the SQLite-only rewrites of old rows; each list grows on its
    own from there. The step texts are released history: a change is a new step, never an edit.
    """

    sqlite: tuple[str, ...]
    postgres: tuple[str, ...]

    def of(self, dialect: Dialect) -> tuple[str, ...]:
        return self.postgres if dialect.postgres else self.sqlite


class Cursor(Protocol):
    @property
    def rowcount(self) -> int: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...


class Tx(Protocol):
    """An open transaction: statements run in it, committed together when the block ends."""

    def execute(self, sql: str, params: Params = (), /) -> Cursor: ...


class Database(Protocol):
    """One store's view of its engine (see the module docstring)."""

    @property
    def dialect(self) -> Dialect: ...

    @property
    def where(self) -> str:
        """For messages: the file, or the database URL without credentials."""
        ...

    def transaction(self, *, serial: bool = True) -> AbstractContextManager[Tx]:
        """A context manager yielding a :class:`Tx`: commit on success, roll back on error."""
        ...

    def snapshot(self) -> AbstractContextManager[Tx]:
        """A read-only transaction (a :class:`Tx`): several reads of one consistent state that
        neither take a write lock nor make a writer wait."""
        ...

    def query(self, sql: str, params: Params = ()) -> list[Row]:
        """Rows of one read, outside any explicit transaction (committed state only)."""
        ...

    def migrate(self, component: str, migrations: Migrations) -> int: ...

    def checkpoint(self) -> None:
        """Make committed writes durable in the main file (SQLite WAL); nothing elsewhere."""
        ...

    def manual_checkpoints(self) -> None:
        """Leave checkpoints to :meth:`checkpoint` (SQLite WAL); nothing elsewhere."""
        ...

    def close(self) -> None: ...


class SqliteDatabase:
    """One SQLite connection (WAL, explicit transactions), shared by a store's threads.

    The connection crosses threads, so ``_lock`` serialises every use of it; a transaction holds
    the lock from ``BEGIN`` to ``COMMIT``.
    """

    dialect = SQLITE

    def __init__(
        self,
        path: Path | str,
        *,
        synchronous: db.Synchronous = "NORMAL",
        clock: clock_mod.Clock = clock_mod.SYSTEM,
    ) -> None:
        self.path = Path(path)
        self.clock = clock
        self.synchronous = synchronous
        self._lock = threading.RLock()
        self.conn = db.connect(
            self.path, synchronous=synchronous, check_same_thread=False, clock=clock
        )
        self._checkpointer: sqlite3.Connection | None = None

    @property
    def where(self) -> str:
        return str(self.path)

    @contextmanager
    def transaction(self, *, serial: bool = True) -> Iterator[Tx]:
        with self._lock, db.transaction(self.conn):
            yield self.conn

    @contextmanager
    def snapshot(self) -> Iterator[Tx]:
        with self._lock, db.transaction(self.conn, immediate=False):
            yield self.conn

    def query(self, sql: str, params: Params = ()) -> list[Row]:
        with self._lock:
            try:
                return list(self.conn.execute(sql, tuple(params)).fetchall())
            except sqlite3.Error as exc:
                raise StateError(f"state database {self.path}: {exc}") from exc

    def migrate(self, component: str, migrations: Migrations) -> int:
        with self._lock:
            return db.migrate(self.conn, component, migrations.sqlite, clock=self.clock)

    def manual_checkpoints(self) -> None:
        """Stop this connection's commits from checkpointing (the step that fsyncs the file);
        :meth:`checkpoint` from another thread does it instead."""
        with self._lock:
            self.conn.execute("PRAGMA wal_autocheckpoint = 0")

    def checkpoint(self) -> None:
        """Copy committed WAL pages into the database file, without blocking writers."""
        if self._checkpointer is None:
            self._checkpointer = db.connect(self.path, check_same_thread=False, clock=self.clock)
        self._checkpointer.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()

    def close(self) -> None:
        with self._lock:
            self.conn.close()
            if self._checkpointer is not None:
                self._checkpointer.close()
                self._checkpointer = None


_conforms: type[Database] = SqliteDatabase


def opened(
    where: Path | str | Database,
    component: str,
    migrations: Migrations,
    *,
    synchronous: db.Synchronous = "NORMAL",
    clock: clock_mod.Clock = clock_mod.SYSTEM,
) -> Database:
    """``where`` (a SQLite file opened here, or a ``Database`` that ``state.open`` made) with
    ``component``'s tables migrated; a failed migration closes it again, so nothing leaks."""
    database = (
        SqliteDatabase(where, synchronous=synchronous, clock=clock)
        if isinstance(where, str | Path)
        else where
    )
    try:
        database.migrate(component, migrations)
    except BaseException:
        database.close()
        raise
    return database


class Store(Closing):
    """Base of every store: one :class:`~planner_operator.state.Database`, its component's
    migrations, closing.

    Subclasses set ``COMPONENT`` and ``MIGRATIONS`` (one list per engine)
    and run SQL through ``self._db``. ``where`` is a SQLite file path (opened here) or a
    ``Database`` that ``state.open`` made (a PostgreSQL pool's); opening migrates, and closes
    the database again if migrating fails. Every timestamp a store writes comes from
    ``self.clock``.
    """

    COMPONENT: str = ""
    MIGRATIONS: Migrations = Migrations((), ())

    def __init__(
        self,
        where: Path | str | Database,
        *,
        synchronous: db.Synchronous = "NORMAL",
        clock: clock_mod.Clock = clock_mod.SYSTEM,
    ) -> None:
        self.clock = clock
        self._db = opened(
            where, self.COMPONENT, self.MIGRATIONS, synchronous=synchronous, clock=clock
        )
        self.path = Path(self._db.where) if not self._db.dialect.postgres else None

    @property
    def where(self) -> str:
        """The file, or the database URL without credentials (for messages)."""
        return self._db.where

    def close(self) -> None:
        self._db.close()
