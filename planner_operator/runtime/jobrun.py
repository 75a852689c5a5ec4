"""Run one fire of a job: DST de-duplication, render, execute, record.

Every scheduler calls this: the Inngest function handler (``InngestJobHandler``) and, on the
embedded backend, the in-process scheduler. The slot a fire belongs to is the wall-clock time
in the job's timezone; Inngest may fire a fixed-time job twice for the one repeated wall time
of a fall-back night, and the job's ``dst`` policy decides whether the second fire runs.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import inngest

from planner_operator.core import clock as clock_mod
from planner_operator.core import scheduling, specs
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
        job = specs.JobSpec.from_dict(spec)
        at = instant.astimezone(ZoneInfo(job.timezone))
        wall = at.replace(tzinfo=None).isoformat(timespec="minutes")
        once = job.dst == "skip" or (job.dst == "vixie" and scheduling.is_fixed_time(job.schedule))
        return cls(at, wall, wall if once else f"{wall}+fold{at.fold}")


def duplicate_reason(fire: Fire, holder: str) -> str:
    return (
        f"DST repeat: slot {fire.wall} already ran as run {holder}; "
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
        self, runs: RunStore, executors: Executors, *, clock: clock_mod.Clock | None = None
    ) -> None:
        self.runs = runs
        self.executors = executors
        self.clock = clock or runs.clock

    def fire_now(self, spec: Mapping[str, Any]) -> Fire:
        """A fire at this moment (run-now: a person asking for one run)."""
        return Fire.of(spec, self.clock.now())

    def claim(self, key: str, fire: Fire, run_id: str) -> str | None:
        """None when this run may go ahead; otherwise records the skip and returns why."""
        holder = self.runs.claim_slot(key, fire.claim, run_id)
        if holder is None:
            return None
        reason = duplicate_reason(fire, holder)
        row = self.runs.start(key=key, kind="job", run_id=run_id, origin="dst", slot=fire.wall)
        self.runs.finish(row, status="skipped", reason=reason)
        return reason

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
        ``TemplateError`` here, before any run is recorded.
        """
        if claim_slot:
            skipped = self.claim(key, fire, run_id)
            if skipped is not None:
                return skipped
        prepared = actions.prepare_job(key, spec, slot=fire.at, run_id=run_id)
        row = self.runs.start(
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
        return Started(row, prepared, context)

    def execute(self, started: Started) -> Any:
        """Make the executor call of a started run and record how it ended (re-raises)."""
        try:
            result = actions.execute(started.prepared, self.executors, context=started.context)
        except Exception as exc:
            self.runs.finish(started.row, status="failed", error=str(exc))
            raise
        self.runs.finish(started.row, status="succeeded", result=result)
        return result


class InngestJobHandler:
    """The Inngest function body: the executor call is one durable ``ctx.step.run`` step."""

    def __init__(self, runner: JobRunner) -> None:
        self.runner = runner

    async def __call__(self, key: str, spec: Mapping[str, Any], ctx: inngest.Context) -> Any:
        ts = ctx.event.ts
        instant = datetime.fromtimestamp(ts / 1000, UTC) if ts else self.runner.clock.now()
        fire = Fire.of(spec, instant)
        runs = self.runner.runs
        skipped = await asyncio.to_thread(self.runner.claim, key, fire, ctx.run_id)
        if skipped is not None:
            return {"skipped": skipped}
        prepared = actions.prepare_job(key, spec, slot=fire.at, run_id=ctx.run_id)
        row = await asyncio.to_thread(
            lambda: runs.start(
                key=key,
                kind="job",
                run_id=ctx.run_id,
                attempt=ctx.attempt,
                origin="inngest",
                slot=fire.wall,
                action=prepared.kind,
                rendered=prepared.rendered,
            )
        )
        context = _context(key, fire, ctx.run_id)

        async def execute() -> Any:
            return await asyncio.to_thread(
                actions.execute, prepared, self.runner.executors, context=context
            )

        try:
            result = await ctx.step.run("execute", execute)
        except Exception as exc:  # SDK control flow is BaseException and passes through
            error = str(exc)
            await asyncio.to_thread(lambda: runs.finish(row, status="failed", error=error))
            raise
        await asyncio.to_thread(lambda: runs.finish(row, status="succeeded", result=result))
        return result


def _context(key: str, fire: Fire, run_id: str) -> dict[str, Any]:
    return {"run_key": f"{key}@{fire.claim}", "key": key, "slot": fire.wall, "run_id": run_id}
