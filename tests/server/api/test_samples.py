"""Sample payloads for trigger tests: built from payload schemas, filling every placeholder and
meeting the filter; and the words that say which filter condition an event failed."""

from __future__ import annotations

from typing import Any

import pytest

from planner_operator.config.desired import build
from planner_operator.core import specs
from planner_operator.core.specs import Filter
from planner_operator.reconcile import source
from planner_operator.runtime import events
from planner_operator.runtime.executors import actions
from planner_operator.server.api import samples
from tests.server.api.status_state import AGENTS
from tests.support.builders import trigger_spec


def example_triggers() -> dict[str, dict[str, Any]]:
    files = source.load(source.read_worktree(AGENTS).files)
    return {k: dict(r.spec) for k, r in build(files).items() if r.kind == "trigger"}


@pytest.mark.parametrize("key", sorted(example_triggers()))
def test_every_example_trigger_gets_a_sample_that_renders_and_passes(key: str) -> None:
    spec = example_triggers()[key]
    schema = None if "webhook" in spec else samples.catalog()[spec["event"]]
    payload = samples.build(spec, schema)
    assert events.matches(specs.TriggerSpec.from_dict(spec).filter, payload)
    prepared = actions.prepare_trigger(key, spec, payload)  # no placeholder is missing
    assert prepared.kind in ("chat", "workflow")
    if schema is not None:
        assert set(schema["properties"]) <= set(payload)


def test_schema_values_are_obvious_samples() -> None:
    schema = {
        "properties": {
            "subject": {"anyOf": [{"type": "string"}, {"type": "null"}], "default": None},
            "number": {"type": "integer", "examples": [42]},
            "score": {"type": "number"},
            "draft": {"type": "boolean"},
            "labels": {"type": "array", "items": {"type": "string"}},
            "html_url": {"type": "string"},
            "creator_email": {"type": ["null", "string"]},
            "kind": {"enum": ["opened", "closed"]},
            "author": {"type": "object", "properties": {"login": {"type": "string"}}},
        }
    }
    assert samples.from_schema(schema) == {
        "subject": "sample subject",
        "number": 42,
        "score": 1.5,
        "draft": True,
        "labels": [],
        "html_url": "https://example.com/sample-html_url",
        "creator_email": "sample@example.com",
        "kind": "opened",
        "author": {"login": "sample login"},
    }


def test_placeholders_missing_from_the_schema_are_filled_but_variables_are_kept() -> None:
    spec = trigger_spec(
        action={
            "chat": {
                "template": "{greeting}: {subject} from {sender.name} about {userCriteria}",
                "variables": {"userCriteria": "python roles"},
            }
        }
    )
    payload = samples.build(spec, {"properties": {"subject": {"type": "string"}}})
    assert payload == {
        "subject": "sample subject",
        "greeting": "sample greeting",
        "sender": {"name": "sample name"},
    }
    message = actions.prepare_trigger("a/triggers/t", spec, payload).message
    assert message == "sample greeting: sample subject from sample name about python roles"


def test_filters_are_met_with_the_least_change() -> None:
    flt = Filter.from_dict(
        {
            "channel": {"equals": "C1"},
            "kind": {"in": ["opened", "reopened"]},
            "text": {"contains": "sev1"},
            "labels": {"contains": "bug"},
            "meta.team": {"exists": True},
            "bot_id": {"exists": False},
            "all": [{"priority": {"equals": 1}}],
            "any": [{"sender": {"contains": "recruit"}}, {"subject": {"contains": "interview"}}],
        }
    )
    payload: dict[str, Any] = {"text": "sample text", "labels": ["x"], "bot_id": "B1"}
    samples.satisfy(flt, payload)
    assert payload == {
        "channel": "C1",
        "kind": "opened",
        "text": "sample text sev1",
        "labels": ["x", "bug"],
        "meta": {"team": "sample team"},
        "priority": 1,
        "sender": "sample sender recruit",
    }
    assert events.matches(flt, payload)
    already = {"subject": "Interview on Monday"}
    samples.satisfy(Filter({"any": flt.parts["any"]}), already)
    assert already == {"subject": "Interview on Monday"}  # one branch holds: nothing added


def test_failures_name_each_condition_and_what_the_event_had() -> None:
    flt = Filter.from_dict(
        {
            "channel": {"equals": "C0INCIDENTS"},
            "kind": {"in": ["opened"]},
            "meta.team": {"exists": True},
            "any": [{"sender": {"contains": "recruit"}}, {"subject": {"contains": "interview"}}],
        }
    )
    payload = {"channel": "C9", "kind": "opened", "subject": "lunch"}
    assert samples.failures(flt, payload) == [
        'channel equals "C0INCIDENTS" (got "C9")',
        "meta.team exists true (got missing)",
        'none of: sender contains "recruit" or subject contains "interview"',
    ]
    assert (
        samples.failures(
            flt, {**payload, "channel": "C0INCIDENTS", "meta": {"team": "x"}, "sender": "recruiter"}
        )
        == []
    )
    assert samples.failures(None, {}) == []


def test_the_catalog_covers_the_example_agents_trigger_types() -> None:
    used = {spec["event"] for spec in example_triggers().values() if "event" in spec}
    assert used <= set(samples.catalog())
    assert all(samples.catalog()[slug].get("properties") for slug in used)
