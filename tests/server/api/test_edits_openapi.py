"""Schemathesis against the edit routes of a server that follows a work tree: generated
requests (valid and invalid) never answer 5xx and answer what the document says. The suite in
``test_openapi_property.py`` covers the same routes on a read-only ``serve``."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from planner_operator.core.clock import ManualClock
from planner_operator.core.settings import Settings
from planner_operator.edit.target import Target
from planner_operator.server.app import create_app
from tests.fakes.serving import run_app
from tests.server.api.status_state import MONDAY
from tests.server.api.test_edits import AGENTS, BEARER, ENV
from tests.support.openapi_cases import failures, operations

EXAMPLES = 8  # per operation; every route of the slice, ~15 s


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("edits-openapi")
    tree = Path(shutil.copytree(AGENTS, root / "agents"))
    settings = Settings.resolve(state_dir=root / "state", env={})
    app = create_app(settings, ENV, clock=ManualClock(MONDAY), edits=Target(path=tree))
    with run_app(app, lifespan="on") as url:
        yield url


def test_the_edit_routes_match_the_document(base_url: str) -> None:
    ops = [
        op
        for op in operations(base_url, BEARER)
        if op.path.startswith("/api/agents")
        or (op.path.startswith("/triggers") and op.method.upper() != "GET")
    ]
    assert len(ops) >= 12, [o.label for o in ops]
    found = failures(ops, base_url, BEARER, EXAMPLES)
    assert not found, "\n\n".join(found)
