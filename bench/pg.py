"""PostgreSQL for the benchmarks: ``PLANNER_BENCH_DATABASE_URL``, else a private cluster.

The private cluster is the test suite's (``tests/support/postgres.py``: Debian's binaries, a
unix socket in a temporary directory) but started with PostgreSQL's durable defaults (fsync,
synchronous commit), as a production server runs. Each benchmark gets a fresh schema of its own.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

from tests.support.postgres import Cluster, start_cluster

ENV_URL = "PLANNER_BENCH_DATABASE_URL"


@contextlib.contextmanager
def cluster() -> Iterator[Cluster | None]:
    """The benchmark's server, or None (said on stdout) when there is none."""
    external = os.environ.get(ENV_URL)
    if external:
        yield Cluster(external, lambda: None)
        return
    try:
        found = start_cluster(durable=True)
    except (FileNotFoundError, RuntimeError) as exc:
        print(f"  PostgreSQL skipped: {exc}", flush=True)
        yield None
        return
    try:
        yield found
    finally:
        found.stop()


@contextlib.contextmanager
def schema(server: Cluster) -> Iterator[str]:
    """A fresh, empty schema on ``server``; its URL (``search_path`` set), dropped afterwards."""
    from planner_operator.state import open as state_open

    name = server.create()
    try:
        yield server.schema_url(name)
    finally:
        state_open.close_pools()
        server.drop(name)


def description(url: str) -> str:
    """Which server the figures are from, for BENCHMARKS.md."""
    import psycopg

    with psycopg.connect(url) as conn:
        row = conn.execute("SHOW server_version").fetchone()
    version = f"PostgreSQL {row[0] if row else '?'}"
    if os.environ.get(ENV_URL):
        return f"{version}, the server {ENV_URL} names"
    return (
        f"{version}, a private cluster on a unix socket on this machine, with its durable "
        "defaults (fsync, synchronous commit)"
    )
