"""The inbox worker: route each stored delivery to its trigger and run the trigger's action.

Runs inside ``serve`` (woken by every inbox commit) and as ``planner-operator worker`` (polling).
A delivery is leased (``Inbox.claim``), routed through the ledger (a Composio trigger instance
id, or the ``<agent>/triggers/<name>`` key of a generic webhook) to the applied trigger spec,
filtered, rendered and executed; run history gets a TriggerEvent and a TriggerResult for it.

Exactly once, end to end: the inbox dedupes deliveries; the delivery id is the idempotency key
of the executor call (a retried call returns the first thread or workflow result); and a run
that already succeeded is never executed again, even when a crash lost the inbox update after
it. Failures are typed: ``RetryableError`` (and anything unexpected) retries with capped
exponential backoff and jitter, honouring Retry-After; ``PermanentError`` and template errors
dead-letter at once; after ``max_attempts`` a delivery is dead (``inbox replay`` re-runs it).
"""

from __future__ import annotations

import asyncio
import logging
import random
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Literal

from planner_operator import telemetry
from planner_operator.backends.composio import payloads
from planner_operator.core import clock as clock_mod
from planner_operator.core import variables
from planner_operator.core.records import Delivery
from planner_operator.core.settings import Settings
from planner_operator.errors import (
    PermanentError,
    RetryableError,
    RunCancelled,
    RunWaiting,
    StateError,
    TemplateError,
)
from planner_operator.runtime import events, pump, waiting
from planner_operator.runtime.executors import actions
from planner_operator.runtime.executors.base import Executors
from planner_operator.state import liveness
from planner_operator.state import open as state_open
from planner_operator.state.inbox import Inbox, Settlement
from planner_operator.state.runs import RunStore

log = logging.getLogger("planner_operator.worker")
_JITTER = random.Random()  # own generator: never disturbs (or depends on) the global one
ABANDONED = "abandoned: the worker stopped mid-run (lease expired); retried"


# -- routing ----------------------------------------------------------------------------------


TEST_EVENT = "test"  # event_type of deliveries stored by POST /api/triggers/{agent}/{trigger}/test


class Routes:
    """The applied triggers (ledger rows of kind ``trigger``), reloaded when stale.

    Another process (a reconcile) changes the ledger, so the snapshot is checked at most every
    ``max_age`` seconds, and at once on a miss; it is rebuilt only when the ledger's change mark
    moved (``Ledger.change_mark``), so an idle or busy ``serve`` does not decode every trigger
    every two seconds (that churn was most of its allocations between deliveries). Retired
    rows (an old instance a replace has not deleted yet) still route their in-flight events, to
    their own applied spec.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        max_age: float = 2.0,
        clock: clock_mod.Clock = clock_mod.SYSTEM,
    ) -> None:
        self.settings = settings
        self.max_age = max_age
        self.clock = clock
        self._by_id: dict[str, events.Route] = {}
        self._by_key: dict[str, events.Route] = {}
        self._loaded = float("-inf")
        self._mark: tuple[int, int, str | None, str | None] | None = None
        self._lock = threading.Lock()
        self.rebuilds = 0  # snapshots built from the ledger's rows (tests, benchmarks)

    def reload(self) -> None:
        with state_open.ledger(self.settings) as ledger:
            mark = ledger.change_mark()
            if mark == self._mark:
                self._loaded = self.clock.monotonic()
                return
            entries = ledger.entries(kind="trigger")
        self.rebuilds += 1
        by_id: dict[str, events.Route] = {}  # Composio trigger ids: only Composio triggers
        by_key: dict[str, events.Route] = {}
        for e in entries:  # active rows come before retired ones for the same key
            route = events.Route(e.key, e.remote_id, e.backend, e.spec)
            if route.source == "composio":
                by_id.setdefault(e.remote_id, route)
            by_key.setdefault(e.key, route)
        self._by_id, self._by_key = by_id, by_key
        self._mark, self._loaded = mark, self.clock.monotonic()

    def age(self) -> float:
        return self.clock.monotonic() - self._loaded

    def refresh(self, max_age: float | None = None) -> None:
        limit = self.max_age if max_age is None else max_age
        if self.age() > limit:
            with self._lock:
                if self.age() > limit:
                    self.reload()

    def find(
        self, source: str, *, remote_id: str | None = None, key: str | None = None
    ) -> events.Route | None:
        """The trigger a delivery from ``source`` may reach, or None.

        Each receiver routes only to triggers of its own source (:attr:`events.Route.source`):
        a Composio delivery by Composio trigger id, to Composio triggers; a generic webhook by
        key, to triggers with that webhook spec (and its own secret). The operator's own events
        (``local``: ``inbox inject``, trigger tests) go to any trigger by key.
        """
        if source == "composio":
            return self._by_id.get(remote_id or "")
        route = self._by_key.get(key or "")
        if route is None or source not in ("local", route.source):
            return None
        return route

    def all(self) -> list[events.Route]:
        return list(self._by_key.values())


# -- policy -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Backoff:
    """Capped exponential backoff with jitter: ``min(cap, base * 2^(n-1))``, minus up to
    ``jitter`` of it at random, so retries of a burst spread out instead of arriving together."""

    base: float = 2.0
    cap: float = 300.0
    jitter: float = 0.5

    def delay(
        self,
        attempt: int,
        retry_after: float | None = None,
        rand: Callable[[], float] = _JITTER.random,
    ) -> float:
        raw = min(self.cap, self.base * 2.0 ** min(max(0, attempt - 1), 60))
        delay = raw * (1.0 - self.jitter * rand())
        if retry_after is not None:
            delay = max(delay, min(retry_after, self.cap))
        return delay


@dataclass(frozen=True)
class WorkerConfig:
    concurrency: int = variables.WORKER_CONCURRENCY.default
    lease: float = variables.INBOX_LEASE.default  # renewed every lease/3 while a run is in flight
    max_attempts: int = variables.WORKER_MAX_ATTEMPTS.default
    poll: float = variables.WORKER_POLL.default
    unrouted_attempts: int = 3  # an event may beat its ledger row by a moment
    backoff: Backoff = field(default_factory=Backoff)
    waiting: waiting.WaitPolicy = field(default_factory=waiting.WaitPolicy)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> WorkerConfig:
        return cls(
            concurrency=variables.WORKER_CONCURRENCY.read(env),
            lease=variables.INBOX_LEASE.read(env),
            max_attempts=variables.WORKER_MAX_ATTEMPTS.read(env),
            poll=variables.WORKER_POLL.read(env),
            waiting=waiting.WaitPolicy.from_env(env),
        )


Status = Literal["done", "ignored", "failed", "dead"]


@dataclass(frozen=True)
class Outcome:
    status: Status
    note: str
    error: str | None = None
    retry_in: float | None = None
    key: str | None = None


def origin_of(d: Delivery) -> str:
    """Run history's origin: ``test`` for the API's trigger tests, ``webhook`` for the rest."""
    return "test" if d.event_type == TEST_EVENT else "webhook"


# -- the worker -------------------------------------------------------------------------------


class Worker:
    def __init__(
        self,
        *,
        inbox: Inbox,
        routes: Routes,
        runs: RunStore,
        executors: Executors,
        config: WorkerConfig | None = None,
        owner: str | None = None,
        clock: clock_mod.Clock | None = None,
    ) -> None:
        self.inbox = inbox
        self.clock = clock or inbox.clock  # retry times compare with the inbox's "now"
        self.routes = routes
        self.runs = runs
        self.executors = executors
        self.config = config or WorkerConfig()
        # host, pid, start time, boot id: what lets another worker prove this one gone
        self.owner = owner or liveness.current().name(f"{id(self):x}")
        # runs suspended on their platform, job runs included: polled from this loop
        self.waiting = waiting.Poller(runs, executors, policy=self.config.waiting, clock=self.clock)
        self._pump: pump.Pump | None = None

    # -- one delivery (synchronous; runs in a worker thread) -----------------------------------

    def process(self, d: Delivery) -> Outcome:
        """Handle one leased delivery and settle it in the inbox; never raises."""
        outcome = self.attempt(d)
        self.settle([(d, outcome)])
        return outcome

    def attempt(self, d: Delivery) -> Outcome:
        """Handle one leased delivery without settling it (the loop settles in batches)."""
        try:
            outcome = self.handle(d)
        except Exception as exc:  # a bug must not kill the worker; the lease brings it back
            log.exception("delivery %s: unexpected error", d.id)
            outcome = self._retry(d, f"{type(exc).__name__}: {exc}", None, "error")
        telemetry.inbox_processed(outcome.status)
        return outcome

    def settle(self, done: Sequence[tuple[Delivery, Outcome]]) -> None:
        """Record finished attempts in one transaction; never raises.

        Each run's end is already in the run history (recorded as it ended), so an outcome lost
        here (the database is unavailable, the process killed before the batch) is not a run
        lost nor run twice: the lease runs out, the delivery is claimed again, and the run
        history's success stops a second execution.
        """
        if not done:
            return
        now = clock_mod.epoch(self.clock)
        items = [
            Settlement(
                d.id, o.status, o.note, o.error, None if o.retry_in is None else now + o.retry_in
            )
            for d, o in done
        ]
        try:
            kept = self.inbox.settle_many(self.owner, items)
        except Exception:
            ids = ", ".join(d.id for d, _ in done)
            log.exception("deliveries %s: could not record their outcome; they run again", ids)
            return
        for (d, outcome), ok in zip(done, kept, strict=True):
            log.info(
                "delivery %s trigger=%s outcome=%s attempt=%d%s",
                d.id,
                outcome.key or d.trigger_key or d.remote_id or "-",
                outcome.status,
                d.attempts,
                "" if ok else " (lease lost: another worker owns it now)",
            )

    def reclaim_orphans(self) -> int:
        """Take back at once the deliveries leased by a worker whose process is provably gone.

        A worker killed mid-run leaves its deliveries ``processing``; waiting out the lease
        (60 s) delays each of them for nothing when its owner is known to be dead: on this
        machine, in this PID namespace, and its pid gone or reused (``state.liveness``). Owners
        elsewhere cannot be probed and keep their lease.
        """
        gone = sorted(o for o in self.inbox.lease_owners() if liveness.gone(o))
        if not gone:
            return 0
        taken = self.inbox.expire_leases(gone)
        if taken:
            log.warning(
                "inbox: took back %d delivery(ies) leased by %s: that process is gone, so they "
                "run now instead of after the %gs lease",
                taken,
                ", ".join(gone),
                self.config.lease,
            )
        return taken

    def handle(self, d: Delivery) -> Outcome:
        try:
            parsed = events.parse(d)
        except payloads.PayloadError as exc:
            return Outcome("dead", "the stored payload no longer parses", error=str(exc))
        envelope = parsed.composio
        if envelope is not None and envelope.is_lifecycle:
            return self._lifecycle(d, envelope)
        if envelope is not None and not envelope.is_message:
            return Outcome("ignored", f"event type {envelope.type} is not handled")
        route = self._route(d, envelope)
        if route is None:
            what = f"trigger id {envelope.trigger_id}" if envelope else f"key {d.trigger_key}"
            if d.attempts < self.config.unrouted_attempts:
                return self._retry(d, f"no applied trigger for {what} (yet)", None, "unrouted")
            return Outcome("ignored", f"ignored: no trigger applied by this operator has {what}")
        return self._run(d, route, parsed)

    def _route(self, d: Delivery, envelope: payloads.Normalized | None) -> events.Route | None:
        def find() -> events.Route | None:
            remote_id = envelope.trigger_id if envelope is not None else None
            return self.routes.find(d.source, remote_id=remote_id, key=d.trigger_key)

        self.routes.refresh()
        route = find()
        if route is None:
            self.routes.refresh(max_age=0.5)
            route = find()
        return route

    def _run(self, d: Delivery, route: events.Route, parsed: events.Parsed) -> Outcome:
        key, run_id, payload = route.key, d.run_key, parsed.payload
        prior = self.runs.succeeded(key, run_id)
        if prior is not None:  # the executor ran; only the inbox update was lost
            return Outcome("done", f"already ran (run {prior.id})", key=key)
        held = self.runs.waiting_for(key, run_id)
        if held is not None:  # suspended on its platform: the poller owns it, not a new attempt
            return Outcome("done", f"waiting (run {held.id}), polled until it ends", key=key)
        event = events.trigger_event(d, route, parsed).model_dump(mode="json")
        variables = events.variables(route.typed.action, payload)
        skip = None if route.enabled else "ignored (disabled)"
        if skip is None and not events.matches(route.typed.filter, payload):
            skip = "filter did not match"
        prepared: actions.Prepared | None = None
        if skip is None:
            try:
                prepared = actions.prepare_trigger(key, route.spec, payload)
            except TemplateError as exc:
                failed = events.TriggerResult(success=False, error=str(exc), variables=variables)
                self._record(d, key, event, failed, status="failed")
                return Outcome("dead", "dead: the template cannot render", error=str(exc), key=key)
        if prepared is None:
            result = events.TriggerResult(success=True, skipped=skip, variables=variables)
            self._record(d, key, event, result, status="skipped", reason=skip)
            return Outcome("ignored", str(skip), key=key)
        if d.attempts > 1:  # only a later attempt can find an earlier one cut short
            self.runs.abandon(key, run_id, before_attempt=d.attempts, reason=ABANDONED)
        row = self.runs.start(
            key=key,
            kind="trigger",
            run_id=run_id,
            attempt=d.attempts,
            origin=origin_of(d),
            action=prepared.kind,
            rendered=prepared.rendered,
            event=event,
        )
        context = {
            "run_key": run_id,
            "delivery_id": d.id,
            "key": key,
            "source": d.source,
            "trigger_id": route.remote_id,
            "attempt": d.attempts,
        }
        try:
            output = actions.execute(prepared, self.executors, context=context)
        except RunWaiting as exc:  # suspended on the platform: polled from here on
            made = waiting.call(
                workflow=prepared.workflow or "",
                input=prepared.input or {},
                context=context,
                variables=variables,
            )
            waiting.record(self.runs, row, exc, made, policy=self.config.waiting, clock=self.clock)
            return Outcome("done", f"waiting (run {row}): {exc}", key=key)
        except RunCancelled as exc:
            cancelled = events.TriggerResult(success=False, error=str(exc), variables=variables)
            self.runs.finish(
                row,
                status="cancelled",
                error=str(exc),
                trigger_result=cancelled.model_dump(mode="json"),
            )
            return Outcome("done", f"cancelled (run {row})", error=str(exc), key=key)
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"
            failed = events.TriggerResult(success=False, error=error, variables=variables)
            self.runs.finish(
                row,
                status="failed",
                error=str(exc),
                trigger_result=failed.model_dump(mode="json"),
            )
            if isinstance(exc, PermanentError | TemplateError):
                return Outcome("dead", "dead: permanent error", error=error, key=key)
            retry_after = exc.retry_after if isinstance(exc, RetryableError) else None
            return self._retry(d, error, retry_after, "executor", key)
        chat = prepared.kind == "chat"
        done = events.TriggerResult(
            success=True,
            agent_executed=chat,
            workflow_executed=not chat,
            agent_data={**output, "message": prepared.message} if chat else None,
            workflow_data=None if chat else {"workflow": prepared.workflow, "result": output},
            variables=variables,
        )
        self._finish_durably(row, output, done.model_dump(mode="json"))
        if parsed.composio is not None:
            refs = [f"trigger:{route.remote_id}"]
            if parsed.composio.connected_account_id:
                refs.append(f"account:{parsed.composio.connected_account_id}")
            self.inbox.clear_trigger_status(refs, older_than=event_time(d, parsed.composio))
        return Outcome("done", f"ran {prepared.kind} (run {row})", key=key)

    def _finish_durably(self, row: int, output: Any, result: dict[str, Any]) -> None:
        """Record a run's success, waiting out a database outage (up to half the lease).

        The executor has run; if its success is not recorded, the delivery comes back and the
        call is made again (with the same idempotency key, so the platform answers the first
        thread, but it is a second call). A restart of the database mid-burst did exactly that
        to a few deliveries; holding on to the result until the database is back avoids it.
        """
        deadline = self.clock.monotonic() + self.config.lease / 2
        warned = False
        while True:
            try:
                self.runs.finish(row, status="succeeded", result=output, trigger_result=result)
                return
            except StateError as exc:
                if self.clock.monotonic() >= deadline:
                    raise
                if not warned:
                    log.warning("run %d ran, but its success cannot be recorded yet: %s", row, exc)
                    warned = True
                self.clock.sleep(0.5)

    def _record(
        self,
        d: Delivery,
        key: str,
        event: dict[str, Any],
        result: events.TriggerResult,
        *,
        status: Literal["skipped", "failed"],
        reason: str | None = None,
    ) -> None:
        """A run row for an event that ran nothing (skipped, or a template that can't render)."""
        row = self.runs.start(
            key=key,
            kind="trigger",
            run_id=d.run_key,
            attempt=d.attempts,
            origin=origin_of(d),
            event=event,
        )
        self.runs.finish(
            row,
            status=status,
            reason=reason,
            error=result.error,
            trigger_result=result.model_dump(mode="json"),
        )

    def _retry(
        self, d: Delivery, error: str, retry_after: float | None, why: str, key: str | None = None
    ) -> Outcome:
        if d.attempts >= self.config.max_attempts:
            return Outcome(
                "dead", f"dead after {d.attempts} attempts ({why})", error=error, key=key
            )
        delay = self.config.backoff.delay(d.attempts, retry_after)
        return Outcome("failed", f"retry in {delay:.1f}s ({why})", error, delay, key)

    def _lifecycle(self, d: Delivery, n: payloads.Normalized) -> Outcome:
        at = event_time(d, n)
        if n.type == payloads.TRIGGER_DISABLED and n.trigger_id:
            ref, state = f"trigger:{n.trigger_id}", "disabled"
        elif n.type == payloads.ACCOUNT_EXPIRED and n.connected_account_id:
            ref, state = f"account:{n.connected_account_id}", "expired"
        else:
            return Outcome("ignored", f"{n.type} without the id it is about")
        reason = n.lifecycle_reason
        self.inbox.set_trigger_status(ref, state, reason, delivery_id=d.id, at=at)
        log.warning("lifecycle: %s %s (%s)", ref, state, reason)
        return Outcome("done", f"lifecycle: {ref} {state}")

    def drain(self) -> int:
        """Process everything due now, then poll the waiting runs that are due; return how
        many deliveries were handled (CLI, tests)."""
        handled = 0
        self.reclaim_orphans()
        with ThreadPoolExecutor(self.config.concurrency, thread_name_prefix="worker") as pool:
            while batch := self.inbox.claim(self.owner, self.config.concurrency, self.config.lease):
                self.settle(list(zip(batch, pool.map(self.attempt, batch), strict=True)))
                handled += len(batch)
        self.poll_waiting()
        return handled

    def poll_waiting(self) -> int:
        """Poll the waiting runs whose poll is due; never raises (the loop calls it)."""
        try:
            return self.waiting.poll()
        except Exception:
            log.exception("waiting runs: poll failed; trying again on the next round")
            return 0

    # -- the loop (asyncio: runtime/pump.py) ---------------------------------------------------

    def wake(self) -> None:
        """New work arrived; ignored while every slot is busy (a finishing run wakes us)."""
        if self._pump is not None:
            self._pump.wake()

    async def run(self) -> None:
        """Claim and run deliveries until cancelled.

        The loop runs in a thread of its own (runtime/pump.py), not on the server's event loop,
        so a burst of requests cannot starve the claims; this coroutine only owns its lifetime.
        """
        self._pump = pump.Pump(self)
        thread = ThreadPoolExecutor(1, thread_name_prefix="worker-loop")
        try:
            await asyncio.get_running_loop().run_in_executor(thread, self._pump.run_blocking)
        finally:
            self._pump.stop()
            thread.shutdown(wait=False)

    async def wait_idle(self, timeout: float) -> None:
        """Give in-flight runs up to ``timeout`` seconds to finish, settle them, and give back
        what was claimed and not started (shutdown)."""
        if self._pump is not None:
            await asyncio.to_thread(self._pump.finish, timeout)


def event_time(d: Delivery, n: payloads.Normalized) -> float:
    """When Composio says the event happened, else when it arrived here.

    Lifecycle status is set by one event and cleared by a later message, so both must be placed
    on one clock: Composio's, since it orders the events (a retried message sent before a
    disable must not clear it) and ours may be minutes off from it. Only a payload without a
    time (V1) falls back to the receipt time.
    """
    return n.timestamp.timestamp() if n.timestamp else d.received_at
