"""`serve` against the fake Inngest: the operator app under uvicorn on loopback, env for the SDK.

Only the serving app registers with Inngest, so every test that applies to Inngest needs one:
``operator_server`` runs the whole `serve` app (lifespan on: initial sync and watcher), and
``serving_mount`` just the Inngest endpoint over a served-job table (what the backend contract
and CLI tests need: a PUT makes it sync). Shared by tests/backends, tests/cli, tests/server.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from planner_operator.backends.inngest.sdk import InngestConfig, Invocation
from planner_operator.core.settings import Settings
from planner_operator.runtime.executors.base import Executors
from planner_operator.server.app import create_app
from planner_operator.server.inngest_mount import InngestMount
from planner_operator.state import open as state_open
from planner_operator.state.served import ServedJobs
from tests.fakes import serving
from tests.fakes.inngest_server import TEST_SIGNING_KEY, FakeInngest


@contextmanager
def operator_server(
    settings: Settings,
    env: dict[str, str],
    *,
    executors: Executors | None = None,
    reload_interval: float = 0.1,
) -> Iterator[str]:
    """`planner-operator serve` on a free loopback port, lifespan on (initial sync + watcher,
    which looks at the served-job table every ``reload_interval`` seconds)."""
    sock = serving.loopback()
    origin = serving.origin(sock)
    env["INNGEST_SERVE_ORIGIN"] = origin
    app = create_app(settings, env, reload_interval=reload_interval, executors=executors)
    with serving.run_app(app, lifespan="on", sock=sock, startup_timeout=15):
        yield origin


def inngest_env(fake: FakeInngest, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The SDK's variables pointing at ``fake`` (dev or production mode), set and returned."""
    for name in list(os.environ):
        if name.startswith(("INNGEST_", "COMPOSIO_", "PLANNER_")):
            monkeypatch.delenv(name)
    env = {"PLANNER_TRIGGER_BACKEND": "local"}
    if fake.production:
        env |= {"INNGEST_SIGNING_KEY": TEST_SIGNING_KEY, "INNGEST_BASE_URL": fake.base_url}
    else:
        env |= {"INNGEST_DEV": fake.base_url}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return dict(env)


def wait_served(origin: str, *, timeout: float = 5.0) -> None:
    """Until the served app has synced the applied jobs (its watcher runs every 0.1 s)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = httpx.get(f"{origin}/healthz").json()["inngest"]
        if status["last_sync_ok"] and status["served_version"] > 0:
            return
        time.sleep(0.05)
    raise AssertionError(f"serve did not sync the applied jobs: {status}")


async def _no_runs(key: str, spec: Mapping[str, Any], call: Invocation) -> Any:
    raise AssertionError(f"serving_mount runs no jobs (called for {key})")


@contextmanager
def serving_mount(
    table: Settings | Path | str,
    env: Mapping[str, str],
    *,
    mount: list[InngestMount] | None = None,
) -> Iterator[str]:
    """The Inngest endpoint alone, over the served-job table of ``table`` (settings: theirs, as
    ``state.open`` finds it, shared database included; a path: that SQLite file), on a free
    loopback port; yields its origin (set it as INNGEST_SERVE_ORIGIN for the applier). No
    lifespan: it syncs when a PUT asks it to. ``mount`` (a list) receives the InngestMount."""
    sock = serving.loopback()
    origin = serving.origin(sock)
    config = InngestConfig.from_env({**env, "INNGEST_SERVE_ORIGIN": origin})
    opened = state_open.served_jobs(table) if isinstance(table, Settings) else ServedJobs(table)
    with opened as jobs:
        endpoint = InngestMount(config, jobs, _no_runs)
        if mount is not None:
            mount.append(endpoint)
        with serving.run_app(endpoint.app, sock=sock, startup_timeout=15):
            yield origin
