"""Runs their platform suspended (Mastra ``suspend()``): recorded ``waiting``, polled to the end.

A Mastra workflow that suspends waits for a person or another system to resume it: minutes or
days. Retrying the call would burn the delivery's attempts (dead after eight) or, for a job,
end it "unknown outcome" after ``PLANNER_MASTRA_WAIT``; neither says what is going on. So the
executor raises :class:`~planner_operator.errors.RunWaiting`, the runner that made the call
(the inbox worker, the job runner) hands the run over here, and the run's row says so:

- status ``waiting``; ``result`` holds what the platform says is awaited (``awaiting``: the
  suspended steps and their ``suspendPayload``), since when, the next poll, and the call to
  repeat (workflow, input, context with the run's idempotency key). Everything a poll needs is
  in run history, so polling resumes after an operator restart, in any replica.
- a poll repeats the call: the executor finds the same remote run by the key (no second run)
  and answers its outcome. ``success`` settles the run succeeded, ``canceled`` cancelled, a
  permanent error failed; still suspended, or a transient error (the platform is down), waits
  on. No attempt is counted: waiting is not failing.
- policy (:class:`WaitPolicy`): the first poll 5 s after the run suspended, then half the time
  waited so far (a run suspended for an hour is looked at every 30 min at most), capped at
  ``PLANNER_WAITING_POLL_CAP`` (300 s); after ``PLANNER_WAITING_MAX`` (7 days) the run is
  failed, saying how long it waited and how to resume it.

Two replicas may poll one run at once: the call is idempotent and the run settles once
(``RunStore.settle(was="waiting")``).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from planner_operator import errors
from planner_operator.core import clock as clock_mod
from planner_operator.core import times, variables
from planner_operator.core.records import Run
from planner_operator.runtime import events
from planner_operator.runtime.executors.base import Executors
from planner_operator.state.runs import RunStore, Status

log = logging.getLogger("planner_operator.waiting")
FIRST_POLL = 5.0  # seconds after a run suspends


@dataclass(frozen=True)
class WaitPolicy:
    cap: float = variables.WAITING_POLL_CAP.default
    max_wait: float = variables.WAITING_MAX.default
    first: float = FIRST_POLL

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> WaitPolicy:
        return cls(
            cap=variables.WAITING_POLL_CAP.read(env), max_wait=variables.WAITING_MAX.read(env)
        )

    def delay(self, waited: float) -> float:
        """Seconds to the next poll of a run that has waited ``waited`` seconds so far."""
        return min(self.cap, max(self.first, waited / 2))


def call(
    *, workflow: str, input: Mapping[str, Any], context: Mapping[str, Any], variables: Any = None
) -> dict[str, Any]:
    """The executor call a poll repeats, as run history keeps it (JSON)."""
    out: dict[str, Any] = {"workflow": workflow, "input": dict(input), "context": dict(context)}
    if variables is not None:
        out["variables"] = variables
    return out


def record(
    runs: RunStore,
    row: int,
    exc: errors.RunWaiting,
    made: Mapping[str, Any],
    *,
    policy: WaitPolicy,
    clock: clock_mod.Clock,
    note: str | None = None,
) -> dict[str, Any]:
    """Record a run as waiting (or, past the policy's maximum, failed); returns its result."""
    now = clock.now()
    prior = runs.get(row)
    state = prior.result if prior is not None and prior.status == "waiting" else None
    since = str(state["waiting_since"]) if isinstance(state, Mapping) else times.now(clock)
    polls = int(state.get("polls", 0)) + 1 if isinstance(state, Mapping) else 0
    waited = (now - times.parse(since)).total_seconds()
    result: dict[str, Any] = {
        "awaiting": exc.awaiting,
        "waiting_since": since,
        "next_poll_at": times.stored(now + timedelta(seconds=policy.delay(waited))),
        "polls": polls,
        "call": dict(made),
    }
    if waited >= policy.max_wait:
        error = (
            f"{exc} — gave up after waiting {_span(waited)} (PLANNER_WAITING_MAX); the "
            "suspended run is still in its platform: resume or cancel it there"
        )
        _end(runs, row, prior, "failed", result, error, made)
        return result
    runs.wait(row, result=result, note=note or str(exc))
    return result


class Poller:
    """Polls the waiting runs whose next poll is due (the worker's loop, ``drain``, tests)."""

    def __init__(
        self,
        runs: RunStore,
        executors: Executors,
        *,
        policy: WaitPolicy | None = None,
        clock: clock_mod.Clock | None = None,
    ) -> None:
        self.runs = runs
        self.executors = executors
        self.policy = policy or WaitPolicy()
        self.clock = clock or runs.clock

    def poll(self, *, due_only: bool = True, page: int = 200) -> int:
        """Poll waiting runs (the due ones, oldest first); returns how many were polled.

        Every waiting run is read, ``page`` rows at a time (the status index keeps that
        cheap): a newest-first page alone would starve the oldest runs once there are many.
        """
        now = times.now(self.clock)
        found: list[Run] = []
        before: int | None = None
        while True:
            rows = self.runs.list(status="waiting", limit=page, before_id=before)
            found += rows
            if len(rows) < page:
                break
            before = rows[-1].id
        polled = 0
        for run in reversed(found):
            state = run.result if isinstance(run.result, Mapping) else {}
            if due_only and str(state.get("next_poll_at") or "") > now:
                continue
            self.poll_one(run)
            polled += 1
        return polled

    def poll_one(self, run: Run) -> str:
        """Repeat a waiting run's call once; returns the run's status after it."""
        state = run.result if isinstance(run.result, Mapping) else {}
        made = state.get("call")
        if not isinstance(made, Mapping):
            _end(self.runs, run.id, run, "failed", None, "a waiting run without its call", {})
            return "failed"
        try:
            output = self.executors.workflow.run(
                workflow=str(made["workflow"]), input=made["input"], context=made["context"]
            )
        except errors.RunWaiting as exc:
            record(self.runs, run.id, exc, made, policy=self.policy, clock=self.clock)
            return self._status(run.id)
        except errors.RunCancelled as exc:
            _end(self.runs, run.id, run, "cancelled", state.get("awaiting"), str(exc), made)
            return "cancelled"
        except Exception as exc:
            if not errors.retryable(exc):
                _end(self.runs, run.id, run, "failed", None, str(exc), made)
                return "failed"
            log.warning("waiting run %d: poll failed, polling on: %s", run.id, exc)
            again = errors.RunWaiting(str(exc), awaiting=state.get("awaiting"))
            note = f"poll failed, polling on: {exc}"
            record(self.runs, run.id, again, made, policy=self.policy, clock=self.clock, note=note)
            return self._status(run.id)
        _end(self.runs, run.id, run, "succeeded", output, None, made)
        return "succeeded"

    def _status(self, row: int) -> str:
        run = self.runs.get(row)
        return run.status if run is not None else "gone"


def _end(
    runs: RunStore,
    row: int,
    run: Run | None,
    status: Status,
    result: Any,
    error: str | None,
    made: Mapping[str, Any],
) -> None:
    """Settle a waiting run; a trigger run gets its TriggerResult as the worker writes it."""
    trigger_result = None
    if run is not None and run.kind == "trigger":
        ok = status == "succeeded"
        trigger_result = events.TriggerResult(
            success=ok,
            error=None if ok else error,
            workflow_executed=ok,
            workflow_data={"workflow": made.get("workflow"), "result": result} if ok else None,
            variables=made.get("variables") or {},
        ).model_dump(mode="json")
    was: Status = "waiting" if run is not None and run.status == "waiting" else "running"
    runs.settle(
        row, status=status, result=result, error=error, trigger_result=trigger_result, was=was
    )


def _span(seconds: float) -> str:
    if seconds >= 86400:
        return f"{seconds / 86400:.1f} days"
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds:.0f} s"
