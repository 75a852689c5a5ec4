"""SQLite plumbing under :class:`~planner_operator.state.sql.SqliteDatabase` (every SQLite store).

All of them may live in one file, so they agree here on how it is opened: WAL so readers never
block the single writer, ``isolation_level=None`` so Python's sqlite3 module never opens a
transaction behind our back (every write goes through :func:`transaction`), and a busy timeout so
a second process waits briefly for a writer instead of failing at once.

Schema versions are kept per *component* (``ledger``, ``lock``, ``local_backend``...) in one
``schema_migrations`` table, so stores sharing a file evolve independently. Migrations are plain
SQL, kept portable (no SQLite-only syntax beyond what PostgreSQL also accepts) so a shared database
can replace SQLite later.
"""

from __future__ import annotations

import random
import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Literal

from planner_operator.core import clock as clock_mod
from planner_operator.core import times
from planner_operator.errors import StateError

Synchronous = Literal["OFF", "NORMAL", "FULL", "EXTRA"]

# Long enough to ride out another process's short write transaction, short enough that a wedged
# writer surfaces as an error rather than a hang.
DEFAULT_BUSY_TIMEOUT = 5.0

# Both engines keep their schema history in this table (the same DDL on each).
MIGRATIONS_DDL = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    component TEXT NOT NULL,
    version INTEGER NOT NULL,
    applied_at TEXT NOT NULL,
    PRIMARY KEY (component, version)
)
"""


def now_iso(clock: clock_mod.Clock) -> str:
    """Now, as the one stored time format (``core.times``: UTC, milliseconds, ``Z``)."""
    return times.now(clock)


def connect(
    path: Path | str,
    *,
    synchronous: Synchronous = "NORMAL",
    busy_timeout: float = DEFAULT_BUSY_TIMEOUT,
    check_same_thread: bool = True,
    clock: clock_mod.Clock = clock_mod.SYSTEM,
) -> sqlite3.Connection:
    """Open (creating if needed) a state database with the pragmas every store relies on.

    ``synchronous=NORMAL`` in WAL mode survives a process crash but may lose the last commits on
    power loss; pass ``"FULL"`` where that matters more than write speed. ``check_same_thread``
    is sqlite3's guard; turn it off only where the owner serialises use of the connection itself.

    Opening is where a corrupt or foreign file shows up, so ``sqlite3.DatabaseError`` becomes a
    ``StateError`` that names the file and what to do about it.
    """
    memory = str(path) == ":memory:"
    if not memory:
        path = Path(path)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StateError(
                f"cannot create the directory for state database {path}: {exc}"
            ) from exc
    try:
        conn = sqlite3.connect(
            str(path),
            timeout=busy_timeout,
            isolation_level=None,
            check_same_thread=check_same_thread,
        )
    except sqlite3.Error as exc:
        raise StateError(f"cannot open state database {path}: {exc}") from exc
    try:
        conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
        _enable_wal(conn, clock, deadline=clock.monotonic() + busy_timeout)
        conn.execute(f"PRAGMA synchronous = {synchronous}")
        conn.execute("PRAGMA foreign_keys = ON")
        # Reading the schema forces SQLite to look at the file header: a non-database fails here.
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except sqlite3.DatabaseError as exc:
        conn.close()
        if getattr(exc, "sqlite_errorcode", None) in (
            sqlite3.SQLITE_NOTADB,
            sqlite3.SQLITE_CORRUPT,
        ):
            raise StateError(
                f"{path} is not a usable planner-operator state database ({exc}); move it aside "
                "(or point --state at another file) and run again: the ledger starts empty, and "
                "remote objects show as unmanaged until adopted"
            ) from exc
        # Busy, read-only, I/O...: the file may be fine, so don't suggest throwing it away.
        raise StateError(f"cannot open state database {path}: {exc}") from exc
    return conn


def _enable_wal(conn: sqlite3.Connection, clock: clock_mod.Clock, *, deadline: float) -> None:
    """Switch to WAL, retrying while another connection holds the lock the switch needs.

    Changing the journal mode needs an exclusive lock, and SQLite answers SQLITE_BUSY at once
    instead of calling the busy handler, so two processes opening a *new* file at the same
    instant (two appliers started together) failed with "database is locked". Once any of them
    has switched, the mode is stored in the file and the others' pragma succeeds.
    """
    while True:
        try:
            conn.execute("PRAGMA journal_mode = WAL").fetchone()
            return
        except sqlite3.OperationalError as exc:
            busy = (getattr(exc, "sqlite_errorcode", 0) & 0xFF) == sqlite3.SQLITE_BUSY
            if not busy or clock.monotonic() >= deadline:
                raise
        clock.sleep(random.uniform(0.005, 0.02))  # jitter: the racers must not retry in step


def data_version(path: Path) -> Callable[[], bool]:
    """A cheap poll: True when another connection committed to ``path`` since the last call
    (SQLite's ``PRAGMA data_version`` on a connection kept for it; the first call is True)."""
    conn = connect(path, check_same_thread=False)
    last = [-1]
    guard = threading.Lock()

    def changed() -> bool:
        with guard:
            current = int(conn.execute("PRAGMA data_version").fetchone()[0])
            moved = current != last[0]
            last[0] = current
        return moved

    return changed


def db_path(conn: sqlite3.Connection) -> str:
    """The file behind a connection, for error messages (":memory:" for an in-memory db)."""
    try:
        rows = conn.execute("PRAGMA database_list").fetchall()
    except sqlite3.ProgrammingError:  # closed: say so rather than hide the first error
        return "(connection closed)"
    for _, name, file in rows:
        if name == "main":
            return str(file) or ":memory:"
    return "?"  # pragma: no cover - every connection has a main database


@contextmanager
def transaction(conn: sqlite3.Connection, *, immediate: bool = True) -> Iterator[None]:
    """One explicit transaction: commit on success, roll back on any exception.

    ``immediate`` (the default) takes the write lock at BEGIN, so a read-then-write (a claim, an
    upsert after a check) cannot be interleaved by another writer and never fails half-way with
    SQLITE_BUSY on upgrade. Deferred is only for read-only snapshots.

    SQLite errors (busy past the timeout, constraint violations, a disk error) surface as
    ``StateError``; other exceptions pass through unchanged after the rollback.
    """
    try:
        conn.execute("BEGIN IMMEDIATE" if immediate else "BEGIN")
    except sqlite3.Error as exc:
        raise StateError(
            f"state database {db_path(conn)}: cannot start a transaction: {exc}"
        ) from exc
    try:
        yield
    except sqlite3.Error as exc:
        _rollback(conn)
        raise StateError(f"state database {db_path(conn)}: {exc}") from exc
    except BaseException:
        _rollback(conn)
        raise
    try:
        conn.execute("COMMIT")
    except sqlite3.Error as exc:
        _rollback(conn)
        raise StateError(f"state database {db_path(conn)}: commit failed: {exc}") from exc


def _rollback(conn: sqlite3.Connection) -> None:
    if conn.in_transaction:
        conn.execute("ROLLBACK")


def split_statements(script: str) -> list[str]:
    """Split SQL text into statements, honouring semicolons inside strings and triggers.

    ``executescript`` would do this but commits first, which would put each migration outside its
    own transaction.
    """
    statements: list[str] = []
    buffer = ""
    for piece in script.split(";"):
        buffer += piece + ";"
        if sqlite3.complete_statement(buffer):
            body = buffer.strip().rstrip(";").rstrip()
            if body:
                statements.append(body + ";")
            buffer = ""
    if buffer.strip(" \t\r\n;"):  # an unterminated tail: let SQLite report its own error
        statements.append(buffer.strip().rstrip(";").rstrip() + ";")
    return statements


def schema_version(conn: sqlite3.Connection, component: str) -> int:
    """The highest applied migration of ``component`` (0 when none, or no table yet)."""
    try:
        row = conn.execute(
            "SELECT MAX(version) FROM schema_migrations WHERE component = ?", (component,)
        ).fetchone()
    except sqlite3.OperationalError:
        return 0
    return int(row[0] or 0)


def migrate(
    conn: sqlite3.Connection,
    component: str,
    migrations: Sequence[str],
    *,
    clock: clock_mod.Clock = clock_mod.SYSTEM,
) -> int:
    """Bring ``component``'s tables up to ``len(migrations)``; return that version.

    ``migrations[i]`` is version ``i + 1`` and must never change once released: add a new entry
    instead. Each one runs in its own IMMEDIATE transaction together with its version row, and the
    version is re-read inside it, so two processes opening the same file at once apply each step
    exactly once. A database *newer* than this code is refused rather than written to, because
    old code could silently drop what the new schema relies on.
    """
    known = len(migrations)
    with transaction(conn):
        conn.execute(MIGRATIONS_DDL)
    current = schema_version(conn, component)
    _refuse_newer(conn, component, current, known)
    for version in range(current + 1, known + 1):
        with transaction(conn):
            applied = schema_version(conn, component)
            _refuse_newer(conn, component, applied, known)
            if applied >= version:
                continue
            for statement in split_statements(migrations[version - 1]):
                conn.execute(statement)
            conn.execute(
                "INSERT INTO schema_migrations (component, version, applied_at) VALUES (?, ?, ?)",
                (component, version, now_iso(clock)),
            )
    return known


def _refuse_newer(conn: sqlite3.Connection, component: str, current: int, known: int) -> None:
    if current > known:
        name = Path(db_path(conn)).name
        raise StateError(
            f"{name} was written by a newer planner-operator ({component} schema "
            f"v{current} > v{known}); upgrade planner-operator to use it"
        )
