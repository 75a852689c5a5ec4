"""db.py: the pragmas, transactions and migrations every store relies on, on real SQLite files."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from planner_operator.errors import StateError
from planner_operator.state import db

V1 = "CREATE TABLE things (id INTEGER PRIMARY KEY, name TEXT NOT NULL);"
V2 = "ALTER TABLE things ADD COLUMN note TEXT; CREATE INDEX things_name ON things (name);"


def versions(conn: sqlite3.Connection, component: str) -> list[int]:
    rows = conn.execute(
        "SELECT version FROM schema_migrations WHERE component = ? ORDER BY version",
        (component,),
    ).fetchall()
    return [int(r[0]) for r in rows]


def test_connect_creates_parent_dirs_and_sets_pragmas(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "state.db"
    conn = db.connect(path)
    try:
        assert path.exists()
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
        assert conn.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
        assert conn.execute("PRAGMA busy_timeout").fetchone()[0] == 5000
        assert conn.isolation_level is None
    finally:
        conn.close()


def test_connect_synchronous_is_configurable(tmp_path: Path) -> None:
    conn = db.connect(tmp_path / "s.db", synchronous="FULL", busy_timeout=0.25)
    try:
        assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2
        assert conn.execute("PRAGMA busy_timeout").fetchone()[0] == 250
    finally:
        conn.close()


def test_connect_in_memory(tmp_path: Path) -> None:
    conn = db.connect(":memory:")
    try:
        assert db.migrate(conn, "demo", [V1]) == 1
        assert db.db_path(conn) == ":memory:"
    finally:
        conn.close()


def test_a_transaction_on_a_closed_connection_is_a_state_error(tmp_path: Path) -> None:
    conn = db.connect(tmp_path / "state.db")
    conn.close()
    closed = r"\(connection closed\): cannot start a transaction"
    with pytest.raises(StateError, match=closed), db.transaction(conn):
        pass


def test_garbage_file_is_a_state_error_naming_the_path(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    path.write_bytes(b"this is not a database, it is a shopping list\n" * 200)
    with pytest.raises(StateError) as err:
        db.connect(path)
    message = str(err.value)
    assert str(path) in message
    assert "not a usable" in message
    assert "move it aside" in message


def test_directory_instead_of_file_is_a_state_error(tmp_path: Path) -> None:
    (tmp_path / "state.db").mkdir()
    with pytest.raises(StateError, match=r"state\.db"):
        db.connect(tmp_path / "state.db")


def test_transaction_commits(tmp_path: Path) -> None:
    conn = db.connect(tmp_path / "t.db")
    db.migrate(conn, "demo", [V1])
    with db.transaction(conn):
        conn.execute("INSERT INTO things (name) VALUES ('a')")
    assert not conn.in_transaction
    other = db.connect(tmp_path / "t.db")
    assert other.execute("SELECT name FROM things").fetchall() == [("a",)]
    other.close()
    conn.close()


def test_transaction_rolls_back_and_reraises_other_exceptions(tmp_path: Path) -> None:
    conn = db.connect(tmp_path / "t.db")
    db.migrate(conn, "demo", [V1])

    def failing_write() -> None:
        with db.transaction(conn):
            conn.execute("INSERT INTO things (name) VALUES ('a')")
            raise KeyError("boom")

    with pytest.raises(KeyError):
        failing_write()
    assert not conn.in_transaction
    assert conn.execute("SELECT count(*) FROM things").fetchone()[0] == 0
    conn.close()


def test_transaction_turns_sqlite_errors_into_state_errors(tmp_path: Path) -> None:
    conn = db.connect(tmp_path / "t.db")
    db.migrate(conn, "demo", [V1])

    def half_valid_write() -> None:
        with db.transaction(conn):
            conn.execute("INSERT INTO things (name) VALUES ('kept?')")
            conn.execute("INSERT INTO things (name) VALUES (NULL)")

    with pytest.raises(StateError, match="NOT NULL"):
        half_valid_write()
    assert conn.execute("SELECT count(*) FROM things").fetchone()[0] == 0
    conn.close()


def second_writer(conn: sqlite3.Connection) -> None:
    with db.transaction(conn):
        conn.execute("CREATE TABLE never (x INTEGER)")  # pragma: no cover - never reached


def test_immediate_transaction_excludes_a_second_writer(tmp_path: Path) -> None:
    first = db.connect(tmp_path / "t.db")
    second = db.connect(tmp_path / "t.db", busy_timeout=0.05)
    try:
        with db.transaction(first):
            with pytest.raises(StateError, match="cannot start a transaction"):
                second_writer(second)
            # A deferred (read) transaction still works alongside the writer under WAL.
            with db.transaction(second, immediate=False):
                second.execute("SELECT count(*) FROM sqlite_master").fetchone()
    finally:
        first.close()
        second.close()


def test_migrate_applies_in_order_and_is_idempotent(tmp_path: Path) -> None:
    path = tmp_path / "m.db"
    conn = db.connect(path)
    assert db.migrate(conn, "demo", [V1]) == 1
    assert db.migrate(conn, "demo", [V1]) == 1
    conn.close()

    conn = db.connect(path)  # reopen, then a release adds a migration
    assert db.migrate(conn, "demo", [V1, V2]) == 2
    assert db.migrate(conn, "demo", [V1, V2]) == 2
    assert versions(conn, "demo") == [1, 2]
    conn.execute("INSERT INTO things (name, note) VALUES ('x', 'y')")
    conn.close()


def test_components_are_versioned_independently(tmp_path: Path) -> None:
    conn = db.connect(tmp_path / "m.db")
    db.migrate(conn, "demo", [V1, V2])
    assert db.migrate(conn, "other", ["CREATE TABLE other_t (x INTEGER);"]) == 1
    assert versions(conn, "demo") == [1, 2]
    assert versions(conn, "other") == [1]
    assert db.schema_version(conn, "nobody") == 0
    conn.close()


def test_newer_database_is_refused(tmp_path: Path) -> None:
    conn = db.connect(tmp_path / "state.db")
    db.migrate(conn, "demo", [V1, V2, "SELECT 1;", "SELECT 1;", "SELECT 1;"])
    with pytest.raises(StateError) as err:
        db.migrate(conn, "demo", [V1, V2, "SELECT 1;"])
    assert str(err.value) == (
        "state.db was written by a newer planner-operator (demo schema v5 > v3); "
        "upgrade planner-operator to use it"
    )
    conn.close()


def test_failed_migration_leaves_no_trace(tmp_path: Path) -> None:
    conn = db.connect(tmp_path / "m.db")
    broken = "CREATE TABLE half (x INTEGER); INSERT INTO no_such_table VALUES (1);"
    with pytest.raises(StateError, match="no_such_table"):
        db.migrate(conn, "demo", [V1, broken])
    assert versions(conn, "demo") == [1]
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert "half" not in tables
    conn.close()


def test_split_statements_keeps_semicolons_in_strings_and_triggers() -> None:
    script = """
        CREATE TABLE t (x TEXT);
        INSERT INTO t VALUES ('a;b');
        CREATE TRIGGER t_ins AFTER INSERT ON t BEGIN
            UPDATE t SET x = x || ';' WHERE rowid = new.rowid;
        END;
        SELECT 1
    """
    statements = db.split_statements(script)
    assert len(statements) == 4
    assert statements[1] == "INSERT INTO t VALUES ('a;b');"
    assert statements[2].startswith("CREATE TRIGGER")
    assert statements[2].endswith("END;")
    assert statements[3] == "SELECT 1;"
    assert db.split_statements("  ;\n ; ") == []


def test_migration_with_a_trigger_runs(tmp_path: Path) -> None:
    conn = db.connect(tmp_path / "m.db")
    db.migrate(
        conn,
        "demo",
        [
            """
            CREATE TABLE t (x TEXT);
            CREATE TRIGGER t_ins AFTER INSERT ON t BEGIN
                UPDATE t SET x = x || '!' WHERE rowid = new.rowid;
            END;
            """
        ],
    )
    conn.execute("INSERT INTO t VALUES ('hi')")
    assert conn.execute("SELECT x FROM t").fetchone()[0] == "hi!"
    conn.close()


def test_concurrent_migrations_apply_each_step_once(tmp_path: Path) -> None:
    path = tmp_path / "m.db"
    n = 6
    barrier = threading.Barrier(n)
    errors: list[BaseException] = []

    def open_and_migrate() -> None:
        conn = db.connect(path)
        try:
            barrier.wait()
            db.migrate(conn, "demo", [V1, V2])
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)
        finally:
            conn.close()

    threads = [threading.Thread(target=open_and_migrate) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert errors == []
    conn = db.connect(path)
    assert versions(conn, "demo") == [1, 2]
    conn.close()
