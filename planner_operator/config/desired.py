"""Desired state: every job and trigger of the loaded agent files, as keyed canonical specs.

The key (``<agent>/jobs/<name>``) is the identity that survives edits: a changed schedule is an
update of the same key, a rename is a different key. A spec is self-contained (effective
timezone, agent variables merged into the action) so the runtime needs nothing but the applied
spec to run a job, and its hash changes exactly when behaviour would.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from planner_operator.config import models
from planner_operator.config.loader import LoadedFile
from planner_operator.core import canonical, scheduling, specs
from planner_operator.core.keys import Kind, job_key, trigger_key


@dataclass(frozen=True)
class DesiredResource:
    key: str
    kind: Kind
    agent: str
    name: str
    source: str
    line: int
    spec: Mapping[str, Any]
    spec_hash: str

    @property
    def protect(self) -> bool:
        return specs.protected(self.spec)

    @property
    def enabled(self) -> bool:
        return specs.enabled(self.spec)


def build(files: Iterable[LoadedFile]) -> dict[str, DesiredResource]:
    """Resources of every file that loaded cleanly (files with errors contribute nothing)."""
    out: dict[str, DesiredResource] = {}
    for loaded in files:
        for resource in of_file(loaded):
            out[resource.key] = resource
    return dict(sorted(out.items()))


def of_file(loaded: LoadedFile) -> tuple[DesiredResource, ...]:
    """One file's resources (none unless it loaded cleanly); kept ones when the parse cache
    has them (``config.cached``)."""
    if not loaded.ok or loaded.agent is None:
        return ()
    if loaded.resources is not None:
        return loaded.resources
    return tuple(_resources(loaded, loaded.agent))


def _resources(loaded: LoadedFile, agent: models.AgentFile) -> Iterable[DesiredResource]:
    agent_id = loaded.agent_id
    for index, job in enumerate(agent.planner.jobs):
        spec = job_spec(agent, job)
        line, _ = loaded.positions.value(("planner", "jobs", index))
        yield _resource(job_key(agent_id, job.name), "job", agent_id, job.name, loaded, line, spec)
    for index, trigger in enumerate(agent.planner.triggers):
        spec = trigger_spec(agent, trigger)
        line, _ = loaded.positions.value(("planner", "triggers", index))
        key = trigger_key(agent_id, trigger.name)
        yield _resource(key, "trigger", agent_id, trigger.name, loaded, line, spec)


def _resource(
    key: str, kind: Kind, agent: str, name: str, loaded: LoadedFile, line: int, spec: dict[str, Any]
) -> DesiredResource:
    return DesiredResource(
        key=key,
        kind=kind,
        agent=agent,
        name=name,
        source=loaded.file,
        line=line,
        spec=spec,
        spec_hash=canonical.spec_hash(spec),
    )


def _action(agent: models.AgentFile, action: models.Action) -> specs.Action:
    if action.chat is not None:
        variables = {**agent.variables, **action.chat.variables}
        return specs.ChatAction(
            template=action.chat.template,
            variables=variables,
            agent=agent.mastra.agent if agent.mastra is not None else None,
        )
    assert action.workflow is not None
    # inputs may use the agent's variables: keep the spec self-contained
    return specs.WorkflowAction(
        id=action.workflow.id, input=action.workflow.input, variables=dict(agent.variables)
    )


def job_spec(agent: models.AgentFile, job: models.Job) -> dict[str, Any]:
    return specs.JobSpec(
        schedule=scheduling.normalize_schedule(job.schedule),
        action=_action(agent, job.action),
        timezone=job.timezone or agent.timezone,
        enabled=job.enabled,
        overlap=job.overlap,
        catchup=job.catchup,
        dst=job.dst,
        description=job.description,
        protect=job.protect,
    ).to_dict()


def trigger_spec(agent: models.AgentFile, trigger: models.Trigger) -> dict[str, Any]:
    webhook = trigger.webhook
    flt = trigger.filter
    return specs.TriggerSpec(
        action=_action(agent, trigger.action),
        toolkit=trigger.toolkit,
        event=trigger.event,
        connected_account=trigger.connected_account,
        user_id=trigger.user_id,
        config=trigger.config if webhook is None else None,
        webhook=specs.WebhookSpec(webhook.secret_env, webhook.scheme) if webhook else None,
        filter=(
            specs.Filter.from_dict(flt.model_dump(mode="json", by_alias=True, exclude_unset=True))
            if flt is not None
            else None
        ),
        enabled=trigger.enabled,
        description=trigger.description,
        protect=trigger.protect,
    ).to_dict()
