"""What CI against the shared state needs in tests: the production backends on fake servers, and
a fingerprint of everything the operator keeps (to prove a dry run wrote nothing).

:func:`production_env` is the environment a CI runner has (Inngest + Composio, pointed at the
fakes); :func:`fingerprint` reads every row of every table of the state, on the shared
PostgreSQL schema or in every SQLite file under the state directory, so two fingerprints are equal
exactly when nothing was inserted, updated, deleted or created in between.
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Mapping
from pathlib import Path

from planner_operator.core.settings import Settings
from tests.fakes.composio_server import FakeComposio
from tests.fakes.inngest_server import FakeInngest

AGENT = """\
name: Recruiting
planner:
  jobs:
    - name: morning
      schedule: "{schedule}"
      action: {{workflow: {{id: job-check}}}}
  triggers:
    - name: recruiter-email
      toolkit: gmail
      event: GMAIL_NEW_GMAIL_MESSAGE
      connected_account: ca_gmail_jobsearch
      config: {{labelIds: INBOX, interval: 5}}
      action: {{chat: {{template: "From {{sender}}: {{subject}}"}}}}
    - name: deploys
      webhook: {{secret_env: DEPLOY_HOOK_SECRET, scheme: github}}
      action: {{chat: {{template: "deploy"}}}}
"""


def agent(schedule: str = "0 9 * * 1") -> str:
    return AGENT.format(schedule=schedule)


def production_env(inngest: FakeInngest, composio: FakeComposio) -> dict[str, str]:
    """A CI runner's backends: Inngest (dev mode on the fake) and Composio (on its fake)."""
    return composio.env(INNGEST_DEV=inngest.base_url, PLANNER_SCHEDULE_BACKEND="inngest")


def fingerprint(settings: Settings) -> Mapping[str, str]:
    """Table (or ``file:table``) -> digest of its rows, in a stable order."""
    if settings.database_url:
        return _postgres(settings.database_url)
    found: dict[str, str] = {}
    for path in sorted(settings.state_dir.rglob("*")):
        if path.is_file() and not path.name.endswith(("-wal", "-shm")):
            found.update(_sqlite(path) if _is_sqlite(path) else {path.name: _digest(path)})
    return found


def _postgres(url: str) -> dict[str, str]:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        tables = [
            str(r[0])
            for r in conn.execute(
                "SELECT table_name FROM information_schema.tables "
                "WHERE table_schema = current_schema() ORDER BY table_name"
            ).fetchall()
        ]
        out: dict[str, str] = {}
        for table in tables:
            rows = conn.execute(f'SELECT t::text FROM "{table}" t ORDER BY 1').fetchall()
            out[table] = hashlib.sha256(repr(rows).encode()).hexdigest()
        return out


def _is_sqlite(path: Path) -> bool:
    with path.open("rb") as handle:
        return handle.read(16) == b"SQLite format 3\x00"


def _sqlite(path: Path) -> dict[str, str]:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        tables = [
            str(r[0])
            for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY 1")
        ]
        out: dict[str, str] = {}
        for table in tables:
            rows = sorted(repr(r) for r in conn.execute(f'SELECT * FROM "{table}"'))
            out[f"{path.name}:{table}"] = hashlib.sha256(repr(rows).encode()).hexdigest()
        return out
    finally:
        conn.close()


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
