"""Chats and workflows on a Mastra server (``PLANNER_MASTRA_URL``).

A chat is a new memory thread per execution, then one ``generate`` on it; a workflow is a
Mastra run. Both are named after the run's idempotency key (``context["run_key"]``, a delivery
id or a job's slot claim), so a retried step, a re-delivered event or an operator restart
finds what the first attempt made instead of making a second one:

- chat: the thread id is derived from the key. A thread that already holds an answer is the
  answer (nothing is generated twice); one without (created, then the call was cut short) is
  answered now.
- workflow: the Mastra ``runId`` is derived from the key. An existing run is waited for (or
  started, when it was created and never started); a new one is created, its input checked
  against the schema Mastra publishes (Mastra's ``/start`` would accept bad input and leave the
  run pending forever), then run with ``start-async``. A run longer than ``wait`` seconds is an
  unknown outcome: the retry finds the same run and waits again.

Derived ids are ``po-`` and 32 hex digits of the key's SHA-256: Mastra route segments must not
hold the key's ``/`` and ``:``; the key itself travels in the thread's metadata.

Run states: ``success`` → succeeded (the result); ``failed`` → failed with Mastra's error;
``canceled`` → cancelled (:class:`RunCancelled`); ``suspended``/``waiting`` → waiting
(:class:`RunWaiting`, with the suspended steps and their ``suspendPayload``): the run is
recorded ``waiting`` and polled by ``runtime.waiting`` (a call with the same key finds the same
Mastra run) until it is resumed or cancelled in Mastra. 400 (invalid input, unknown agent
settings) is permanent; 5xx and connection failures retry with the worker's backoff.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

import jsonschema  # type: ignore[import-untyped]  # no stubs in the dev extras

from planner_operator.backends.mastra.client import MastraClient, Workflow
from planner_operator.core import clock as clock_mod
from planner_operator.errors import PermanentError, RunCancelled, RunWaiting, UnknownOutcome
from planner_operator.runtime.executors.base import ChatStarted

BACKEND = "mastra"
_DONE_FAILED = frozenset({"failed", "bailed", "tripwire"})
_CANCELLED = frozenset({"canceled", "cancelled"})
_WAITING = frozenset({"suspended", "waiting", "paused"})


def derived_id(run_key: str) -> str:
    return "po-" + hashlib.sha256(run_key.encode()).hexdigest()[:32]


class MastraExecutor:
    """Both executor Protocols on one Mastra server."""

    sink = "mastra"

    def __init__(
        self,
        client: MastraClient,
        *,
        wait: float = 300.0,
        revision: str | None = None,
        clock: clock_mod.Clock = clock_mod.SYSTEM,
    ) -> None:
        self.client = client
        self.wait = wait
        self.revision = revision
        self.clock = clock
        self._workflows: dict[str, Workflow] | None = None

    def close(self) -> None:
        self.client.close()

    # -- chat --------------------------------------------------------------------------------

    def start_thread(self, *, agent: str, message: str, context: Mapping[str, Any]) -> ChatStarted:
        key = _run_key(context)
        thread_id = derived_id(key)
        resource = str(context.get("key") or agent)
        if self.client.thread(thread_id, agent=agent) is None:
            metadata = {
                "planner_key": resource,
                "planner_run_key": key,
                "planner_run_id": str(context.get("run_id") or ""),
            }
            if context.get("revision") or self.revision:
                metadata["planner_revision"] = str(context.get("revision") or self.revision)
            self.client.create_thread(
                agent=agent,
                thread_id=thread_id,
                resource_id=resource,
                title=_title(resource, context),
                metadata=metadata,
            )
        else:
            answered = _last_reply(self.client.messages(thread_id, agent=agent))
            if answered is not None:
                return ChatStarted(thread_id, reply=answered, link=self._thread_link(thread_id))
        out = self.client.generate(
            agent=agent, message=message, thread_id=thread_id, resource_id=resource
        )
        usage = out.get("usage")
        return ChatStarted(
            thread_id,
            reply=str(out.get("text") or ""),
            finish_reason=str(out["finishReason"]) if out.get("finishReason") else None,
            usage={k: v for k, v in usage.items() if k != "raw"}
            if isinstance(usage, Mapping)
            else None,
            link=self._thread_link(thread_id),
        )

    def _thread_link(self, thread_id: str) -> str:
        return f"{self.client.base_url}/memory/threads/{thread_id}"

    # -- workflows ---------------------------------------------------------------------------

    def knows(self, workflow: str) -> bool:
        return self._workflow(workflow, refresh=False) is not None

    def run(self, *, workflow: str, input: Mapping[str, Any], context: Mapping[str, Any]) -> Any:
        found = self._workflow(workflow, refresh=True)
        if found is None:
            raise PermanentError(
                f"Mastra serves no workflow {workflow!r} (GET {self.client.base_url}/workflows "
                "lists the ids and keys it has)",
                backend=BACKEND,
            )
        run_id = derived_id(_run_key(context))
        existing = self.client.workflow_run(found.key, run_id)
        if existing is not None and existing.get("status") != "pending":
            return self._outcome(found, run_id, self._wait_for(found, run_id, existing))
        _check_input(found, input)
        if existing is None:
            self.client.create_run(found.key, run_id)
        answer = self.client.start_async(found.key, run_id, input, wait=self.wait)
        return self._outcome(found, run_id, answer)

    def _wait_for(
        self, workflow: Workflow, run_id: str, run: Mapping[str, Any]
    ) -> Mapping[str, Any]:
        """A run already under way: poll it until it ends, at most ``wait`` seconds."""
        deadline = self.clock.monotonic() + self.wait
        pause = 0.2
        while str(run.get("status")) in ("running", "pending"):
            if self.clock.monotonic() >= deadline:
                raise UnknownOutcome(
                    f"Mastra run {run_id} of {workflow.id} still running after "
                    f"{self.wait:.0f} s; waiting again on the next attempt",
                    backend=BACKEND,
                )
            self.clock.sleep(pause)
            pause = min(pause * 2, 5.0)
            found = self.client.workflow_run(workflow.key, run_id)
            if found is None:
                raise UnknownOutcome(f"Mastra run {run_id} disappeared", backend=BACKEND)
            run = found
        return run

    def _outcome(self, workflow: Workflow, run_id: str, run: Mapping[str, Any]) -> Any:
        status = str(run.get("status") or "")
        if status == "success":
            return {
                "mastra_workflow": workflow.id,
                "mastra_run_id": run_id,
                "status": status,
                "result": run.get("result"),
            }
        if status in _CANCELLED:
            raise RunCancelled(
                f"Mastra workflow {workflow.id} run {run_id} was cancelled in Mastra",
                backend=BACKEND,
            )
        if status in _DONE_FAILED:
            error = run.get("error")
            text = error.get("message") if isinstance(error, Mapping) else error
            raise PermanentError(
                f"Mastra workflow {workflow.id} run {run_id} {status}"
                + (f": {text}" if text else ""),
                backend=BACKEND,
            )
        if status in _WAITING:
            awaiting = _awaiting(run)
            steps = ", ".join(awaiting["steps"]) or "?"
            raise RunWaiting(
                f"Mastra workflow {workflow.id} run {run_id} is {status} at step {steps}: "
                f"resume it in Mastra (POST /workflows/{workflow.key}/resume-async"
                f"?runId={run_id})",
                backend=BACKEND,
                awaiting={
                    "mastra_workflow": workflow.id,
                    "mastra_run_id": run_id,
                    "status": status,
                    **awaiting,
                },
            )
        raise UnknownOutcome(
            f"Mastra workflow {workflow.id} run {run_id} answered status {status!r}",
            backend=BACKEND,
        )

    def _workflow(self, name: str, *, refresh: bool) -> Workflow | None:
        if self._workflows is None or (refresh and name not in self._workflows):
            listed = self.client.workflows()
            self._workflows = {w.key: w for w in listed} | {w.id: w for w in listed}
        return self._workflows.get(name)


def _awaiting(run: Mapping[str, Any]) -> dict[str, Any]:
    """What a suspended run waits for: its suspended steps and their ``suspendPayload``.

    ``start-async`` answers ``suspended`` (step paths) and ``suspendPayload`` per step;
    ``GET .../runs/{runId}`` only the ``steps`` with their status, so both are read.
    """
    steps: dict[str, Any] = {}
    for name, step in (run.get("steps") or {}).items():
        if isinstance(step, Mapping) and step.get("status") in _WAITING:
            steps[str(name)] = step.get("suspendPayload")
    for path in run.get("suspended") or []:
        if isinstance(path, list) and path:
            steps.setdefault(str(path[-1]), None)
    top = run.get("suspendPayload")
    if isinstance(top, Mapping):
        for name, payload in top.items():
            if steps.get(str(name)) is None:
                steps[str(name)] = payload
    return {"steps": sorted(steps), "suspend_payload": steps}


def _check_input(workflow: Workflow, input: Mapping[str, Any]) -> None:
    """Input Mastra would reject, refused before a run exists, naming the field."""
    if workflow.input_schema is None:
        return
    try:
        validator = jsonschema.Draft7Validator(workflow.input_schema)
    except jsonschema.SchemaError:
        return  # not ours to judge: Mastra validates it too
    # the most specific first: a field's own error before "a required field is missing"
    errors = sorted(
        validator.iter_errors(dict(input)),
        key=lambda e: (not e.absolute_path, [str(p) for p in e.absolute_path]),
    )
    if errors:
        first = errors[0]
        where = ".".join(str(p) for p in first.absolute_path) or "(input)"
        raise PermanentError(
            f"input for Mastra workflow {workflow.id} is invalid at {where}: {first.message}",
            backend=BACKEND,
        )


def _run_key(context: Mapping[str, Any]) -> str:
    key = str(context.get("run_key") or "")
    if not key:
        raise PermanentError("a Mastra call needs the run's idempotency key", backend=BACKEND)
    return key


def _title(resource: str, context: Mapping[str, Any]) -> str:
    slot = context.get("slot")
    return f"{resource} · {slot}" if slot else resource


def _last_reply(messages: list[Mapping[str, Any]]) -> str | None:
    for message in reversed(messages):
        if message.get("role") != "assistant":
            continue
        content = message.get("content")
        if isinstance(content, Mapping):
            text = content.get("content")
            if isinstance(text, str):
                return text
            parts = content.get("parts") or []
            return "".join(str(p.get("text") or "") for p in parts if isinstance(p, Mapping))
        if isinstance(content, str):
            return content
    return None
