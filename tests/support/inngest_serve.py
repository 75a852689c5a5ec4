"""`serve` against the fake Inngest: the operator app under uvicorn on loopback, env for the SDK.

Shared by the Inngest end-to-end tests (tests/backends/test_inngest_*.py).
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest
import uvicorn

from planner_operator.core.settings import Settings
from planner_operator.runtime.executors.base import Executors
from planner_operator.server.app import create_app
from tests.fakes.inngest_server import TEST_SIGNING_KEY, FakeInngest


@contextmanager
def operator_server(
    settings: Settings, env: dict[str, str], *, executors: Executors | None = None
) -> Iterator[str]:
    """`planner-operator serve` on a free loopback port, lifespan on (initial sync + watcher)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    origin = f"http://127.0.0.1:{sock.getsockname()[1]}"
    env["INNGEST_SERVE_ORIGIN"] = origin
    app = create_app(settings, env, reload_interval=0.1, executors=executors)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "serve did not start"
        time.sleep(0.01)
    try:
        yield origin
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


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
