"""What the status API and the dashboard show: one read model, two renderings.

The JSON API (``api/status.py``) and the server-rendered dashboard (``dashboard/``) both call
these functions, so a page and its API answer can never disagree. Everything is read from the
operator's own state (ledger, run history, inbox, scheduler counters) plus a short-lived cached
read of the backends (``Snapshot``), because a dashboard refresh must not spend the Composio
request budget.

Times are ISO 8601 with their offset: in the job's own timezone for schedules and slots, in UTC
for events the operator recorded (run start/finish, deliveries).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

State = Literal["active", "paused", "error", "drifted"]
RunStatus = Literal["running", "succeeded", "failed", "skipped"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RunSummary(_Model):
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
    started_at: str
    finished_at: str | None
    duration_ms: float | None


class RunDetail(RunSummary):
    """One run, whole: what it sent, what came back, and the event that caused it."""

    rendered: str | None = Field(description="Rendered chat message or workflow input (JSON).")
    result: Any = None
    error: str | None = None
    event: Any = Field(default=None, description="TriggerEvent (trigger runs).")
    trigger_result: Any = Field(default=None, description="TriggerResult (trigger runs).")


class RunPage(_Model):
    items: list[RunSummary]
    next_before: int | None = Field(
        description="Pass as `before` for the next (older) page; null on the last page."
    )


class NextRun(_Model):
    at: str = Field(description="Fire time in the job's timezone, with offset.")
    utc: str
    dst_note: str | None = Field(description="Set when DST moved or dropped this slot.")


class JobView(_Model):
    key: str
    agent: str
    name: str
    description: str | None
    schedule: str
    schedule_text: str = Field(description="The schedule in words.")
    timezone: str
    state: State
    detail: str = Field(description="Why the state is what it is (empty when active).")
    next_runs: list[NextRun] = Field(description="Next 5 fire times (none when paused).")
    last_run: RunSummary | None
    fires: int
    missed: int
    overlap_skipped: int
    action: str = Field(description="chat | workflow")
    action_summary: str = Field(description="Template or workflow id.")
    backend: str
    remote_id: str
    revision: str
    file: str = Field(description="The agent file that declares it (edit this in git).")


class LastEvent(_Model):
    delivery_id: str
    received_at: str
    status: str = Field(description="Inbox status: received, done, ignored, failed, dead...")
    outcome: str | None


class TriggerView(_Model):
    key: str
    agent: str
    name: str
    description: str | None
    source: str = Field(description="composio | webhook")
    toolkit: str | None
    event: str | None
    state: State
    detail: str
    disabled_reason: str | None = Field(description="Why Composio disabled it, when it did.")
    filter: Any = None
    action: str
    action_summary: str
    backend: str
    remote_id: str
    revision: str
    file: str
    last_event: LastEvent | None
    last_run: RunSummary | None


class AgentView(_Model):
    id: str
    name: str
    description: str | None
    file: str
    timezone: str | None
    jobs: int
    triggers: int
    states: dict[str, int] = Field(description="Count of jobs and triggers per state.")


class ReconcileView(_Model):
    at: str | None
    revision: str | None
    counts: dict[str, int]
    blocked: int
    load_errors: list[str]
    failures: list[str]
    last_applied_revision: str | None
    watch_last_cycle: dict[str, Any] | None
    watch_last_error: dict[str, Any] | None
