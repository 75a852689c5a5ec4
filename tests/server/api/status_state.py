"""Shared state for the status API tests: the repo's example agents reconciled once per module
on the embedded backend, copied into a fresh state dir per test and served by the real app
(auth, reader, operations, inbox worker, local executors writing to outbox.db)."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from planner_operator.backends.select import open_backends
from planner_operator.core.clock import Clock, ManualClock
from planner_operator.core.settings import Settings
from planner_operator.reconcile.engine import SourceSpec, reconcile
from planner_operator.server.app import create_app

AGENTS = Path(__file__).resolve().parents[3] / "agents"
TOKEN = "status-api-test-token-0123456789abcdef"
ENV: Mapping[str, str] = {
    "PLANNER_API_TOKEN": TOKEN,
    "DEPLOY_WEBHOOK_SECRET": "deploy-secret-for-status-tests",
}
BEARER = {"Authorization": f"Bearer {TOKEN}"}
# A Monday morning in Berlin: the day the example's morning-job-check is scheduled for, and
# the one the run-detail test's expectations (a message under 160 characters) are written for.
MONDAY = datetime(2026, 12, 7, 8, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def applied_once(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """`planner-operator reconcile --path agents` on the embedded backend, once per module."""
    settings = Settings.resolve(state_dir=tmp_path_factory.mktemp("applied"), env={})
    outcome = reconcile(
        SourceSpec(path=AGENTS), settings, backends_factory=lambda s: open_backends(s, env={})
    )
    assert outcome.applied is not None and outcome.applied.ok, outcome.applied
    return settings


@pytest.fixture
def applied(applied_once: Settings, tmp_path: Path) -> Settings:
    """A private copy of the applied state (tests change backends, runs and the inbox)."""
    state = tmp_path / "state"
    state.mkdir()
    for name in ("state.db", "ledger.db"):
        shutil.copyfile(applied_once.state_dir / name, state / name)
    return Settings.resolve(state_dir=state, env={})


def serve(settings: Settings, clock: Clock | None = None, /, **env: str) -> TestClient:
    """The app on a clock pinned to :data:`MONDAY` (or ``clock``): what it renders and lists
    does not depend on the day the tests run."""
    app = create_app(settings, {**ENV, **env}, clock=clock or ManualClock(MONDAY))
    return TestClient(app, raise_server_exceptions=True)


@pytest.fixture
def client(applied: Settings) -> Iterator[TestClient]:
    with serve(applied) as test_client:
        yield test_client


def wait_for(predicate: Callable[[], Any], timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)
    return value


def finished(client: TestClient, location: str) -> dict[str, Any]:
    """The run behind a Location header, once it is no longer running."""

    def done() -> dict[str, Any] | None:
        run: dict[str, Any] = client.get(location).json()
        return run if run["status"] != "running" else None

    result: dict[str, Any] = wait_for(done)
    return result
