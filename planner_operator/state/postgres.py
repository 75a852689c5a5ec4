"""PostgreSQL under the store layer: the shared database when several processes take part.

Selected by ``PLANNER_DATABASE_URL=postgresql://...``. The driver is psycopg 3 with
``psycopg_pool``: the maintained successor of psycopg2, typed, with a thread-safe pool in the
same project, server-side parameter binding (no SQL built from values), and binary wheels that
bundle libpq, so nothing but pip is needed. One pool per URL is shared by every store of a
process (``state.open``); connections are autocommit and every store transaction is explicit.

The stores' SQL is written once with ``?`` placeholders (``state.sql``); :func:`to_pg` turns it
into psycopg's ``%s`` form. A *serial* transaction takes ``pg_advisory_xact_lock`` on a key
derived from the store's component, which is what SQLite's one-writer-per-file gave the same
code; the lock ends with the transaction, so a crashed process never leaves it behind.

Migrations are versioned per component in ``schema_migrations`` (as on SQLite), applied at start
under one advisory lock so replicas starting together apply each step once, and a database
whose schema is newer than this code is refused.
"""

from __future__ import annotations

import atexit
import functools
import hashlib
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
import psycopg_pool

from planner_operator.core import clock as clock_mod
from planner_operator.core import times
from planner_operator.errors import StateError, StateUnavailable
from planner_operator.state import db, sql

POOL_MAX = 10  # per process: the server's threads, the worker and the scheduler share them
CONNECT_TIMEOUT = 10.0


def redact(url: str) -> str:
    """The URL without its password (for every message and log line that names it)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username}:***@{host}" if parts.username else f"***@{host}"
    if parts.port:
        netloc += f":{parts.port}"
    return urlunsplit(parts._replace(netloc=netloc))


def lock_key(name: str) -> tuple[int, int]:
    """Two int4 halves of a stable hash: the advisory-lock key of ``name`` (the two-key form
    shows up in ``pg_locks`` as classid/objid, so the holder can be looked up)."""
    digest = hashlib.sha256(f"planner-operator:{name}".encode()).digest()
    return (
        int.from_bytes(digest[:4], "big", signed=True),
        int.from_bytes(digest[4:8], "big", signed=True),
    )


@functools.lru_cache(maxsize=1024)
def to_pg(statement: str) -> str:
    """``?`` placeholders to psycopg's ``%s`` (and a literal ``%`` to ``%%``)."""
    out: list[str] = []
    quoted = False
    for char in statement:
        if char == "'":
            quoted = not quoted
        if char == "%":
            out.append("%%")
        elif char == "?" and not quoted:
            out.append("%s")
        else:
            out.append(char)
    return "".join(out)


class _Tx:
    """A transaction on one pooled connection, speaking the stores' ``?`` SQL."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self.conn = conn

    def execute(self, statement: str, params: sql.Params = (), /) -> sql.Cursor:
        return self.conn.execute(to_pg(statement), tuple(params))


class PostgresDatabase:
    """One store's view of a shared pool; closing it leaves the pool to its other users."""

    dialect = sql.POSTGRES

    def __init__(self, pool: Pool, component: str) -> None:
        self.pool = pool
        self.component = component

    @property
    def where(self) -> str:
        return self.pool.where

    @contextmanager
    def transaction(self, *, serial: bool = True) -> Iterator[sql.Tx]:
        with self.pool.errors(), self.pool.connection() as conn, conn.transaction():
            if serial:
                conn.execute("SELECT pg_advisory_xact_lock(%s, %s)", lock_key(self.component))
            yield _Tx(conn)

    @contextmanager
    def snapshot(self) -> Iterator[sql.Tx]:
        with self.pool.errors(), self.pool.connection() as conn, conn.transaction():
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
            yield _Tx(conn)

    def query(self, statement: str, params: sql.Params = ()) -> list[sql.Row]:
        with self.pool.errors(), self.pool.connection() as conn:
            return list(conn.execute(to_pg(statement), tuple(params)).fetchall())

    def migrate(self, component: str, migrations: sql.Migrations) -> int:
        return self.pool.migrate(component, migrations.postgres)

    def checkpoint(self) -> None:
        return None  # PostgreSQL makes commits durable itself

    def manual_checkpoints(self) -> None:
        return None

    def close(self) -> None:
        return None  # the pool is shared: Pool.close (state.open.close_pools) ends it


class Pool:
    """A psycopg connection pool for one URL, and which components it has migrated."""

    def __init__(
        self, url: str, *, max_size: int = POOL_MAX, clock: clock_mod.Clock = clock_mod.SYSTEM
    ) -> None:
        self.url = url
        self.where = redact(url)
        self.clock = clock
        self._migrated: dict[str, int] = {}
        self._guard = threading.Lock()
        try:  # one plain connection first: a refused or rejected login fails at once
            psycopg.connect(url, connect_timeout=int(CONNECT_TIMEOUT)).close()
        except psycopg.Error as exc:
            raise StateError(
                f"cannot connect to the state database {self.where}: {_reason(exc)} (check "
                "PLANNER_DATABASE_URL, or unset it to keep the state in SQLite files)"
            ) from exc
        self._pool: psycopg_pool.ConnectionPool[Any] = psycopg_pool.ConnectionPool(
            url,
            min_size=1,
            max_size=max_size,
            kwargs={"autocommit": True, "connect_timeout": int(CONNECT_TIMEOUT)},
            open=False,
            name="planner-operator",
            # A restarted server (or a cut idle connection) leaves dead connections in the
            # pool, found only at their next statement: check each before handing it out (an
            # empty round trip), so the first request after an outage gets a live one.
            check=psycopg_pool.ConnectionPool.check_connection,
        )
        try:
            self._pool.open(wait=True, timeout=CONNECT_TIMEOUT)
        except (psycopg.Error, psycopg_pool.PoolTimeout) as exc:
            self._pool.close()
            raise StateError(
                f"cannot connect to the state database {self.where}: {_reason(exc)} (check "
                "PLANNER_DATABASE_URL, or unset it to keep the state in SQLite files)"
            ) from exc

    def connection(self) -> Any:
        return self._pool.connection(timeout=CONNECT_TIMEOUT)

    def connect(self) -> psycopg.Connection[Any]:
        """A connection of its own, outside the pool, for a session-level advisory lock
        (held as long as the connection lives, and freed when it dies)."""
        with self.errors():
            return psycopg.connect(self.url, autocommit=True, connect_timeout=int(CONNECT_TIMEOUT))

    @contextmanager
    def errors(self) -> Iterator[None]:
        """psycopg errors as ``StateError`` naming the database (never its password)."""
        try:
            yield
        except psycopg_pool.PoolTimeout as exc:
            raise StateUnavailable(
                f"state database {self.where}: no connection within {CONNECT_TIMEOUT:g} s "
                f"({_reason(exc)})"
            ) from exc
        except psycopg.OperationalError as exc:  # the connection or the server, not the SQL
            raise StateUnavailable(f"state database {self.where}: {_reason(exc)}") from exc
        except psycopg.Error as exc:
            raise StateError(f"state database {self.where}: {_reason(exc)}") from exc

    def migrate(self, component: str, migrations: tuple[str, ...]) -> int:
        """Bring ``component`` up to ``len(migrations)`` once per process (see db.migrate)."""
        known = len(migrations)
        with self._guard:
            if self._migrated.get(component) == known:
                return known
        with self.errors(), self.connection() as conn, conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s, %s)", lock_key("migrations"))
            conn.execute(db.MIGRATIONS_DDL)
            row = conn.execute(
                "SELECT MAX(version) FROM schema_migrations WHERE component = %s", (component,)
            ).fetchone()
            current = int(row[0] or 0) if row else 0
            if current > known:
                raise StateError(
                    f"the state database {self.where} was written by a newer planner-operator "
                    f"({component} schema v{current} > v{known}); upgrade planner-operator to "
                    "use it"
                )
            for version in range(current + 1, known + 1):
                for statement in db.split_statements(migrations[version - 1]):
                    conn.execute(statement)
                conn.execute(
                    "INSERT INTO schema_migrations (component, version, applied_at) "
                    "VALUES (%s, %s, %s)",
                    (component, version, times.now(self.clock)),
                )
        with self._guard:
            self._migrated[component] = known
        return known

    def database(self, component: str) -> PostgresDatabase:
        return PostgresDatabase(self, component)

    def close(self) -> None:
        self._pool.close()


def _reason(exc: BaseException) -> str:
    """The driver's message, first line only (the rest repeats it with libpq detail)."""
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


_pools: dict[str, Pool] = {}
_pools_guard = threading.Lock()


def pool(url: str) -> Pool:
    """The process's pool for ``url`` (made on first use)."""
    with _pools_guard:
        found = _pools.get(url)
        if found is None:
            found = _pools[url] = Pool(url)
        return found


def close_pools() -> None:
    """Close every pool (at exit, and between tests that drop their database)."""
    with _pools_guard:
        pools = list(_pools.values())
        _pools.clear()
    for each in pools:
        each.close()


atexit.register(close_pools)

_conforms: type[sql.Database] = PostgresDatabase
