"""The ``store`` fixture: every contract test runs once per engine, SQLite and PostgreSQL.

A test asks for ``store`` (a ``Settings``) and opens what it needs through ``state.open``, the
same entry the product uses, so the suite checks that entry as well as each store.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from planner_operator.core.settings import Settings


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    url = request.getfixturevalue("pg_url") if request.param == "postgres" else None
    settings = Settings.resolve(state_dir=tmp_path / "state", env={})
    return Settings(
        settings.state_dir,
        settings.state_db,
        settings.ledger_db,
        settings.lock_timeout,
        database_url=url,
    )
