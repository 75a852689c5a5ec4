"""The webhook inbox's backlog, as ``status``, ``/api/status``, the dashboard and ``/metrics``
show it: one function, so they cannot disagree.

Two ages answer two questions. ``backlog_age_seconds`` is how old the oldest unfinished delivery
is: how late events are being acted on (an ingest burst faster than the workers drain shows up
here first). ``oldest_due_age_seconds`` is how long the longest-waiting delivery has been *due*
with no worker taking it: it grows only when no worker runs, or all are stuck or too few. A
delivery waiting for its retry time is pending but not due.
"""

from __future__ import annotations

from planner_operator.core.settings import Settings
from planner_operator.read.runviews import ReadModel
from planner_operator.state import open as state_open

PENDING = ("received", "processing", "failed")
STATUSES = (*PENDING, "done", "ignored", "dead")


class InboxView(ReadModel):
    """Deliveries by status and how far behind the workers are."""

    counts: dict[str, int]
    pending: int  # received, processing, or failed and waiting for a retry
    backlog_age_seconds: float  # age of the oldest pending delivery (0 when none)
    due: int  # due now and not held by a live lease
    oldest_due_age_seconds: float  # how long the longest-waiting due one has been due (0: none)


def inbox_view(settings: Settings, *, now: float) -> InboxView | None:
    """The inbox's backlog at ``now`` (Unix seconds); None before the inbox exists."""
    if not state_open.exists(settings, "inbox"):
        return None
    counts = dict.fromkeys(STATUSES, 0)
    with state_open.inbox(settings) as box:
        counts.update(box.counts())
        oldest = box.oldest_pending()
        due = box.backlog(now=now)
    return InboxView(
        counts=counts,
        pending=sum(counts[s] for s in PENDING),
        backlog_age_seconds=round(max(0.0, now - oldest), 3) if oldest is not None else 0.0,
        due=due.count,
        oldest_due_age_seconds=round(due.age, 3),
    )


def describe(view: InboxView | None) -> str | None:
    """One line for the CLI and the dashboard; None before any delivery."""
    if view is None or not any(view.counts.values()):
        return None
    if not view.pending:
        waiting = "no backlog"
    else:
        waiting = (
            f"{view.pending} pending, the oldest {view.backlog_age_seconds:.1f} s old"
            f"; {view.due} due"
        )
        if view.due:
            waiting += f", waiting up to {view.oldest_due_age_seconds:.1f} s for a worker"
    done = ", ".join(f"{n} {status}" for status, n in view.counts.items() if n)
    return f"Webhook inbox: {waiting} ({done})"
