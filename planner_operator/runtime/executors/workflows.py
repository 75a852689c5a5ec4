"""Workflows: what ``workflow: {id: ...}`` runs, found by id.

A workflow id maps to a *target*, registered (later wins) by:

1. the example workflows shipped with the operator (``planner_operator.runtime.workflows.BUILTIN``);
2. entry points in group ``planner_operator.workflows`` (name = id, value = ``module:function``),
   so a package installed beside the operator brings its workflows along;
3. ``PLANNER_WORKFLOWS="id=target;id=target"``, where a target is ``module:function``, an
   ``http(s)://`` endpoint, or ``inngest:<event name>``.

Ids nobody registered go to ``PLANNER_WORKFLOW_URL`` when it is set (the agent platform), and so
do the shipped examples: they stand in for the platform only when there is none. Otherwise an
unknown id is a permanent error naming the three ways to register it.

A Python workflow is ``fn(input, context) -> JSON-able`` (or ``fn(input)``); ``context`` has the
run key (the idempotency key: for an event, its delivery id), the resource key, the
operator's ``state_dir`` and ``now`` (ISO 8601 UTC from the operator's clock: a workflow that
looks back "the last 24 h" reads it rather than the system time, so tests can pin it). Local
runs are journaled by run key in the outbox database, so a retried or re-delivered run returns
the first result instead of running again. An Inngest target sends one event whose ``id`` is
the run key (Inngest dedupes on it for 24 h; the inbox covers 7 days).
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any, Literal

import httpx

from planner_operator.core import clock as clock_mod
from planner_operator.core import variables
from planner_operator.errors import PermanentError
from planner_operator.runtime.executors.base import WorkflowExecutor
from planner_operator.runtime.executors.http import HttpExecutor
from planner_operator.runtime.executors.local import LocalOutbox

ENTRY_POINT_GROUP = variables.WORKFLOW_ENTRY_POINTS
ENV_WORKFLOWS = variables.WORKFLOWS.name

Workflow = Callable[..., Any]
TargetKind = Literal["python", "http", "inngest"]


@dataclass(frozen=True)
class Target:
    kind: TargetKind
    ref: str
    origin: str  # builtin | entry point | PLANNER_WORKFLOWS

    @classmethod
    def parse(cls, ref: str, origin: str) -> Target:
        ref = ref.strip()
        if ref.startswith(("http://", "https://")):
            return cls("http", ref, origin)
        if ref.startswith("inngest:") and len(ref) > len("inngest:"):
            return cls("inngest", ref[len("inngest:") :], origin)
        module, _, attr = ref.partition(":")
        if not module or not attr:
            raise PermanentError(
                f"workflow target {ref!r} ({origin}) is not module:function, a URL or "
                "inngest:<event>",
                backend="workflow",
            )
        return cls("python", ref, origin)


class Registry:
    """Workflow id -> target; Python callables are imported on first use."""

    def __init__(self, targets: Mapping[str, Target]) -> None:
        self._targets = dict(targets)
        self._loaded: dict[str, Workflow] = {}

    @classmethod
    def discover(cls, env: Mapping[str, str] | None = None) -> Registry:
        from planner_operator.runtime.workflows import BUILTIN

        env = variables.environ(env)
        targets = {wid: Target.parse(ref, "builtin") for wid, ref in BUILTIN.items()}
        for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
            targets[ep.name] = Target.parse(ep.value, f"entry point {ep.name}")
        for item in variables.WORKFLOWS.read(env):
            wid, sep, ref = item.partition("=")
            if not sep or not wid.strip():
                raise PermanentError(
                    f"{ENV_WORKFLOWS}: {item.strip()!r} is not id=target", backend="workflow"
                )
            targets[wid.strip()] = Target.parse(ref, ENV_WORKFLOWS)
        return cls(targets)

    def get(self, workflow: str) -> Target | None:
        return self._targets.get(workflow)

    def ids(self) -> list[str]:
        return sorted(self._targets)

    def load(self, workflow: str) -> Workflow:
        if workflow not in self._loaded:
            target = self._targets.get(workflow)
            if target is None or target.kind != "python":
                raise PermanentError(f"no Python workflow {workflow!r}", backend="workflow")
            self._loaded[workflow] = load_callable(target.ref)
        return self._loaded[workflow]


def load_callable(ref: str) -> Workflow:
    """Import ``module:attr.path``; failures are permanent errors that name the target."""
    module_name, _, attr = ref.partition(":")
    try:
        value: Any = importlib.import_module(module_name)
        for part in attr.split("."):
            value = getattr(value, part)
    except (ImportError, AttributeError) as exc:
        raise PermanentError(f"cannot load workflow {ref}: {exc}", backend="workflow") from exc
    if not callable(value):
        raise PermanentError(f"workflow {ref} is not callable", backend="workflow")
    return value  # type: ignore[no-any-return]


def call(fn: Workflow, input: Mapping[str, Any], context: Mapping[str, Any]) -> Any:
    """``fn(input, context)``, or ``fn(input)`` for a one-parameter function."""
    try:
        params = [
            p
            for p in inspect.signature(fn).parameters.values()
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.VAR_POSITIONAL)
        ]
    except (TypeError, ValueError):  # builtins without a signature
        params = []
    if len(params) == 1 and params[0].kind is not inspect.Parameter.VAR_POSITIONAL:
        return fn(dict(input))
    return fn(dict(input), dict(context))


class WorkflowRunner:
    """The workflow executor: registered targets first, then the platform fallback."""

    def __init__(
        self,
        registry: Registry,
        *,
        journal: LocalOutbox,
        state_dir: Path,
        fallback: WorkflowExecutor | None = None,
        env: Mapping[str, str] | None = None,
        client: httpx.Client | None = None,
        clock: clock_mod.Clock = clock_mod.SYSTEM,
    ) -> None:
        self.registry = registry
        self.clock = clock
        self.journal = journal
        self.state_dir = Path(state_dir)
        self.fallback = fallback
        self.env = dict(variables.environ(env))
        self._http = HttpExecutor(client=client, clock=clock)

    def close(self) -> None:
        self._http.close()

    def run(self, *, workflow: str, input: Mapping[str, Any], context: Mapping[str, Any]) -> Any:
        target = self.registry.get(workflow)
        if self.fallback is not None and (target is None or target.origin == "builtin"):
            return self.fallback.run(workflow=workflow, input=input, context=context)
        if target is None:
            raise PermanentError(
                f"no workflow registered as {workflow!r}: add an entry point in group "
                f"{ENTRY_POINT_GROUP}, set {ENV_WORKFLOWS}={workflow}=module:function, "
                "or set PLANNER_WORKFLOW_URL",
                backend="workflow",
            )
        key = str(context.get("run_key") or "")
        if target.kind == "http":
            body = {"workflow": workflow, "input": dict(input), "context": dict(context)}
            return self._http.post(target.ref, body, key=key)
        if target.kind == "inngest":
            return self._send_inngest(target.ref, input, context, key)
        return self._run_local(workflow, input, context, key)

    def _run_local(
        self, workflow: str, input: Mapping[str, Any], context: Mapping[str, Any], key: str
    ) -> Any:
        if key:
            done, result = self.journal.workflow_result(key)
            if done:
                return result
        fn = self.registry.load(workflow)
        local_context = {
            **context,
            "workflow": workflow,
            "state_dir": str(self.state_dir),
            "now": clock_mod.iso(self.clock),
        }
        result = call(fn, input, local_context)
        return self.journal.record_workflow(
            workflow=workflow, input=input, context=context, result=result
        )

    def _send_inngest(
        self, event: str, input: Mapping[str, Any], context: Mapping[str, Any], key: str
    ) -> Any:
        from planner_operator.backends.inngest.sdk import InngestConfig

        config = InngestConfig.from_env(self.env)
        event_key = config.event_key or ("NO_EVENT_KEY_SET" if not config.production else None)
        if not event_key:
            raise PermanentError(
                "INNGEST_EVENT_KEY is needed to run workflows on Inngest", backend="inngest"
            )
        url = f"{config.event_api_base_url}/e/{event_key}"
        payload = [
            {
                "name": event,
                "data": {"input": dict(input), "context": dict(context)},
                "id": key,  # Inngest's idempotency key: the delivery id
                "ts": int(clock_mod.epoch(self.clock) * 1000),
            }
        ]
        shown = f"{config.event_api_base_url}/e/<event key>"
        answer = self._http.post(url, payload, key=key, shown=shown)
        ids = answer.get("ids") if isinstance(answer, dict) else None
        return {"sink": "inngest", "event": event, "event_ids": ids or [], "event_id": key}
