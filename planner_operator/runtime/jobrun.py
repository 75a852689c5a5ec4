"""Run one fire of a job: DST de-duplication, render, execute, record.

Every scheduler goes through :class:`JobRunner`: the embedded scheduler and run-now call it
directly, and Inngest calls it through :class:`DurableJobHandler`, which only adds what a
durable run needs (one run row across retries, the executor call as a memoised step). The SDK
itself stays in ``backends.inngest.sdk``, which hands the handler a :class:`DurableCall`.

The slot a fire belongs to is the wall-clock time in the job's timezone. A scheduler may fire a
fixed-time job twice for the one repeated wall time of a fall-back night; the job's ``dst``
policy decides whether the second *scheduled* fire runs. A slot is claimed by the scheduled
instant that fired it, so a retry, a rerun or a replay of that fire (Inngest reuses the
original event, with a new run id) runs, and a manual run or an invocation that is no
scheduled fire never claims anything.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from planner_operator import errors
from planner_operator.core import clock as clock_mod
from planner_operator.core import scheduling, specs
from planner_operator.runtime import waiting
from planner_operator.runtime.executors import actions
from planner_operator.runtime.executors.base import Executors
from planner_operator.state.runs import RunStore


@dataclass(frozen=True)
class Fire:
    """Which slot a fire stands for, and the key it claims."""

    at: datetime  # aware, in the job's timezone
    wall: str  # naive wall-clock slot, minutes
    claim: str  # what is unique per fire under the job's DST policy

    @classmethod
    def of(cls, spec: Mapping[str, Any], instant: datetime) -> Fire:
        return cls.of_typed(specs.JobSpec.from_dict(spec), instant)

    @classmethod
    def of_typed(cls, job: specs.JobSpec, instant: datetime) -> Fire:
        """:meth:`of` for a spec already read (the scheduler keeps its jobs' typed specs)."""
        at = instant.astimezone(ZoneInfo(job.timezone))
        wall = at.replace(tzinfo=None).isoformat(timespec="minutes")
        once = job.dst == "skip" or (job.dst == "vixie" and scheduling.is_fixed_time(job.schedule))
        return cls(at, wall, wall if once else f"{wall}+fold{at.fold}")

    @property
    def instant(self) -> str:
        """The scheduled instant in UTC, as Inngest names a cron event (RFC 3339, seconds)."""
        return self.at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def duplicate_reason(fire: Fire, holder_run: str, holder_fire: str | None) -> str:
    first = f" at {holder_fire}" if holder_fire else ""
    return (
        f"DST repeat: slot {fire.wall} already fired{first} as run {holder_run}; "
        "the job's dst policy fires a repeated wall-clock time once"
    )


@dataclass(frozen=True)
class Started:
    """A run recorded as ``running``, with the executor call it still has to make."""

    row: int  # run history row id
    prepared: actions.Prepared
    context: dict[str, Any]


class JobRunner:
    """Synchronous core shared by every scheduler.

    ``clock`` (default: the run store's) is "now" for a fire that names no time of its own;
    the embedded scheduler and run-now read the same one, so a pinned clock pins every run.
    """

    def __init__(
        self,
        runs: RunStore,
        executors: Executors,
        *,
        clock: clock_mod.Clock | None = None,
        policy: waiting.WaitPolicy | None = None,
    ) -> None:
        self.runs = runs
        self.executors = executors
        self.clock = clock or runs.clock
        self.policy = policy or waiting.WaitPolicy()

    def fire_now(self, spec: Mapping[str, Any]) -> Fire:
        """A fire at this moment (run-now: a person asking for one run)."""
        return Fire.of(spec, self.clock.now())

    def claim(self, key: str, fire: Fire, run_id: str) -> str | None:
        """None when this run may go ahead; otherwise records the skip and returns why.

        Another run of the *same* scheduled fire (a retry, a rerun, a replay) goes ahead; only a
        different scheduled fire for a slot already claimed is a repeat.
        """
        return self._claim(key, fire, run_id)[0]

    def _claim(self, key: str, fire: Fire, run_id: str) -> tuple[str | None, bool]:
        """(skip reason, whether this is a rerun of a fire another run id claimed)."""
        holder_run, holder_fire = self.runs.claim_slot(key, fire.claim, run_id, fire=fire.instant)
        if holder_run == run_id:
            return None, False
        if holder_fire == fire.instant:
            return None, True
        reason = duplicate_reason(fire, holder_run, holder_fire)
        row = self.runs.start(key=key, kind="job", run_id=run_id, origin="dst", slot=fire.wall)
        self.runs.finish(row, status="skipped", reason=reason)
        return reason, False

    def run(
        self,
        key: str,
        spec: Mapping[str, Any],
        fire: Fire,
        *,
        run_id: str,
        origin: str,
        claim_slot: bool = True,
    ) -> Any:
        """Claim, render, execute and record (the embedded scheduler; run-now skips the claim)."""
        started = self.start(key, spec, fire, run_id=run_id, origin=origin, claim_slot=claim_slot)
        if isinstance(started, str):
            return {"skipped": started}
        return self.execute(started)

    def start(
        self,
        key: str,
        spec: Mapping[str, Any],
        fire: Fire,
        *,
        run_id: str,
        origin: str,
        claim_slot: bool = True,
    ) -> Started | str:
        """Claim and render, and record the run as started; the skip reason if the slot was taken.

        Split from :meth:`execute` so ``POST /api/jobs/.../run`` can answer with the started run
        while the executor call goes on in the background. A template that cannot render raises
        ``TemplateError`` here, before any run is recorded. Starting a run id that already has a
        row resumes that row (a durable run calls this once per attempt).
        """
        rerun = False
        if claim_slot:
            skipped, rerun = self._claim(key, fire, run_id)
            if skipped is not None:
                return skipped
        prepared = actions.prepare_job(key, spec, slot=fire.at, run_id=run_id)
        row = self.runs.resume(
            key=key,
            kind="job",
            run_id=run_id,
            origin=origin,
            slot=fire.wall,
            action=prepared.kind,
            rendered=prepared.rendered,
        )
        context = _context(key, fire, run_id)
        if not claim_slot:  # a manual run is its own event, never the slot's scheduled fire
            context["run_key"] = f"{key}@manual:{run_id}"
        elif rerun:  # asked for again (Inngest Rerun/Replay): executors must not dedupe it away
            context["run_key"] = f"{key}@{fire.claim}:rerun:{run_id}"
        return Started(row, prepared, context)

    def execute(self, started: Started, *, attempt: int = 0, final: bool = True) -> Any:
        """Make the executor call of a started run and record how it ended (re-raises).

        ``final`` False (a durable run with retries left) keeps the run ``running`` after a
        retryable failure, with the error and the attempt on its row; a permanent error, or a
        failure on the last attempt, ends it. A run its platform suspended is recorded
        ``waiting`` and handed to ``runtime.waiting`` (which polls it to its end): the answer
        is ``{"waiting": ...}``, and no error, so no scheduler retries it.
        """
        if attempt:
            self.runs.retrying(started.row, attempt=attempt)
        try:
            result = actions.execute(started.prepared, self.executors, context=started.context)
        except errors.RunWaiting as exc:
            prepared = started.prepared
            made = waiting.call(
                workflow=prepared.workflow or "",
                input=prepared.input or {},
                context=started.context,
            )
            state = waiting.record(
                self.runs, started.row, exc, made, policy=self.policy, clock=self.clock
            )
            return {"waiting": state["awaiting"], "run": started.row}
        except errors.RunCancelled as exc:
            self.runs.finish(started.row, status="cancelled", error=str(exc))
            raise
        except Exception as exc:
            if final or not errors.retryable(exc):
                self.runs.finish(started.row, status="failed", error=str(exc))
            else:
                note = f"attempt {attempt + 1} failed, retrying: {exc}"
                self.runs.retrying(started.row, attempt=attempt, error=note)
            raise
        self.runs.finish(started.row, status="succeeded", result=result)
        return result


class DurableCall(Protocol):
    """One call of a durable run, as ``backends.inngest.sdk`` presents an Inngest invocation.

    Inngest calls the function once per step and per retry; ``step`` runs its function at most
    once per run (its value or error is memoised) and raises SDK control flow, which is not an
    ``Exception``, while it plans.
    """

    @property
    def run_id(self) -> str: ...

    @property
    def attempt(self) -> int: ...  # 0-based

    @property
    def final(self) -> bool: ...  # no retry follows a failure of this attempt

    @property
    def scheduled_at(self) -> datetime | None: ...  # the cron slot; None: not a scheduled fire

    @property
    def sent_at(self) -> datetime | None: ...  # when the triggering event was sent

    async def step(self, name: str, fn: Callable[[], Awaitable[Any]]) -> Any: ...


class DurableJobHandler:
    """The body of a job's Inngest function: :class:`JobRunner`, with the call as one step."""

    def __init__(self, runner: JobRunner) -> None:
        self.runner = runner

    async def __call__(self, key: str, spec: Mapping[str, Any], call: DurableCall) -> Any:
        runner = self.runner
        scheduled = call.scheduled_at is not None
        instant = call.scheduled_at or call.sent_at or runner.clock.now()
        fire = Fire.of(spec, instant)
        try:
            started = await asyncio.to_thread(
                runner.start,
                key,
                spec,
                fire,
                run_id=call.run_id,
                origin="inngest",
                claim_slot=scheduled,
            )
        except errors.PlannerError as exc:  # a template that cannot render: a failed run
            await asyncio.to_thread(self._failed_to_start, key, fire, call.run_id, exc)
            raise
        if isinstance(started, str):
            return {"skipped": started}

        async def execute() -> Any:
            return await asyncio.to_thread(
                runner.execute, started, attempt=call.attempt, final=call.final
            )

        try:
            result = await call.step("execute", execute)
        except Exception as exc:  # failed for good; SDK control flow is no Exception
            error = str(exc)
            await asyncio.to_thread(
                lambda: runner.runs.settle(started.row, status="failed", error=error)
            )
            raise
        await asyncio.to_thread(
            lambda: runner.runs.settle(started.row, status="succeeded", result=result)
        )
        return result

    def _failed_to_start(self, key: str, fire: Fire, run_id: str, exc: Exception) -> None:
        runs = self.runner.runs
        row = runs.resume(key=key, kind="job", run_id=run_id, origin="inngest", slot=fire.wall)
        runs.settle(row, status="failed", error=str(exc))


def _context(key: str, fire: Fire, run_id: str) -> dict[str, Any]:
    return {"run_key": f"{key}@{fire.claim}", "key": key, "slot": fire.wall, "run_id": run_id}
