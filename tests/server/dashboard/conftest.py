"""The dashboard over real state: the repo's example agents reconciled into a tmp state dir on
the embedded backend, served by the real app (auth, reader, operations, local executors)."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from planner_operator.backends.select import open_backends
from planner_operator.core.settings import Settings
from planner_operator.reconcile.engine import SourceSpec, reconcile
from planner_operator.server.app import create_app
from tests.fakes.serving import run_app

AGENTS = Path(__file__).resolve().parents[3] / "agents"
TOKEN = "dashboard-test-token-0123456789abcdef"
ENV: Mapping[str, str] = {
    "PLANNER_API_TOKEN": TOKEN,
    "DEPLOY_WEBHOOK_SECRET": "whsec_" + "c2VjcmV0LWZvci10aGUtZGVwbG95LWhvb2stMTIz",
    "PLANNER_WORKER_POLL": "0.05",
}
BEARER = {"Authorization": f"Bearer {TOKEN}"}


def applied_state(state_dir: Path) -> Settings:
    """A state dir after `planner-operator reconcile --path agents` on the embedded backend."""
    settings = Settings.resolve(state_dir=state_dir, env={})
    outcome = reconcile(
        SourceSpec(path=AGENTS), settings, backends_factory=lambda s: open_backends(s, env={})
    )
    assert outcome.applied is not None
    assert outcome.applied.ok, outcome.applied.failed
    return settings


@pytest.fixture
def applied(tmp_path: Path) -> Settings:
    return applied_state(tmp_path / "state")


@pytest.fixture
def client(applied: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(applied, ENV), raise_server_exceptions=True) as test_client:
        yield test_client


@pytest.fixture
def empty_client(tmp_path: Path) -> Iterator[TestClient]:
    settings = Settings.resolve(state_dir=tmp_path / "empty", env={})
    with TestClient(create_app(settings, ENV), raise_server_exceptions=True) as test_client:
        yield test_client


def serve(app: FastAPI) -> AbstractContextManager[str]:
    """A real uvicorn on 127.0.0.1 with the lifespan on (the app starts its worker there), as
    ``planner-operator serve`` runs it; yields the base URL once uvicorn is serving."""
    return run_app(app, lifespan="on")


def rows(html: str, kind: str) -> dict[str, str]:
    """The table rows of one kind ("job", "trigger", "run") by key/id: a row's raw HTML."""
    found = re.findall(
        rf'<tr class="{kind}" data-(?:key|id)="([^"]+)">(.*?)</tr>', html, flags=re.DOTALL
    )
    return dict(found)
