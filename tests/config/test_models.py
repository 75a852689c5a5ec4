"""The models on their own: defaults, strictness, and the cross-field rules with their context.

Rendering (positions, paths, wording) is the loader's job and tested there; here the rules are
checked on plain data, the way the schema and the models define the format.
"""

from __future__ import annotations

from typing import Any

import pydantic
import pytest

from planner_operator.config import models

CHAT = {"chat": {"template": "hi"}}
WORKFLOW = {"workflow": {"id": "w"}}
COMPOSIO = {"toolkit": "gmail", "event": "GMAIL_NEW_GMAIL_MESSAGE", "connected_account": "ca_1"}


def rule_errors(model: type[pydantic.BaseModel], data: dict[str, Any]) -> list[dict[str, Any]]:
    """The cross-field rule errors (type, message, context) raised validating ``data``."""
    with pytest.raises(pydantic.ValidationError) as info:
        model.model_validate(data)
    return [
        {"msg": e["msg"], **(e.get("ctx") or {})}
        for e in info.value.errors()
        if e["type"] == models.RULE_ERROR
    ]


def test_minimal_agent_defaults() -> None:
    agent = models.AgentFile.model_validate({"name": "Demo"})
    assert agent.id is None
    assert agent.timezone == "UTC"
    assert agent.variables == {}
    assert agent.planner.jobs == []
    assert agent.planner.triggers == []


def test_job_defaults() -> None:
    job = models.Job.model_validate({"name": "daily", "schedule": "@daily", "action": CHAT})
    assert (job.enabled, job.overlap, job.catchup, job.dst, job.protect) == (
        True,
        "skip",
        "latest",
        "vixie",
        False,
    )
    assert job.timezone is None
    assert job.action.kind == "chat"
    assert job.action.chat is not None
    assert job.action.chat.variables == {}


def test_workflow_action() -> None:
    action = models.Action.model_validate(
        {"workflow": {"id": "report.v2", "input": {"since": "{date}", "n": [1, {"a": None}]}}}
    )
    assert action.kind == "workflow"
    assert action.workflow is not None
    assert action.workflow.input == {"since": "{date}", "n": [1, {"a": None}]}


@pytest.mark.parametrize(
    ("data", "message", "context"),
    [
        (
            {**CHAT, **WORKFLOW},
            "an action needs exactly one of `chat` or `workflow`, not both",
            {
                "hint": "keep one and move the other into its own job or trigger",
                "field": "workflow",
            },
        ),
        (
            {},
            "an action needs exactly one of `chat` or `workflow`, got neither",
            {"hint": "add `chat: {template: ...}` or `workflow: {id: ...}`"},
        ),
    ],
)
def test_action_needs_exactly_one(data: dict[str, Any], message: str, context: Any) -> None:
    assert rule_errors(models.Action, data) == [{"msg": message, **context}]


def test_models_are_strict_and_frozen() -> None:
    with pytest.raises(pydantic.ValidationError):
        models.AgentFile.model_validate({"name": 5})
    with pytest.raises(pydantic.ValidationError):
        models.Job.model_validate(
            {"name": "d", "schedule": "@daily", "enabled": "true", "action": CHAT}
        )
    with pytest.raises(pydantic.ValidationError):
        models.AgentFile.model_validate({"name": "Demo", "unknown": 1})
    agent = models.AgentFile.model_validate({"name": "Demo"})
    with pytest.raises(pydantic.ValidationError):
        agent.name = "Other"  # type: ignore[misc]


@pytest.mark.parametrize("name", ["a", "morning-check", "a1", "1a", "x" * 63, "job-2-b"])
def test_valid_slugs(name: str) -> None:
    assert models.Job.model_validate({"name": name, "schedule": "@daily", "action": CHAT})


@pytest.mark.parametrize("name", ["", "-a", "a-", "A", "a_b", "a b", "x" * 64, "ä"])
def test_invalid_slugs(name: str) -> None:
    with pytest.raises(pydantic.ValidationError):
        models.Job.model_validate({"name": name, "schedule": "@daily", "action": CHAT})


def test_composio_trigger() -> None:
    trigger = models.Trigger.model_validate(
        {"name": "mail", **COMPOSIO, "config": {"labelIds": "INBOX"}, "action": CHAT}
    )
    assert trigger.source == "composio"
    assert trigger.config == {"labelIds": "INBOX"}


def test_composio_trigger_by_user_id() -> None:
    data = {"name": "mail", "toolkit": "gmail", "event": "GMAIL_X", "user_id": "me"}
    assert models.Trigger.model_validate({**data, "action": CHAT}).user_id == "me"


def test_webhook_trigger() -> None:
    trigger = models.Trigger.model_validate(
        {"name": "hook", "webhook": {"secret_env": "HOOK_SECRET"}, "action": WORKFLOW}
    )
    assert trigger.source == "webhook"
    assert trigger.webhook is not None
    assert trigger.webhook.scheme == "standard"


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (
            {"webhook": {"secret_env": "S"}, "toolkit": "gmail", "user_id": "me"},
            {
                "msg": "a webhook trigger takes no Composio fields",
                "hint": "remove `toolkit`, `user_id` or remove `webhook`",
                "field": "toolkit",
            },
        ),
        (
            {"webhook": {"secret_env": "S"}, "config": {"a": 1}},
            {
                "msg": "a webhook trigger takes no Composio fields",
                "hint": "remove `config` or remove `webhook`",
                "field": "config",
            },
        ),
        (
            {"toolkit": "gmail"},
            {
                "msg": "a trigger needs `toolkit` and `event` (a Composio trigger) or `webhook`, "
                "missing `event`",
                "hint": "add `event:`, or use `webhook: {secret_env: ...}` for a generic webhook",
            },
        ),
        (
            {**COMPOSIO, "user_id": "me"},
            {
                "msg": "a Composio trigger takes one of `connected_account` or `user_id`, not both",
                "hint": "remove one of them",
                "field": "user_id",
            },
        ),
        (
            {"toolkit": "gmail", "event": "GMAIL_X"},
            {
                "msg": "a Composio trigger needs `connected_account` or `user_id`",
                "hint": "add `connected_account: <id>` or `user_id: <id>`",
            },
        ),
    ],
)
def test_trigger_source_rules(data: dict[str, Any], expected: dict[str, str]) -> None:
    assert rule_errors(models.Trigger, {"name": "t", **data, "action": CHAT}) == [expected]


def test_webhook_scheme_is_standard_or_github() -> None:
    assert models.Webhook.model_validate({"secret_env": "S", "scheme": "github"}).scheme == "github"
    with pytest.raises(pydantic.ValidationError):
        models.Webhook.model_validate({"secret_env": "S", "scheme": "gitlab"})


@pytest.mark.parametrize(
    "condition",
    [{"equals": "a"}, {"equals": None}, {"contains": "x"}, {"in": [1, "a"]}, {"exists": False}],
)
def test_condition_with_one_operator(condition: dict[str, Any]) -> None:
    assert models.Condition.model_validate(condition)


def test_condition_in_uses_its_alias() -> None:
    assert models.Condition.model_validate({"in": [1, 2]}).in_ == [1, 2]


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        (
            {},
            {
                "msg": "a condition needs an operator",
                "hint": "use one of `equals`, `contains`, `in`, `exists`",
            },
        ),
        (
            {"in": [1], "exists": True},
            {
                "msg": "a condition takes exactly one operator, got `in` and `exists`",
                "hint": "to test several things, list one condition per item under `all:`",
                "field": "exists",
            },
        ),
    ],
)
def test_condition_operator_rules(condition: dict[str, Any], expected: dict[str, str]) -> None:
    assert rule_errors(models.Condition, condition) == [expected]


def test_filter_fields_are_conditions_and_nest() -> None:
    data = {
        "sender": {"contains": "recruit"},
        "all": [{"labels": {"in": ["INBOX"]}}, {"any": [{"a.b": {"exists": True}}]}],
    }
    parsed = models.Filter.model_validate(data)
    assert parsed.model_extra is not None
    assert isinstance(parsed.model_extra["sender"], models.Condition)
    assert parsed.all is not None
    assert parsed.all[1].any is not None
    assert isinstance(parsed.all[1].any[0].model_extra, dict)
    with pytest.raises(pydantic.ValidationError):
        models.Filter.model_validate({"sender": "bob"})


def test_variables_are_scalars_with_valid_names() -> None:
    agent = models.AgentFile.model_validate(
        {"name": "D", "variables": {"a": "x", "b_2": 3, "c": 1.5, "d": True}}
    )
    assert agent.variables == {"a": "x", "b_2": 3, "c": 1.5, "d": True}
    for bad in ({"1a": "x"}, {"a-b": "x"}, {"a": [1]}, {"a": None}):
        with pytest.raises(pydantic.ValidationError):
            models.AgentFile.model_validate({"name": "D", "variables": bad})
