"""``state.open``: the one entry picks the engine from Settings and never shows a password."""

from __future__ import annotations

from pathlib import Path

import pytest

from planner_operator.core.settings import Settings
from planner_operator.errors import SourceError, StateError
from planner_operator.state import open as state_open
from planner_operator.state import postgres
from tests.support import canaries


def test_without_a_database_url_every_store_is_a_file_under_the_state_dir(tmp_path: Path) -> None:
    settings = Settings.resolve(state_dir=tmp_path, env={})
    assert not state_open.shared(settings)
    for name, path in {
        "ledger": settings.ledger_db,
        "inbox": settings.inbox_db,
        "runs": settings.runs_db,
        "served_jobs": settings.state_db,
    }.items():
        assert not state_open.exists(settings, name)  # type: ignore[arg-type]
        assert state_open.where(settings, name) == str(path)  # type: ignore[arg-type]
    with state_open.runs(settings), state_open.inbox(settings), state_open.ledger(settings):
        pass
    assert settings.runs_db.exists() and settings.inbox_db.exists()


def test_the_database_url_is_read_checked_and_kept_out_of_repr() -> None:
    env = {"PLANNER_DATABASE_URL": canaries.DATABASE_URL}
    settings = Settings.resolve(env=env)
    assert settings.database_url == canaries.DATABASE_URL and state_open.shared(settings)
    assert canaries.DATABASE_PASSWORD not in repr(settings)
    with pytest.raises(SourceError, match="PLANNER_DATABASE_URL=<hidden> is not a PostgreSQL"):
        Settings.resolve(env={"PLANNER_DATABASE_URL": "mysql://u:p@h/db"})


def test_an_unreachable_database_is_a_state_error_without_the_password(tmp_path: Path) -> None:
    settings = Settings.resolve(
        state_dir=tmp_path, env={"PLANNER_DATABASE_URL": canaries.DATABASE_URL}
    )
    with pytest.raises(StateError) as err:
        state_open.ledger(settings)
    message = str(err.value)
    assert "cannot connect to the state database postgresql://planner:***@127.0.0.1:1" in message
    assert "PLANNER_DATABASE_URL" in message
    assert canaries.DATABASE_PASSWORD not in message
    assert state_open.where(settings, "ledger") == "postgresql://planner:***@127.0.0.1:1/planner"


def test_placeholders_become_psycopg_ones_outside_quotes() -> None:
    assert postgres.to_pg("SELECT ? WHERE a LIKE ? ESCAPE '\\' AND b = '?%'") == (
        "SELECT %s WHERE a LIKE %s ESCAPE '\\' AND b = '?%%'"
    )


def test_a_newer_postgres_schema_is_refused(pg_url: str, tmp_path: Path) -> None:
    settings = Settings(tmp_path, tmp_path / "s.db", tmp_path / "l.db", database_url=pg_url)
    with state_open.ledger(settings):
        pass
    import psycopg

    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO schema_migrations (component, version, applied_at) "
            "VALUES ('ledger', 99, 'x')"
        )
    state_open.close_pools()  # a new process: it has not seen the ledger migrated
    with pytest.raises(StateError, match=r"newer planner-operator \(ledger schema v99 > v1\)"):
        state_open.ledger(settings)
