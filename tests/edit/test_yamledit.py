"""Round-trip edits: the diff is the edit and nothing else, and a re-load is the old model with
exactly that edit (a hypothesis property over generated jobs and triggers)."""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from planner_operator.config import loader, models
from planner_operator.edit import yamledit
from planner_operator.errors import EditError, NotFoundError

AGENTS = sorted((Path(__file__).parents[2] / "agents").glob("*.yaml"))


def changed_lines(before: str, after: str) -> list[str]:
    return [
        line
        for line in difflib.unified_diff(before.splitlines(), after.splitlines(), lineterm="")
        if line[:1] in "+-" and not line.startswith(("+++", "---"))
    ]


def model(text: str) -> models.AgentFile:
    loaded = loader.load_text(text, "agent.yaml")
    assert loaded.agent is not None and not loaded.errors, loaded.errors
    return loaded.agent


@pytest.mark.parametrize("path", AGENTS, ids=lambda p: p.name)
def test_replacing_every_item_with_itself_changes_no_byte(path: Path) -> None:
    text = path.read_text()
    kinds: tuple[yamledit.Kind, ...] = ("job", "trigger")
    for kind in kinds:
        items = yamledit.plain(yamledit._load(text)[0])["planner"].get(yamledit.SECTION[kind], [])
        for item in items:
            edit = yamledit.Edit(kind, item["name"], "replace", item)
            assert yamledit.apply(text, edit) == text


def test_a_changed_field_is_the_only_changed_line_and_keeps_its_comment() -> None:
    text = (AGENTS[-1]).read_text()  # sales-agent.yaml
    current = yamledit.item(text, "job", "quarterly-forecast")
    assert current is not None and current["enabled"] is False
    after = yamledit.pause(text, "job", "quarterly-forecast", enabled=True)
    assert changed_lines(text, after) == [
        "-      enabled: false   # paused until the forecast workflow is finished",
        "+      enabled: true    # paused until the forecast workflow is finished",
    ]


def test_a_new_job_goes_last_in_jobs_in_the_files_layout_and_quotes() -> None:
    text = (AGENTS[-1]).read_text()
    job = {"schedule": "@daily", "action": {"chat": {"template": "{date}: check the pipeline"}}}
    after = yamledit.apply(text, yamledit.Edit("job", "daily-check", "create", job))
    assert changed_lines(text, after) == [
        "+    - name: daily-check",
        '+      schedule: "@daily"',
        "+      action:",
        "+        chat:",
        '+          template: "{date}: check the pipeline"',
    ]
    assert after.index("daily-check") < after.index("triggers:")
    assert [j.name for j in model(after).planner.jobs][-1] == "daily-check"


def test_a_deleted_trigger_takes_only_its_own_lines() -> None:
    text = (AGENTS[-1]).read_text()
    after = yamledit.apply(text, yamledit.Edit("trigger", "new-contact", "delete"))
    removed = changed_lines(text, after)
    assert all(line.startswith("-") for line in removed) and len(removed) == 10
    assert "# empty input: the event payload" not in after
    assert "# paused until the forecast workflow is finished" in after
    assert [t.name for t in model(after).planner.triggers] == ["deal-stage-changed"]


def test_a_new_field_goes_where_the_submitted_order_puts_it() -> None:
    text = (AGENTS[-1]).read_text()
    job = yamledit.item(text, "job", "weekly-pipeline-review")
    assert job is not None
    order = ["name", "description", "schedule", "timezone", "action"]
    edited = {k: ({**job, "timezone": "Europe/Paris"})[k] for k in order}
    after = yamledit.apply(text, yamledit.Edit("job", "weekly-pipeline-review", "replace", edited))
    assert changed_lines(text, after) == ["+      timezone: Europe/Paris"]
    assert after.index("timezone: Europe/Paris") < after.index("action:")


def test_a_rename_replaces_the_name_and_refuses_a_taken_one() -> None:
    text = (AGENTS[-1]).read_text()
    job = yamledit.item(text, "job", "weekly-pipeline-review")
    assert job is not None
    renamed = yamledit.apply(
        text, yamledit.Edit("job", "weekly-pipeline-review", "replace", {**job, "name": "weekly"})
    )
    assert changed_lines(text, renamed) == [
        "-    - name: weekly-pipeline-review",
        "+    - name: weekly",
    ]
    with pytest.raises(EditError, match="name is taken"):
        yamledit.apply(
            text,
            yamledit.Edit(
                "job", "weekly-pipeline-review", "replace", {**job, "name": "quarterly-forecast"}
            ),
        )


def test_missing_and_duplicate_items_and_non_agent_files_are_our_errors() -> None:
    text = (AGENTS[-1]).read_text()
    job = {"schedule": "@daily", "action": {"chat": {"template": "hi"}}}
    with pytest.raises(EditError, match="already exists"):
        yamledit.apply(text, yamledit.Edit("job", "quarterly-forecast", "create", job))
    with pytest.raises(NotFoundError, match="weekly-pipeline-review, quarterly-forecast"):
        yamledit.apply(text, yamledit.Edit("job", "nope", "replace", job))
    with pytest.raises(NotFoundError):
        yamledit.apply(text, yamledit.Edit("job", "nope", "delete"))
    with pytest.raises(EditError, match="not a mapping"):
        yamledit.apply("- a\n- b\n", yamledit.Edit("job", "x", "create", job))
    with pytest.raises(EditError, match="not valid YAML"):
        yamledit.apply("a: [b\n", yamledit.Edit("job", "x", "create", job))
    with pytest.raises(EditError, match="not a list"):
        yamledit.apply("name: A\nplanner:\n  jobs: 3\n", yamledit.Edit("job", "x", "create", job))


def test_a_new_agent_file_loads_and_takes_jobs_in_the_example_layout() -> None:
    text = yamledit.new_agent({"id": "ops", "name": "Ops", "timezone": "Europe/Berlin"})
    assert text.startswith(yamledit.SCHEMA_COMMENT)
    assert model(text).id == "ops"
    job = {"schedule": "0 9 * * 1", "action": {"workflow": {"id": "report"}}}
    after = yamledit.apply(text, yamledit.Edit("job", "weekly", "create", job))
    assert "  jobs:\n    - name: weekly\n      schedule: 0 9 * * 1\n" in after
    assert model(after).planner.jobs[0].name == "weekly"


def test_a_file_without_planner_gets_one() -> None:
    job = {"schedule": "@hourly", "action": {"chat": {"template": "tick"}}}
    after = yamledit.apply("name: A  # the agent\n", yamledit.Edit("job", "t", "create", job))
    assert after.startswith("name: A  # the agent\nplanner:\n  jobs:\n")
    assert model(after).planner.jobs[0].schedule == "@hourly"


def test_merge_patch_is_rfc_7396() -> None:
    target = {"a": 1, "b": {"c": 2, "d": 3}, "e": [1]}
    patch = {"a": None, "b": {"c": None, "x": 4}, "e": [2], "f": "g"}
    assert yamledit.merge_patch(target, patch) == {"b": {"d": 3, "x": 4}, "e": [2], "f": "g"}


# -- the property -------------------------------------------------------------------------------

SLUGS = st.from_regex(r"[a-z][a-z0-9-]{0,12}[a-z0-9]", fullmatch=True)
TEXT = st.text(
    alphabet=st.characters(exclude_categories=["Cs"]),
    min_size=1,
    max_size=40,
)
SCALARS = st.one_of(
    TEXT,
    st.integers(-(2**40), 2**40),
    st.booleans(),
    st.floats(allow_nan=False, allow_infinity=False, width=32),
)
VARIABLES = st.dictionaries(st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,8}", fullmatch=True), SCALARS)
ACTIONS = st.one_of(
    st.builds(lambda t, v: {"chat": {"template": t, "variables": v}}, TEXT, VARIABLES),
    st.builds(
        lambda i, v: {"workflow": {"id": i, "input": v}},
        st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,12}", fullmatch=True),
        VARIABLES,
    ),
)
JOBS = st.fixed_dictionaries(
    {
        "schedule": st.sampled_from(["@daily", "0 9 * * 1", "*/15 9-17 * * mon-fri", "5 4 * * *"]),
        "action": ACTIONS,
    },
    optional={
        "description": TEXT,
        "timezone": st.sampled_from(["UTC", "Europe/Berlin", "America/New_York"]),
        "enabled": st.booleans(),
        "overlap": st.sampled_from(["skip", "allow"]),
    },
)
TRIGGERS = st.fixed_dictionaries(
    {
        "toolkit": st.sampled_from(["gmail", "slack"]),
        "event": st.sampled_from(["GMAIL_NEW_GMAIL_MESSAGE", "SLACK_RECEIVE_MESSAGE"]),
        "connected_account": st.from_regex(r"ca_[a-z0-9]{1,8}", fullmatch=True),
        "action": ACTIONS,
    },
    optional={"config": VARIABLES, "enabled": st.booleans(), "description": TEXT},
)


def expected(before: models.AgentFile, edit: yamledit.Edit) -> models.AgentFile:
    """The old model with exactly ``edit`` made, computed on the models (not on YAML)."""
    field = yamledit.SECTION[edit.kind]
    items: list[Any] = list(getattr(before.planner, field))
    names = [i.name for i in items]
    if edit.op == "delete":
        items.pop(names.index(edit.name))
    else:
        assert edit.item is not None
        cls = models.Job if edit.kind == "job" else models.Trigger
        new = cls.model_validate({"name": edit.name, **edit.item}, strict=False)
        if edit.op == "create":
            items.append(new)
        else:
            items[names.index(edit.name)] = new
    planner = before.planner.model_copy(update={field: items})
    return before.model_copy(update={"planner": planner})


@st.composite
def edits(draw: st.DrawFn) -> tuple[str, yamledit.Edit]:
    path = draw(st.sampled_from(AGENTS))
    text = path.read_text()
    kind: yamledit.Kind = draw(st.sampled_from(["job", "trigger"]))
    names = [i.name for i in getattr(model(text).planner, yamledit.SECTION[kind])]
    ops: list[yamledit.Op] = ["create", "replace", "delete"] if names else ["create"]
    op = draw(st.sampled_from(ops))
    item = draw(JOBS if kind == "job" else TRIGGERS)
    if op == "create":
        name = draw(SLUGS.filter(lambda n: n not in names))
        return text, yamledit.Edit(kind, name, "create", item)
    name = draw(st.sampled_from(names))
    return text, yamledit.Edit(kind, name, op, None if op == "delete" else item)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(edits())
def test_an_edit_then_a_reload_is_the_old_model_with_exactly_that_edit(
    case: tuple[str, yamledit.Edit],
) -> None:
    text, edit = case
    after = yamledit.apply(text, edit)
    assert model(after) == expected(model(text), edit)
