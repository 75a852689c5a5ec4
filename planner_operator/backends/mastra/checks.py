"""Check agent files against what the Mastra server serves, before anything is applied.

A chat naming an agent Mastra does not have, or a workflow it does not serve, would only fail
at its first fire, as a failed run nobody is watching. With ``PLANNER_MASTRA_URL`` set, the plan
(and ``validate``) asks ``GET /agents`` and ``GET /workflows`` once and reports each unknown
name at its file and line, with the closest names Mastra has; a workflow's ``input`` is checked
against the input schema Mastra publishes (placeholders in it are filled only at run time, so an
input with ``{...}`` in it is checked for its shape only where no placeholder stands).

Workflow ids registered locally (``PLANNER_WORKFLOWS``, entry points) do not go to Mastra and
are not checked here: the caller passes them as ``local``. A server that cannot be reached
gives one warning naming the URL, not an error per resource: the check is a help, and the run
itself retries.
"""

from __future__ import annotations

import builtins
import difflib
from collections.abc import Collection, Mapping, Sequence
from typing import Any

import jsonschema  # type: ignore[import-untyped]  # no stubs in the dev extras

from planner_operator.backends.mastra.client import MastraClient, Workflow
from planner_operator.config.desired import DesiredResource
from planner_operator.core import specs
from planner_operator.errors import BackendError, ConfigError


class MastraCheck:
    """A ``Preflight`` over every resource whose action runs on Mastra."""

    def __init__(self, client: MastraClient, *, local: Collection[str] = ()) -> None:
        self.client = client
        self.local = frozenset(local)
        self.warnings: builtins.list[str] = []

    def preflight(self, resources: Sequence[DesiredResource]) -> builtins.list[ConfigError]:
        actions = [(r, _action(r)) for r in resources]
        chats = [(r, a) for r, a in actions if isinstance(a, specs.ChatAction)]
        flows = [
            (r, a)
            for r, a in actions
            if isinstance(a, specs.WorkflowAction) and a.id not in self.local
        ]
        if not chats and not flows:
            return []
        try:
            agents = self.client.agents() if chats else {}
            workflows = self.client.workflows() if flows else []
        except BackendError as exc:
            self.warnings.append(
                f"Mastra not checked: {exc} (agents and workflows are checked when the server "
                "answers)"
            )
            return []
        errors = [e for r, a in chats if (e := _check_agent(r, a, agents)) is not None]
        by_name = {w.key: w for w in workflows} | {w.id: w for w in workflows}
        for resource, action in flows:
            errors.extend(_check_workflow(resource, action, by_name))
        return errors


def _action(resource: DesiredResource) -> specs.Action:
    if resource.kind == "job":
        return specs.JobSpec.from_dict(resource.spec).action
    return specs.TriggerSpec.from_dict(resource.spec).action


def _check_agent(
    resource: DesiredResource, action: specs.ChatAction, agents: Mapping[str, str]
) -> ConfigError | None:
    named = action.agent
    agent = named or resource.agent
    if agent in agents:
        return None
    near = difflib.get_close_matches(agent, list(agents), n=3, cutoff=0.5)
    listed = ", ".join(f"`{a}`" for a in sorted(agents)) or "none"
    hint = (
        f"did you mean {' or '.join(f'`{n}`' for n in near)}?"
        if near
        else f"Mastra serves: {listed}"
    )
    how = "`mastra.agent`" if named else "the file's `id` (set `mastra: {agent: <id>}`)"
    return ConfigError(
        f"Mastra has no agent `{agent}` (named by {how})",
        file=resource.source,
        line=resource.line,
        path="action.chat",
        hint=hint,
    )


def _check_workflow(
    resource: DesiredResource, action: specs.WorkflowAction, workflows: Mapping[str, Workflow]
) -> builtins.list[ConfigError]:
    name = action.id
    found = workflows.get(name)
    if found is None:
        near = difflib.get_close_matches(name, list(workflows), n=3, cutoff=0.5)
        listed = ", ".join(f"`{w}`" for w in sorted({w.id for w in workflows.values()})) or "none"
        hint = (
            f"did you mean {' or '.join(f'`{n}`' for n in near)}?"
            if near
            else f"Mastra serves: {listed}"
        )
        return [
            ConfigError(
                f"Mastra serves no workflow `{name}` and none is registered locally",
                file=resource.source,
                line=resource.line,
                path="action.workflow.id",
                hint=hint,
            )
        ]
    data = action.input
    if found.input_schema is None or not data:
        return []  # an empty input is the event data: known only when it arrives
    try:
        validator = jsonschema.Draft7Validator(found.input_schema)
    except jsonschema.SchemaError:
        return []
    out = []
    for error in validator.iter_errors(dict(data)):
        if _placeholder(error.instance):
            continue
        where = ".".join(str(p) for p in error.absolute_path)
        out.append(
            ConfigError(
                f"input does not match Mastra workflow `{found.id}`'s input schema: "
                f"{error.message}",
                file=resource.source,
                line=resource.line,
                path="action.workflow.input" + (f".{where}" if where else ""),
            )
        )
    return out


def _placeholder(value: Any) -> bool:
    return isinstance(value, str) and "{" in value and "}" in value
