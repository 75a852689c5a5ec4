"""Turn an applied spec plus a fire (slot time or event payload) into one executor call.

Preparing is pure (render templates, decide the call) so that ``inbox replay --rev`` and the
plan's sample messages show exactly what a run would do; executing is the one side effect.
Variable precedence for jobs: built-ins (date, time, ...) over the action's and agent's
variables, so a run's date can never be shadowed by a stale constant. For triggers the event
payload's fields come over the variables.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from planner_operator import telemetry
from planner_operator.core import specs, templates
from planner_operator.core.keys import split_key
from planner_operator.runtime.executors.base import ChatStarted, Executors


@dataclass(frozen=True)
class Prepared:
    """One executor call, fully rendered."""

    kind: Literal["chat", "workflow"]
    agent: str
    message: str | None = None
    workflow: str | None = None
    input: Mapping[str, Any] | None = None

    @property
    def rendered(self) -> str:
        """What a person reads in run history: the message, or the workflow input as JSON."""
        if self.kind == "chat":
            return self.message or ""
        return json.dumps(self.input or {}, sort_keys=True, ensure_ascii=False)


def prepare_job(key: str, spec: Mapping[str, Any], *, slot: datetime, run_id: str) -> Prepared:
    """Render a job's action for a fire at ``slot`` (aware, in the job's timezone)."""
    agent, _, name = split_key(key)
    builtins = templates.job_builtins(slot=slot, agent=agent, job=name, run_id=run_id)
    return _prepare(agent, specs.JobSpec.from_dict(spec).action, builtins, payload=None)


def prepare_trigger(key: str, spec: Mapping[str, Any], payload: Mapping[str, Any]) -> Prepared:
    """Render a trigger's action for one event payload."""
    agent, _, _ = split_key(key)
    return _prepare(agent, specs.TriggerSpec.from_dict(spec).action, {}, payload=payload)


def _prepare(
    agent: str,
    action: specs.Action,
    builtins: Mapping[str, Any],
    payload: Mapping[str, Any] | None,
) -> Prepared:
    values = {**action.variables, **(payload or {}), **builtins}
    if isinstance(action, specs.ChatAction):
        message = templates.render(action.template, values)
        return Prepared("chat", action.agent or agent, message=message)
    if payload is not None and not action.input:
        return Prepared("workflow", agent, workflow=action.id, input=dict(payload))
    rendered = templates.render_value(action.input, values)
    return Prepared("workflow", agent, workflow=action.id, input=rendered)


def execute(prepared: Prepared, executors: Executors, *, context: Mapping[str, Any]) -> Any:
    """Make the call; ``context["run_key"]`` is the idempotency key. Timed for /metrics."""
    with telemetry.executor_call(prepared.kind):
        if prepared.kind == "chat":
            started = executors.chat.start_thread(
                agent=prepared.agent, message=prepared.message or "", context=context
            )
            sink = getattr(executors.chat, "sink", None)  # "local" when no platform is configured
            return _chat_result(started, sink)
        return executors.workflow.run(
            workflow=prepared.workflow or "", input=prepared.input or {}, context=context
        )


def _chat_result(started: str | ChatStarted, sink: str | None) -> dict[str, Any]:
    """What run history keeps of a chat: the thread, and the reply when the platform gave one."""
    if isinstance(started, str):
        started = ChatStarted(started)
    result: dict[str, Any] = {"thread_id": started.thread_id}
    if sink:
        result["sink"] = sink
    if started.reply is not None:
        result["reply"] = started.reply
    if started.finish_reason is not None:
        result["finish_reason"] = started.finish_reason
    if started.usage is not None:
        result["usage"] = dict(started.usage)
    if started.link is not None:
        result["thread_url"] = started.link
    return result
