"""Typed specs: each default stated once, and the stored form (hence every hash) unchanged.

The spec hash is what the ledger compares to decide that a resource changed: if building a spec
through ``JobSpec``/``TriggerSpec`` moved one hash, every existing ledger would see those
resources as updated. So the example agents' hashes are pinned as they were before the typed
specs, and hypothesis checks that the typed path gives the very dict the old dict-building code
gave (kept here, verbatim, as the reference) for any valid job or trigger.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from planner_operator.config import desired, loader, models
from planner_operator.core import canonical, scheduling, specs
from planner_operator.errors import StateError

ROOT = Path(__file__).resolve().parents[2]

# spec_hash of every example agent resource, computed before the typed specs existed
EXAMPLE_HASHES = {
    "engineering-agent/jobs/on-call-handover": "30dab9def91fb02a",
    "engineering-agent/jobs/slack-digest": "784a1f8c4bf55940",
    "engineering-agent/triggers/deploy-hook": "b7bfc89d37bfec2d",
    "engineering-agent/triggers/incident-mention": "60716dcf536a1d54",
    "engineering-agent/triggers/new-issue": "1062e0ac33680c19",
    "job-application-agent/jobs/daily-application-check": "cd4e5f150aeced31",
    "job-application-agent/jobs/morning-job-check": "a0a21c2aa4cc7093",
    "job-application-agent/triggers/recruiter-email": "7c3593d4599410e0",
    "sales-agent/jobs/quarterly-forecast": "d0370cfbab898b55",
    "sales-agent/jobs/weekly-pipeline-review": "1bf2f4a29e979d35",
    "sales-agent/triggers/deal-stage-changed": "f5cf186d2b83d5d9",
    "sales-agent/triggers/new-contact": "640e2bc64c2e770b",
}


def example_resources() -> dict[str, desired.DesiredResource]:
    files = [loader.load_path(p) for p in sorted((ROOT / "agents").glob("*.yaml"))]
    return desired.build(files)


def test_the_spec_hash_of_every_example_resource_is_unchanged() -> None:
    found = {key: r.spec_hash for key, r in example_resources().items()}
    assert found == EXAMPLE_HASHES


def test_a_stored_spec_reads_back_to_the_same_dict() -> None:
    for resource in example_resources().values():
        typed = (specs.JobSpec if resource.kind == "job" else specs.TriggerSpec).from_dict(
            resource.spec
        )
        assert typed.to_dict() == resource.spec
        assert canonical.spec_hash(typed.to_dict()) == resource.spec_hash


# -- the reference: how specs were built before the typed specs --------------------------------


def _legacy_action(agent: models.AgentFile, action: models.Action) -> dict[str, Any]:
    if action.chat is not None:
        variables = {**agent.variables, **action.chat.variables}
        return {"chat": {"template": action.chat.template, "variables": variables}}
    assert action.workflow is not None
    workflow: dict[str, Any] = {"id": action.workflow.id, "input": action.workflow.input}
    if agent.variables:
        workflow["variables"] = dict(agent.variables)
    return {"workflow": workflow}


def _drop_none(values: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}


def legacy_job_spec(agent: models.AgentFile, job: models.Job) -> dict[str, Any]:
    return _drop_none(
        {
            "schedule": scheduling.normalize_schedule(job.schedule),
            "timezone": job.timezone or agent.timezone,
            "enabled": job.enabled,
            "overlap": job.overlap,
            "catchup": job.catchup,
            "dst": job.dst,
            "description": job.description,
            "protect": job.protect,
            "action": _legacy_action(agent, job.action),
        }
    )


def legacy_trigger_spec(agent: models.AgentFile, trigger: models.Trigger) -> dict[str, Any]:
    return _drop_none(
        {
            "toolkit": trigger.toolkit,
            "event": trigger.event,
            "connected_account": trigger.connected_account,
            "user_id": trigger.user_id,
            "config": trigger.config if trigger.webhook is None else None,
            "webhook": trigger.webhook.model_dump(mode="json") if trigger.webhook else None,
            "filter": (
                trigger.filter.model_dump(mode="json", by_alias=True, exclude_unset=True)
                if trigger.filter is not None
                else None
            ),
            "enabled": trigger.enabled,
            "description": trigger.description,
            "protect": trigger.protect,
            "action": _legacy_action(agent, trigger.action),
        }
    )


# -- strategies over valid config --------------------------------------------------------------

NAMES = st.from_regex(r"\A[a-z][a-z0-9]{0,6}\Z")
SCALARS = st.one_of(st.text(max_size=6), st.integers(), st.booleans())
JSON = st.recursive(
    st.none() | SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(NAMES, inner, max_size=3),
    max_leaves=6,
)
VARIABLES = st.dictionaries(NAMES, SCALARS, max_size=3)


def maybe(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.none() | strategy


@st.composite
def actions(draw: st.DrawFn) -> dict[str, Any]:
    if draw(st.booleans()):
        chat: dict[str, Any] = {"template": draw(st.sampled_from(["Hi {name}", "x", "{date}"]))}
        if draw(st.booleans()):
            chat["variables"] = draw(VARIABLES)
        return {"chat": chat}
    workflow: dict[str, Any] = {"id": draw(st.sampled_from(["wf", "a.b-c"]))}
    if draw(st.booleans()):
        workflow["input"] = draw(st.dictionaries(NAMES, JSON, max_size=3))
    return {"workflow": workflow}


CONDITIONS = st.one_of(
    st.builds(lambda v: {"equals": v}, JSON),
    st.builds(lambda v: {"contains": v}, st.text(max_size=5)),
    st.builds(lambda v: {"in": v}, st.lists(SCALARS, max_size=3)),
    st.builds(lambda v: {"exists": v}, st.booleans()),
)
FILTERS = st.recursive(
    st.dictionaries(st.sampled_from(["sender", "a.b", "labels"]), CONDITIONS, max_size=2),
    lambda inner: st.dictionaries(
        st.sampled_from(["all", "any"]), st.none() | st.lists(inner, max_size=2), max_size=2
    ),
    max_leaves=5,
)


def optional(
    draw: st.DrawFn, out: dict[str, Any], name: str, value: st.SearchStrategy[Any]
) -> None:
    if draw(st.booleans()):
        out[name] = draw(value)


@st.composite
def jobs(draw: st.DrawFn) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": "j",
        "schedule": draw(st.sampled_from(["@daily", "0 9 * * 1", "*/5 * * * *"])),
        "action": draw(actions()),
    }
    optional(draw, out, "timezone", st.sampled_from(["UTC", "Europe/Berlin"]))
    optional(draw, out, "enabled", st.booleans())
    optional(draw, out, "overlap", st.sampled_from(["allow", "skip"]))
    optional(draw, out, "catchup", st.sampled_from(["none", "latest"]))
    optional(draw, out, "dst", st.sampled_from(["vixie", "skip", "literal"]))
    optional(draw, out, "description", maybe(st.text(max_size=5)))
    optional(draw, out, "protect", st.booleans())
    return out


@st.composite
def triggers(draw: st.DrawFn) -> dict[str, Any]:
    out: dict[str, Any] = {"name": "t", "action": draw(actions())}
    if draw(st.booleans()):
        out["webhook"] = {"secret_env": "HOOK_SECRET"}
        optional(draw, out["webhook"], "scheme", st.sampled_from(["standard", "github"]))
    else:
        out.update(toolkit="gmail", event="GMAIL_NEW_MESSAGE")
        out[draw(st.sampled_from(["connected_account", "user_id"]))] = "ca_1"
        optional(draw, out, "config", st.dictionaries(NAMES, JSON, max_size=3))
    optional(draw, out, "filter", FILTERS)
    optional(draw, out, "enabled", st.booleans())
    optional(draw, out, "description", maybe(st.text(max_size=5)))
    optional(draw, out, "protect", st.booleans())
    return out


AGENTS = st.builds(
    lambda tz, variables: models.AgentFile(name="A", timezone=tz, variables=variables),
    st.sampled_from(["UTC", "America/New_York"]),
    VARIABLES,
)
PROPERTY = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY
@given(AGENTS, jobs())
def test_a_typed_job_spec_is_the_dict_the_config_always_produced(
    agent: models.AgentFile, raw: dict[str, Any]
) -> None:
    try:
        job = models.Job.model_validate(raw)
    except ValidationError:
        assume(False)
        raise
    spec = desired.job_spec(agent, job)
    assert spec == legacy_job_spec(agent, job)
    assert canonical.spec_hash(spec) == canonical.spec_hash(legacy_job_spec(agent, job))
    assert specs.JobSpec.from_dict(spec).to_dict() == spec


@PROPERTY
@given(AGENTS, triggers())
def test_a_typed_trigger_spec_is_the_dict_the_config_always_produced(
    agent: models.AgentFile, raw: dict[str, Any]
) -> None:
    try:
        trigger = models.Trigger.model_validate(raw)
    except ValidationError:
        assume(False)
        raise
    spec = desired.trigger_spec(agent, trigger)
    assert canonical.canonical_json(spec) == canonical.canonical_json(
        legacy_trigger_spec(agent, trigger)
    )
    assert specs.TriggerSpec.from_dict(spec).to_dict() == spec


# -- defaults, once ----------------------------------------------------------------------------


def test_a_spec_stored_without_its_defaulted_fields_reads_with_the_defaults() -> None:
    job = specs.JobSpec.from_dict({"schedule": "@daily", "action": {"chat": {"template": "x"}}})
    assert (job.timezone, job.enabled, job.overlap, job.catchup, job.dst, job.protect) == (
        "UTC",
        True,
        "skip",
        "latest",
        "vixie",
        False,
    )
    trigger = specs.TriggerSpec.from_dict(
        {"webhook": {"secret_env": "S"}, "action": job.action.to_dict()}
    )
    assert trigger.enabled and trigger.webhook == specs.WebhookSpec("S", "standard")
    assert trigger.source == "webhook" and trigger.filter is None


def test_the_config_models_take_their_defaults_from_the_specs() -> None:
    job, trig, agent = models.Job.model_fields, models.Trigger.model_fields, models.AgentFile
    assert job["enabled"].default is specs.DEFAULT_ENABLED
    assert job["overlap"].default == specs.DEFAULT_OVERLAP
    assert job["catchup"].default == specs.DEFAULT_CATCHUP
    assert job["dst"].default == specs.DEFAULT_DST
    assert job["protect"].default is specs.DEFAULT_PROTECT
    assert trig["enabled"].default is specs.DEFAULT_ENABLED
    assert agent.model_fields["timezone"].default == specs.DEFAULT_TIMEZONE


DEFAULTED = "enabled|timezone|dst|overlap|catchup|protect|scheme"
RESTATED = re.compile(rf"""\.get\(\s*["']({DEFAULTED})["']\s*,|\.get\(\s*["']action["']""")


def test_no_product_module_re_states_a_spec_default() -> None:
    """``spec.get("enabled", True)`` re-states a default; core/specs is the one place for it."""
    offenders = []
    for path in sorted((ROOT / "planner_operator").rglob("*.py")):
        if path.name == "specs.py" and path.parent.name == "core":
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if RESTATED.search(line):
                offenders.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert offenders == [], "read the spec through core.specs instead:\n" + "\n".join(offenders)


@pytest.mark.parametrize(
    ("stored", "named"),
    [
        ({"action": {"chat": {"template": "x"}}}, "`schedule`"),
        ({"schedule": "@daily", "action": {"chat": {"template": "x"}}, "dst": "both"}, "`dst`"),
        ({"schedule": "@daily", "action": {"chat": {}, "workflow": {}}}, "exactly one"),
        ({"schedule": "@daily", "action": {"chat": {"template": "x"}}, "enabled": "y"}, "enabled"),
    ],
)
def test_a_stored_spec_that_cannot_be_read_is_a_state_error_naming_the_field(
    stored: dict[str, Any], named: str
) -> None:
    with pytest.raises(StateError, match=named):
        specs.JobSpec.from_dict(stored)


def test_a_filter_with_a_null_group_keeps_it() -> None:
    stored = {"all": None, "sender": {"contains": "x"}}
    flt = specs.Filter.from_dict(stored)
    assert flt.to_dict() == stored
    assert list(flt.parts) == ["all", "sender"] and flt.parts["all"] is None
