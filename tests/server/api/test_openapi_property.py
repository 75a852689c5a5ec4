"""Schemathesis against the server's own OpenAPI document: every documented operation, with
generated requests (valid and invalid), must never answer 5xx and must answer what the document
says (status codes, content types, response bodies against their schemas).

The server is the real app on a real uvicorn, after a reconcile of the example agents, with the
bearer token sent on every request. The webhook receivers' signature check is swapped for one
that trusts the headers (``TRUSTING``): generated requests cannot be signed, and must
still reach the parsing, routing and inbox code behind the check. Production never swaps it.

Excluded check: ``positive_data_acceptance``. Two rules cannot be written in OpenAPI and answer
422 on schema-valid input by design: ``GET /api/runs`` with ``job``/``trigger`` but no
``agent``, and a trigger-test body that cannot fill the action's template (the missing variable
is named). Every other default check runs.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from planner_operator.core.settings import Settings
from planner_operator.server import signatures
from planner_operator.server.app import create_app
from tests.fakes.serving import run_app
from tests.server.api.status_state import BEARER, ENV, applied_once
from tests.support.openapi_cases import failures, operations

__all__ = ["applied_once"]
EXAMPLES = 20  # per operation; `make test-all` runs 300


def trust_id(secret: str, *, msg_id: str | None, **_: object) -> str:
    """Accepts any well-formed id: the check itself is covered in tests/server."""
    return signatures.check_id(msg_id)


def trust_github(secret: str, *, body: bytes, **_: object) -> str:
    return hashlib.sha256(body).hexdigest()


TRUSTING = signatures.Verifier(composio=trust_id, standard=trust_id, github=trust_github)


@pytest.fixture(scope="module")
def base_url(applied_once: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    state = tmp_path_factory.mktemp("openapi")
    for name in ("state.db", "ledger.db"):
        (state / name).write_bytes((Path(applied_once.state_dir) / name).read_bytes())
    settings = Settings.resolve(state_dir=state, env={})
    env = {**ENV, "COMPOSIO_WEBHOOK_SECRET": "openapi-suite-composio-secret"}
    app = create_app(settings, env)
    runtime = app.state.runtime
    assert runtime.webhooks is not None
    runtime.webhooks.verifier = TRUSTING
    with run_app(app, lifespan="on") as url:
        yield url


def test_every_operation_matches_the_document(base_url: str) -> None:
    run_suite(base_url, EXAMPLES)


@pytest.mark.slow
def test_every_operation_matches_the_document_long(base_url: str) -> None:
    run_suite(base_url, 300)


def run_suite(base_url: str, examples: int) -> None:
    ops = operations(base_url, BEARER)
    labels = {op.label for op in ops}
    # The document covers the API, the Triggers-module routes, metrics and the webhook receivers.
    for expected in (
        "GET /api/jobs",
        "POST /api/jobs/{agent}/{job}/run",
        "GET /api/runs/{run_id}",
        "POST /triggers/{agent}/{trigger}/test",
        "DELETE /workflows/{workflow_id}",
        "GET /metrics",
        "POST /webhooks/composio",
        "POST /webhooks/{agent}/{trigger}",
    ):
        assert expected in labels, sorted(labels)
    found = failures(ops, base_url, BEARER, examples)
    assert not found, "\n\n".join(found)
