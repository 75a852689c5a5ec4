"""A throwaway PostgreSQL for the store contract suite: one cluster per test session.

The cluster comes from Debian's ``postgresql`` binaries (``initdb`` + ``pg_ctl`` in a temporary
directory, listening on a unix socket only, durability off: it is thrown away), or is the database
``PLANNER_TEST_DATABASE_URL`` names (a role that may create schemas in it). Every test gets a
fresh, empty schema of its own (``search_path`` set through the URL), dropped afterwards: as
isolated as a database per test for the stores, which name no schema, and milliseconds to make
instead of a second.

``initdb`` refuses to run as root, so under root (CI runs as root) the cluster runs as the
``postgres`` system user the Debian package creates, in directories it owns. Without PostgreSQL
the PostgreSQL half of the suite is skipped with a message saying how to install it, and fails
instead under ``PLANNER_CI=1`` (CI must run it).
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import pytest

ENV_URL = "PLANNER_TEST_DATABASE_URL"
INSTALL = (
    "PostgreSQL is not installed: `apt-get install postgresql` (Debian's initdb and pg_ctl), "
    f"or point {ENV_URL} at a server where this role may create databases"
)
PORT = 5432  # only names the socket file: the socket directory is the cluster's own


def binaries() -> Path | None:
    """The directory of ``initdb``/``pg_ctl``: Debian's newest, else ``pg_config``'s."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=_major)
    if found:
        return found[-1].parent
    pg_config = shutil.which("pg_config")
    if pg_config:
        out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=False)
        bindir = Path(out.stdout.strip())
        if (bindir / "initdb").exists():
            return bindir
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def _major(path: Path) -> int:
    try:
        return int(path.parent.parent.name)
    except ValueError:
        return 0


@dataclass
class Cluster:
    """A running server and how to reach it as its superuser (``admin_url``)."""

    admin_url: str
    stop: Callable[[], None]
    started_in: float = 0.0  # seconds initdb + start took (0 for an external server)
    # a private cluster's fast shutdown, ``down`` seconds without a server, and start again
    restart: Callable[[float], None] = lambda down: None

    def schema_url(self, schema: str) -> str:
        """The cluster's URL with ``search_path`` set to ``schema`` for every connection."""
        parts = urlsplit(self.admin_url)
        option = quote(f"-csearch_path={schema}", safe="")
        query = f"{parts.query}&options={option}" if parts.query else f"options={option}"
        return urlunsplit(parts._replace(query=query))

    def create(self) -> str:
        import psycopg

        name = f"planner_test_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(f'CREATE SCHEMA "{name}"')
        return name

    def drop(self, name: str) -> None:
        import psycopg

        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')


def start_cluster(*, durable: bool = False) -> Cluster:
    """Start a private cluster (see the module docstring); raises RuntimeError on failure.

    ``durable`` keeps PostgreSQL's defaults (fsync, synchronous commit, full-page writes), as a
    production server has them: the benchmarks measure that, the tests need no durability."""
    bindir = binaries()
    if bindir is None:
        raise FileNotFoundError(INSTALL)
    began = time.monotonic()
    root = Path(tempfile.mkdtemp(prefix="planner-pg-"))
    run_as: dict[str, Any] = {}  # subprocess's own user switch (no preexec_fn: threads run)
    if os.geteuid() == 0:
        try:
            user = pwd.getpwnam("postgres")
        except KeyError:
            raise RuntimeError(
                "running as root, and there is no `postgres` user to run the test cluster as "
                "(initdb refuses root); install Debian's postgresql package"
            ) from None
        os.chown(root, user.pw_uid, user.pw_gid)
        run_as = {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}
    data, sockets = root / "data", root
    env = {**os.environ, "LC_ALL": "C", "TZ": "UTC"}

    def run(*args: str) -> None:
        done = subprocess.run(
            args,
            check=False,
            env=env,
            cwd=root,
            capture_output=True,
            text=True,
            **run_as,  # initdb refuses root: the cluster runs as `postgres`
        )
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(args[:2])} failed:\n{done.stdout}\n{done.stderr}")

    fast = "" if durable else "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
    options = (
        f"-k {sockets} -p {PORT} -c listen_addresses='' {fast}-c max_connections=200 "
        "-c shared_buffers=32MB"
    )
    run(str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres", "--no-sync",
        "-E", "UTF8", "--locale=C")  # fmt: skip
    run(str(bindir / "pg_ctl"), "-D", str(data), "-l", str(root / "server.log"), "-o", options,
        "-w", "-t", "60", "start")  # fmt: skip

    def stop() -> None:
        with contextlib.suppress(RuntimeError):
            run(str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(root, ignore_errors=True)

    def restart(down: float = 0.0) -> None:
        run(str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "-t", "60", "stop")
        time.sleep(down)
        run(str(bindir / "pg_ctl"), "-D", str(data), "-l", str(root / "server.log"), "-o",
            options, "-w", "-t", "60", "start")  # fmt: skip

    url = f"postgresql://postgres@/postgres?host={quote(str(sockets), safe='/')}&port={PORT}"
    return Cluster(url, stop, time.monotonic() - began, restart)


def _required() -> bool:
    return os.environ.get("PLANNER_CI") == "1"


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[Cluster]:
    """The session's PostgreSQL (started on first use); skipped, or failed in CI, if none."""
    external = os.environ.get(ENV_URL)
    if external:
        yield Cluster(external, lambda: None)
        return
    try:
        cluster = start_cluster()
    except (FileNotFoundError, RuntimeError) as exc:
        if _required():
            pytest.fail(f"PLANNER_CI=1 needs PostgreSQL for the store contract suite: {exc}")
        pytest.skip(str(exc))
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def pg_url(pg_cluster: Cluster) -> Iterator[str]:
    """A fresh, empty schema on the session's cluster; dropped after the test."""
    from planner_operator.state import open as state_open

    name = pg_cluster.create()
    try:
        yield pg_cluster.schema_url(name)
    finally:
        state_open.close_pools()  # a pool left open would keep the database busy
        pg_cluster.drop(name)
