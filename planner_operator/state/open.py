"""The one way to open a store: from ``Settings``, SQLite files or the shared PostgreSQL database.

Every caller (CLI, server, worker, scheduler, read model) opens what it keeps through these
functions, so where the state lives is decided here once: without ``PLANNER_DATABASE_URL``
each store is a SQLite file under the state directory (paths from ``Settings``), exactly as a
one-machine user always had; with it, every store is a set of tables in that one PostgreSQL
database, shared by every process and replica, through one connection pool per process.

=========== ====================================== ==========================================
store       SQLite (embedded default)              PostgreSQL
=========== ====================================== ==========================================
ledger      ``settings.ledger_db``                 tables ``resources``, ``history``, ...
apply lock  a row in ``settings.ledger_db``        advisory lock + ``locks`` row
inbox       ``settings.inbox_db``                  ``deliveries``, ``trigger_status``
runs        ``settings.runs_db``                   ``runs``, ``run_slots``, counters
served jobs ``settings.state_db``                  ``inngest_jobs``, ``inngest_state``
secrets     ``settings.secrets_db`` (0600)         ``secrets``
parse cache ``settings.parse_cache_db``            ``parse_results``
=========== ====================================== ==========================================

Each store is one class over ``sql.Database`` (the engine's Protocol, with a SQLite and a
PostgreSQL implementation), so the class itself is the store's interface; only the apply lock
has two implementations, behind ``lock.ApplyLocker``.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Literal

from planner_operator.core import clock as clock_mod
from planner_operator.core.settings import Settings
from planner_operator.state import db, sql
from planner_operator.state import lock as lock_mod
from planner_operator.state.inbox import Inbox
from planner_operator.state.ledger import Ledger
from planner_operator.state.parse_cache import ParseCache
from planner_operator.state.runs import RunStore
from planner_operator.state.secrets import Secrets
from planner_operator.state.served import ServedJobs

StoreName = Literal["ledger", "inbox", "runs", "served_jobs", "secrets", "parse_cache"]


def shared(settings: Settings) -> bool:
    """Whether the state is the shared PostgreSQL database (else SQLite files)."""
    return bool(settings.database_url)


def _database(settings: Settings, component: str) -> sql.Database:
    from planner_operator.state import postgres

    assert settings.database_url
    return postgres.pool(settings.database_url).database(component)


def _path(settings: Settings, store: StoreName) -> Path:
    return {
        "ledger": settings.ledger_db,
        "inbox": settings.inbox_db,
        "runs": settings.runs_db,
        "served_jobs": settings.state_db,
        "secrets": settings.secrets_db,
        "parse_cache": settings.parse_cache_db,
    }[store]


def _location(settings: Settings, store: StoreName) -> Path | sql.Database:
    """A store's tables on the shared database (component = store name), else its file."""
    return _database(settings, store) if shared(settings) else _path(settings, store)


def where(settings: Settings, store: StoreName) -> str:
    """Where ``store`` lives, for messages (a file, or the database URL without password)."""
    if shared(settings):
        from planner_operator.state import postgres

        assert settings.database_url
        return postgres.redact(settings.database_url)
    return str(_path(settings, store))


def exists(settings: Settings, store: StoreName) -> bool:
    """Whether ``store`` has been written yet, so a read can say "nothing yet" instead of
    creating an empty store (a SQLite file that is not there; the shared database always is)."""
    return shared(settings) or _path(settings, store).exists()


def backend_state(settings: Settings, component: str) -> Path | sql.Database:
    """Where a backend keeps its own tables (``component``): the shared database when there
    is one, else ``settings.state_db``.

    What the production backends keep beside the remote system (Composio's scope of accounts
    and last subscription, the signed-webhook trigger table) is part of the state every
    applier must see: kept in one CI runner's file, a fresh runner would list too little and
    re-create what another one made.
    """
    if shared(settings):
        return _database(settings, component)
    return settings.state_db


def ledger(settings: Settings, *, clock: clock_mod.Clock = clock_mod.SYSTEM) -> Ledger:
    return Ledger(_location(settings, "ledger"), clock=clock)


def apply_lock(
    settings: Settings,
    *,
    name: str = "apply",
    holder: str | None = None,
    timeout: float = 0.0,
    stale_after: timedelta = lock_mod.DEFAULT_STALE_AFTER,
    clock: clock_mod.Clock = clock_mod.SYSTEM,
) -> lock_mod.ApplyLocker:
    """The apply lock (a row in the ledger file, or an advisory lock on the shared database)."""
    if shared(settings):
        from planner_operator.state import pg_lock, postgres

        assert settings.database_url
        return pg_lock.PostgresApplyLock(
            postgres.pool(settings.database_url),
            name=name,
            holder=holder,
            timeout=timeout,
            stale_after=stale_after,
            clock=clock,
        )
    return lock_mod.ApplyLock(
        settings.ledger_db,
        name=name,
        holder=holder,
        timeout=timeout,
        stale_after=stale_after,
        clock=clock,
    )


def inbox(
    settings: Settings,
    *,
    synchronous: db.Synchronous = "NORMAL",
    clock: clock_mod.Clock = clock_mod.SYSTEM,
) -> Inbox:
    """``synchronous`` is SQLite's durability knob (``PLANNER_INBOX_SYNCHRONOUS``); PostgreSQL
    commits durably whatever it says."""
    if shared(settings):
        return Inbox(_database(settings, "inbox"), clock=clock)
    return Inbox(settings.inbox_db, synchronous=synchronous, clock=clock)


def runs(settings: Settings, *, clock: clock_mod.Clock = clock_mod.SYSTEM) -> RunStore:
    return RunStore(_location(settings, "runs"), clock=clock)


def served_jobs(settings: Settings, *, clock: clock_mod.Clock = clock_mod.SYSTEM) -> ServedJobs:
    """The jobs applied to Inngest, which ``serve`` registers (the applier writes them)."""
    return ServedJobs(_location(settings, "served_jobs"), clock=clock)


def secrets(settings: Settings, *, clock: clock_mod.Clock = clock_mod.SYSTEM) -> Secrets:
    """Operator secrets: one private file, or a table every replica and the rotator share."""
    return Secrets(_location(settings, "secrets"), clock=clock)


def parse_cache(settings: Settings, *, clock: clock_mod.Clock = clock_mod.SYSTEM) -> ParseCache:
    """Parsed agent files by content: a disposable file, or a table every process shares."""
    return ParseCache(_location(settings, "parse_cache"), clock=clock)


def close_pools() -> None:
    """Close the shared database's pools (tests that drop a database; exit does it too)."""
    import sys

    postgres = sys.modules.get("planner_operator.state.postgres")
    if postgres is not None:
        postgres.close_pools()
