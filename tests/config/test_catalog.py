"""The bundled trigger-type catalog: what it covers, and that its schemas are real JSON Schemas."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema  # type: ignore[import-untyped]
import pytest

from planner_operator.config import catalog

FAKE_TYPES = Path(__file__).parents[1] / "fakes" / "composio_trigger_types.json"
NAMED = ("gmail", "slack", "github", "hubspot", "googlecalendar", "notion", "linear", "jira")


def test_the_toolkits_the_product_names_are_covered_with_several_types_each() -> None:
    covered = catalog.toolkits()
    assert {*NAMED, "outlook"} <= covered
    assert len(catalog.bundled()) == 94
    for toolkit in ("slack", "github", "outlook", "jira", "linear", "notion"):
        assert len(catalog.of_toolkit(toolkit)) >= 3, toolkit


@pytest.mark.parametrize("slug", sorted(catalog.bundled()))
def test_every_type_has_valid_config_and_payload_schemas_and_its_slugs_toolkit(slug: str) -> None:
    found = catalog.bundled()[slug]
    for schema in (found.config, found.payload):
        jsonschema.Draft7Validator.check_schema(dict(schema))
    assert found.kind in ("poll", "webhook")
    assert slug.lower().startswith(found.toolkit + "_")
    assert catalog.toolkit_of(slug) == found.toolkit


def test_the_types_the_fake_api_serves_are_the_same_as_bundled() -> None:
    """One source for both: the fake's shapes and the catalog come from the same snapshot."""
    served = json.loads(FAKE_TYPES.read_text())["trigger_types"]
    for item in served:
        bundled = catalog.bundled()[item["slug"]]
        assert (bundled.toolkit, bundled.kind) == (item["toolkit"]["slug"], item["type"])
        assert (bundled.config, bundled.payload) == (item["config"], item["payload"])


def test_the_source_note_says_where_the_types_come_from() -> None:
    note = catalog.source_note()
    assert "ComposioHQ/composio" in note and "trigger-types.json" in note and "94 types" in note


def test_close_matches_keep_only_the_clear_answers() -> None:
    assert catalog.close_matches("SLACK_NEW_MESSAGE", catalog.of_toolkit("slack")) == [
        "SLACK_RECEIVE_MESSAGE"
    ]
    assert catalog.close_matches("GITHUB_PULL_REQUEST", catalog.of_toolkit("github")) == [
        "GITHUB_PULL_REQUEST_EVENT"
    ]
    assert catalog.close_matches("QQQ", catalog.of_toolkit("github")) == []
    assert catalog.toolkit_of("ONE_DRIVE_ONE_DRIVE_FILE_CREATED_TRIGGER") == "one_drive"
    assert catalog.toolkit_of("ZOOM_MEETING_STARTED") == "zoom"
    assert catalog.toolkit_of("X_Y", "Slack") == "slack"
