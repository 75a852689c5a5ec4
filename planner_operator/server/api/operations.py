"""What the API and the dashboard can *do*: run a job now, test a trigger, run a workflow.

Each goes through the same code as the real thing, so what a person tries is what the schedule
or the event would have done, and it lands in run history like any other run:

* **Run now** is ``planner-operator run-now``: ``JobRunner`` without the slot claim (a manual
  run is its own event, never the slot's fire), origin ``manual``. A paused job runs too:
  pausing stops the schedule, not a person who asks for one run.
* **Trigger test** stores an event in the inbox (source ``local``, type ``test``, delivery id
  ``test_...``) and has the webhook worker process it, so the filter, the rendering, the
  TriggerEvent/TriggerResult records, the idempotency key and the retry policy are the ones a
  real event gets. A disabled trigger ignores the test exactly as it would ignore an event. A
  rendering problem with a given body is refused (422) before anything is stored.
* **Workflow runs** (``/workflows/{id}/run``) call the workflow executor directly, recorded as
  ``workflows/<id>`` with origin ``manual``.

Answers come back as soon as the run is recorded as started; the executor call goes on in a
background thread, tracked here and given a grace period at shutdown (``drain``).
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import uuid
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from planner_operator.backends import select
from planner_operator.core import clock as clock_mod
from planner_operator.core import specs
from planner_operator.core.records import Delivery, NewDelivery, Run
from planner_operator.errors import (
    InvalidRequest,
    NotFoundError,
    PlannerError,
    RunCancelled,
    RunWaiting,
    TemplateError,
)
from planner_operator.read.runviews import TEST_PREFIX, RunSummary, summary
from planner_operator.runtime import waiting
from planner_operator.runtime import worker as worker_mod
from planner_operator.runtime.executors import actions
from planner_operator.runtime.executors.workflows import Registry
from planner_operator.runtime.jobrun import JobRunner, Started
from planner_operator.server.api import samples
from planner_operator.state import inbox
from planner_operator.state import open as state_open

if TYPE_CHECKING:
    from planner_operator.core.settings import Settings
    from planner_operator.read.views import Reader
    from planner_operator.runtime.executors.base import Executors
    from planner_operator.runtime.worker import Outcome, Worker
    from planner_operator.server.webhooks import Webhooks
    from planner_operator.state.runs import RunStore

log = logging.getLogger("planner_operator.operations")
FILTER_SKIP = "filter did not match"  # the worker's reason (server/worker.py)
WAIT_FOR_ROW = 10.0  # seconds a trigger test waits for the worker to record its run


class Operations:
    def __init__(
        self,
        *,
        settings: Settings,
        env: Mapping[str, str],
        runs: RunStore,
        executors: Executors,
        reader: Reader,
        webhooks: Webhooks | None,
        clock: clock_mod.Clock | None = None,
    ) -> None:
        self.settings, self.env = settings, env
        self.runs, self.executors = runs, executors
        self.reader = reader
        self.webhooks = webhooks
        self.clock = clock or runs.clock  # "now" of a run-now, and of a trigger test's event
        self.policy = waiting.WaitPolicy.from_env(env)
        self.runner = JobRunner(runs, executors, clock=self.clock, policy=self.policy)
        self._pending: set[asyncio.Task[None]] = set()
        self._schemas: dict[str, Mapping[str, Any] | None] = {}
        self._worker: Worker | None = None

    # -- run now -------------------------------------------------------------------------------

    async def run_job(self, agent: str, name: str) -> RunSummary:
        """Start one run of an applied job now; the answer is the run, usually ``running``."""
        entry = await asyncio.to_thread(self.reader.entry, "job", agent, name)
        run_id = f"manual-{uuid.uuid4().hex[:12]}"
        fire = self.runner.fire_now(entry.spec)

        def start() -> Started | str:
            return self.runner.start(
                entry.key, entry.spec, fire, run_id=run_id, origin="manual", claim_slot=False
            )

        started = await asyncio.to_thread(start)
        assert not isinstance(started, str)  # no slot claim, so never skipped
        self._background(f"run-now {entry.key}", lambda: self.runner.execute(started))
        return await self._summary(started.row)

    # -- trigger test --------------------------------------------------------------------------

    async def test_trigger(
        self, agent: str, name: str, body: dict[str, Any] | None = None
    ) -> RunSummary:
        """Fire a trigger's action with ``body`` (default: :meth:`sample_payload`) as the event.

        The answer is the run: ``running`` (or finished) when the action ran, ``skipped`` with
        the failing filter conditions named when the filter rejected the event, or ``skipped``
        ``ignored (disabled)`` for a disabled trigger.
        """
        entry = await asyncio.to_thread(self.reader.entry, "trigger", agent, name)
        if body is None:
            payload = await asyncio.to_thread(self.sample_payload, agent, name)
        else:
            payload = dict(body)
        trigger = specs.TriggerSpec.from_dict(entry.spec)
        enabled = trigger.enabled
        rejected = samples.failures(trigger.filter, payload) if enabled else []
        if enabled and not rejected:
            try:
                actions.prepare_trigger(entry.key, entry.spec, payload)
            except TemplateError as exc:
                raise InvalidRequest(
                    f"{entry.key}: {exc} (the event has no such field; send it in the body, or "
                    "send no body for a sample event)",
                    field="body",
                ) from None
        delivery = NewDelivery(
            id=inbox.delivery_id("local", f"{TEST_PREFIX}{secrets.token_hex(8)}"),
            source="local",
            body=json.dumps(payload, default=str).encode(),
            trigger_key=entry.key,
            event_type=worker_mod.TEST_EVENT,  # run history's origin "test"
        )
        claimed = await asyncio.to_thread(self._store, delivery)
        outcome: list[Outcome] = []
        task = None
        if claimed is not None:  # else a running worker took it first: it records the run
            worker = self._get_worker()
            task = self._background(
                f"trigger test {entry.key}", lambda: outcome.append(worker.process(claimed))
            )
        skips = rejected or not enabled
        run = await self._await_run(entry.key, delivery.id, task, settled=bool(skips))
        if run is None:
            why = outcome[0].note if outcome else "the worker did not pick it up in time"
            raise PlannerError(f"{entry.key}: the test event {delivery.id} did not run: {why}")
        if rejected and run.status == "skipped" and run.reason == FILTER_SKIP:
            reason = f"{FILTER_SKIP}: " + "; ".join(rejected)
            await asyncio.to_thread(
                lambda: self.runs.finish(run.id, status="skipped", reason=reason)
            )
        return await self._summary(run.id)

    def sample_payload(self, agent: str, name: str) -> dict[str, Any]:
        """An event for the trigger that fills its template and passes its filter."""
        entry = self.reader.entry("trigger", agent, name)
        return samples.build(entry.spec, self._schema(entry.spec))

    def _schema(self, spec: Mapping[str, Any]) -> Mapping[str, Any] | None:
        if "webhook" in spec:
            return None
        slug = str(spec.get("event") or "")
        if slug not in self._schemas:
            live = self._composio_schema(slug)
            if live is None:
                return samples.catalog().get(slug)  # not cached: Composio may answer next time
            self._schemas[slug] = live
        return self._schemas[slug]

    def _composio_schema(self, slug: str) -> Mapping[str, Any] | None:
        env = self.env
        if select.trigger_backend_name(env) != "composio":
            return None
        from planner_operator.backends.composio import backend as composio

        try:
            with composio.from_env(self.settings, env) as backend:
                found = backend._type(slug)
        except PlannerError as exc:
            log.warning(
                "sample payload: Composio type %s unread (%s): using the catalog", slug, exc
            )
            return None
        return dict(found.payload) if found is not None else None

    def _get_worker(self) -> Worker:
        if self._worker is None:
            from planner_operator.runtime.worker import Routes, Worker

            hooks, settings = self.webhooks, self.settings
            self._worker = Worker(
                inbox=state_open.inbox(settings, clock=self.clock),
                routes=hooks.routes if hooks is not None else Routes(settings, clock=self.clock),
                runs=self.runs,
                executors=self.executors,
                owner=f"api-test:{uuid.uuid4().hex[:8]}",
            )
        return self._worker

    def _store(self, delivery: NewDelivery) -> Delivery | None:
        """Store the event and lease it to our worker at once (None: another worker has it)."""
        worker = self._get_worker()
        worker.inbox.insert(delivery)
        return worker.inbox.claim_id(delivery.id, worker.owner, worker.config.lease)

    async def _await_run(
        self, key: str, run_id: str, task: asyncio.Task[None] | None, *, settled: bool
    ) -> Run | None:
        """The run the worker records for a delivery; when ``settled``, only once it ended."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + WAIT_FOR_ROW
        while True:
            if settled and task is not None:
                await asyncio.wait({task}, timeout=max(0.0, deadline - loop.time()))
            run = await asyncio.to_thread(self._find, key, run_id)
            done = task is not None and task.done()
            if run is not None and (not settled or run.status != "running"):
                return run
            if done and run is None:
                return None
            if loop.time() >= deadline:
                return run
            await asyncio.sleep(0.01)

    def _find(self, key: str, run_id: str) -> Run | None:
        recent = self.runs.list(key=key, limit=20)
        return next((r for r in recent if r.run_id == run_id), None)

    # -- workflows -----------------------------------------------------------------------------

    async def run_workflow(self, workflow_id: str, input: dict[str, Any]) -> RunSummary:
        """Run a registered workflow now with ``input`` (key ``workflows/<id>``)."""
        workflow = self.executors.workflow
        registry = getattr(workflow, "registry", None)
        unknown = isinstance(registry, Registry) and registry.get(workflow_id) is None
        if unknown and getattr(workflow, "fallback", None) is None:
            raise NotFoundError(
                f"no workflow registered as `{workflow_id}` (GET /workflows lists the known ids)"
            )
        key, run_id = f"workflows/{workflow_id}", f"manual-{uuid.uuid4().hex[:12]}"
        runs = self.runs
        rendered = json.dumps(input, sort_keys=True, ensure_ascii=False, default=str)
        row = await asyncio.to_thread(
            lambda: runs.start(
                key=key,
                kind="workflow",
                run_id=run_id,
                origin="manual",
                action="workflow",
                rendered=rendered,
            )
        )
        context = {"run_key": f"{key}@manual:{run_id}", "key": key, "run_id": run_id}

        def execute() -> None:
            try:
                result = workflow.run(workflow=workflow_id, input=input, context=context)
            except RunWaiting as exc:  # suspended in Mastra: the worker's poller takes it on
                made = waiting.call(workflow=workflow_id, input=input, context=context)
                waiting.record(runs, row, exc, made, policy=self.policy, clock=self.clock)
                return
            except RunCancelled as exc:
                runs.finish(row, status="cancelled", error=str(exc))
                raise
            except Exception as exc:
                runs.finish(row, status="failed", error=str(exc))
                raise
            runs.finish(row, status="succeeded", result=result)

        self._background(f"workflow {workflow_id}", execute)
        return await self._summary(row)

    # -- background work -----------------------------------------------------------------------

    def _background(self, what: str, fn: Callable[[], Any]) -> asyncio.Task[None]:
        """Run ``fn`` in a thread; its failure is already in run history, so only logged."""

        async def go() -> None:
            try:
                await asyncio.to_thread(fn)
            except Exception as exc:
                log.warning("%s failed: %s", what, exc)

        task = asyncio.get_running_loop().create_task(go(), name=what)
        self._pending.add(task)
        task.add_done_callback(self._forget)
        return task

    def _forget(self, task: asyncio.Task[None]) -> None:
        self._pending.discard(task)

    async def drain(self, timeout: float) -> None:
        """Shutdown: give runs started here up to ``timeout`` seconds to finish."""
        if self._pending:
            await asyncio.wait(set(self._pending), timeout=timeout)
        if self._worker is not None and not self._pending:
            self._worker.inbox.close()
            self._worker = None

    async def _summary(self, row: int) -> RunSummary:
        found = await asyncio.to_thread(self.runs.get, row)
        assert found is not None  # just written
        return summary(found)
