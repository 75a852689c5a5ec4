"""The shared database went away and came back: the pool serves a working connection, not the
dead one it held.

A restart of PostgreSQL (or a failover, or an idle connection cut by a proxy) kills every
pooled connection on the server side; the client only learns of it at the next statement. The
pool must check a connection before handing it out, so the first request after the database is
back succeeds instead of failing once per dead connection it still held.
"""

from __future__ import annotations

from pathlib import Path

import psycopg

from planner_operator.core.records import NewDelivery
from planner_operator.core.settings import Settings
from planner_operator.state import open as state_open
from tests.support.postgres import Cluster


def test_a_store_works_on_the_first_use_after_its_connections_were_cut(
    pg_cluster: Cluster, pg_url: str, tmp_path: Path
) -> None:
    settings = Settings.resolve(state_dir=tmp_path, env={"PLANNER_DATABASE_URL": pg_url})
    with state_open.inbox(settings) as inbox:
        inbox.insert(NewDelivery(id="composio:a", source="composio", body=b"{}"))
        assert inbox.counts() == {"received": 1}  # the pool now holds a used connection
        with psycopg.connect(pg_cluster.admin_url, autocommit=True) as admin:
            cut = admin.execute(
                "SELECT COUNT(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid() "
                "AND backend_type = 'client backend'"
            ).fetchone()
        assert cut is not None and cut[0] >= 1
        for n in range(3):  # every connection the pool held is dead: none may be handed out
            assert inbox.counts() == {"received": 1 + n}
            inbox.insert(NewDelivery(id=f"composio:b{n}", source="composio", body=b"{}"))
