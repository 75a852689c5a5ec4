"""Run history rows as the status API, the dashboard and the operations answer them.

Kept apart from ``views`` (which re-exports everything here) because run-now and trigger tests
answer with these too, without needing the rest of the read model.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal, cast

from pydantic import BaseModel, ConfigDict, Field

from planner_operator.core.records import Run

RunStatus = Literal["running", "waiting", "succeeded", "failed", "cancelled", "skipped"]
TEST_PREFIX = "test_"  # delivery ids of `POST /api/triggers/.../test` events (origin "test")
SUMMARY_CHARS = 160


class ReadModel(BaseModel):
    """Base of every read-model type: frozen, and no field the schema does not declare."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class RunSummary(ReadModel):
    """One run as listed: enough to tell what fired, when, and how it ended."""

    id: int = Field(description="Run history row id (the `{id}` of /api/runs/{id}).")
    key: str = Field(description="<agent>/jobs/<name> or <agent>/triggers/<name>.")
    kind: str = Field(description="job | trigger | workflow")
    agent: str
    name: str
    run_id: str = Field(description="Scheduler/Inngest run id, or the delivery id.")
    attempt: int
    origin: str = Field(description="scheduler | inngest | manual | webhook | test | dst")
    slot: str | None = Field(description="Wall-clock slot in the job's timezone (jobs).")
    status: RunStatus
    reason: str | None
    action: str | None = Field(description="chat | workflow")
    summary: str | None = Field(description="The rendered message or workflow input, shortened.")
    error: str | None = Field(default=None, description="Why the run failed (failed runs).")
    started_at: str
    finished_at: str | None
    duration_ms: float | None


class RunDetail(RunSummary):
    """One run, whole: what it sent, what came back, and the event that caused it."""

    rendered: str | None = Field(description="Rendered chat message or workflow input (JSON).")
    result: Any = None
    event: Any = Field(default=None, description="TriggerEvent (trigger runs).")
    trigger_result: Any = Field(default=None, description="TriggerResult (trigger runs).")


class RunPage(ReadModel):
    items: list[RunSummary]
    next_before: int | None = Field(
        description="Pass as `before` for the next (older) page; null on the last page."
    )


def summary(run: Run) -> RunSummary:
    """A run history row as listed (also what run-now and trigger tests answer with)."""
    return RunSummary(**_summary_fields(run))


def detail(run: Run) -> RunDetail:
    return RunDetail(
        **_summary_fields(run),
        rendered=run.rendered,
        result=run.result,
        event=run.event,
        trigger_result=run.trigger_result,
    )


def _summary_fields(run: Run) -> dict[str, Any]:
    parts = run.key.split("/")
    agent, name = (parts[0], parts[-1]) if len(parts) == 3 else ("", parts[-1])
    text = " ".join((run.rendered or "").split())
    if len(text) > SUMMARY_CHARS:
        text = text[: SUMMARY_CHARS - 1] + "…"
    origin = run.origin
    return {
        "id": run.id,
        "key": run.key,
        "kind": run.kind,
        "agent": agent,
        "name": name,
        "run_id": run.run_id,
        "attempt": run.attempt,
        "origin": origin,
        "slot": run.slot,
        "status": cast(RunStatus, run.status),
        "reason": run.reason,
        "action": run.action,
        "summary": text or None,
        "error": run.error,
        "started_at": run.started_at,
        "finished_at": run.finished_at,
        "duration_ms": _duration(run.started_at, run.finished_at),
    }


def _duration(start: str, end: str | None) -> float | None:
    if end is None:
        return None
    try:
        delta = datetime.fromisoformat(end) - datetime.fromisoformat(start)
    except ValueError:
        return None
    return round(delta.total_seconds() * 1000, 1)
