"""Processes opening one *new* state database at the same instant all get a working connection.

Switching a fresh file to WAL needs an exclusive lock, and SQLite answers that race with an
immediate SQLITE_BUSY rather than waiting out the busy timeout: two appliers started together
used to fail with "database is locked" about one time in five (seen as a flaky
``test_two_appliers_together_exactly_one_applies``). The race needs real processes released
together, so each trial starts several and lets them go at one wall-clock instant.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

CHILD = """
import sys, time
from planner_operator.state import db, lock
start = float(sys.argv[2])
while time.time() < start:
    pass
try:
    conn = db.connect(sys.argv[1])
    db.migrate(conn, lock.COMPONENT, lock.MIGRATIONS.sqlite)
    print(conn.execute("PRAGMA journal_mode").fetchone()[0])
    conn.close()
except Exception as exc:
    print(f"FAIL {type(exc).__name__}: {exc}")
"""


def open_together(path: Path, processes: int) -> list[str]:
    start = time.time() + 0.5  # after every child has imported; they spin until then
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", CHILD, str(path), str(start)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(processes)
    ]
    return [p.communicate(timeout=60)[0].strip() for p in procs]


def trials(tmp_path: Path, count: int) -> None:
    for trial in range(count):
        path = tmp_path / f"trial-{trial}" / "ledger.db"
        assert open_together(path, processes=8) == ["wal"] * 8


def test_new_database_opened_by_many_processes_at_once(tmp_path: Path) -> None:
    trials(tmp_path, 4)


@pytest.mark.slow
def test_new_database_opened_by_many_processes_at_once_many_trials(tmp_path: Path) -> None:
    trials(tmp_path, 25)
