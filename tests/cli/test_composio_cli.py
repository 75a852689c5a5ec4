"""`planner-operator composio trigger-types`: the live list, text and JSON, over the fake API.

The fake serves ``GET /api/v3.1/triggers_types`` as Composio does (toolkit filter, 50 per page,
an opaque cursor; the shape is checked against composio_client's models in
tests/fakes/test_composio_server.py), so paging here is the SDK's real request sequence.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from typer.testing import CliRunner

from planner_operator.cli.main import app
from planner_operator.config import catalog
from tests.fakes.composio_server import FakeComposio


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> Iterator[FakeComposio]:
    with FakeComposio() as server:
        for name, value in server.env(PLANNER_SCHEDULE_BACKEND="local").items():
            monkeypatch.setenv(name, value)
        monkeypatch.setenv("PLANNER_STATE_DIR", str(tmp_path / "state"))
        yield server


def every_bundled_type(fake: FakeComposio) -> None:
    """94 types: two pages of the API's largest page size."""
    for slug, t in catalog.bundled().items():
        fake.types.setdefault(
            slug,
            {
                "slug": slug,
                "name": t.name,
                "description": "",
                "instructions": "",
                "type": t.kind,
                "toolkit": {"slug": t.toolkit, "name": t.toolkit, "logo": ""},
                "config": dict(t.config),
                "payload": dict(t.payload),
                "version": "20250701_00",
            },
        )


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, ["composio", "trigger-types", *args])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.stdout, result.stderr


def test_lists_a_toolkits_types_with_config_and_payload_fields(fake: FakeComposio) -> None:
    code, out, _ = invoke("--toolkit", "Gmail")
    assert code == 0
    assert out.splitlines() == [
        "GMAIL_NEW_GMAIL_MESSAGE  (gmail, poll)  New Gmail Message Received Trigger",
        "  config:  interval: number, labelIds: string, query: string, userId: string",
        "  payload: attachment_list: array|null, message_id: string|null, message_text: "
        "string|null, message_timestamp: string|null, payload: object|null, sender: string|null, "
        "subject: string|null, thread_id: string|null, to: string|null",
        "1 trigger type(s).",
    ]


def test_every_page_is_read_and_json_has_the_envelope(fake: FakeComposio) -> None:
    every_bundled_type(fake)
    before = fake.count("GET", "triggers_types$")
    code, out, _ = invoke("--format", "json")
    assert code == 0
    document = json.loads(out)
    assert (document["format_version"], document["kind"]) == (1, "trigger_types")
    slugs = [t["slug"] for t in document["trigger_types"]]
    assert sorted(slugs) == sorted(fake.types) and len(slugs) == 94
    assert fake.count("GET", "triggers_types$") - before == 2  # 50 + 44
    slack = next(t for t in document["trigger_types"] if t["slug"] == "SLACK_RECEIVE_MESSAGE")
    assert (slack["toolkit"], slack["type"]) == ("slack", "webhook")
    assert "text" in slack["payload"]["properties"]


def test_an_unknown_toolkit_says_so_and_a_bad_key_is_an_error(
    fake: FakeComposio, monkeypatch: pytest.MonkeyPatch
) -> None:
    code, out, _ = invoke("--toolkit", "nosuchkit")
    assert (code, out) == (0, "No trigger types for toolkit `nosuchkit`.\n")
    monkeypatch.delenv("COMPOSIO_API_KEY")
    code, _, err = invoke()
    assert code == 1 and err.startswith("error: composio: COMPOSIO_API_KEY is not set")
