"""The embedded backend's ``version``: it moves with every write, even at the same instant.

The scheduler reloads its jobs and the read side re-lists the backends only when it moves, so
a write it missed would go unseen until the next one. It used to be (row count, newest
``updated_at``): a state change at the same millisecond as the newest write (or under a
manual clock) left both alone.
"""

from __future__ import annotations

from pathlib import Path

from planner_operator.backends.local import LocalScheduleBackend, LocalTriggerBackend
from planner_operator.core.clock import ManualClock
from tests.server.api.status_state import MONDAY

JOB = {"schedule": "0 9 * * *", "timezone": "UTC", "action": {"chat": {"template": "hi"}}}


def test_every_write_moves_the_version_of_its_own_table(tmp_path: Path) -> None:
    clock = ManualClock(MONDAY)  # never moves: timestamps cannot tell the writes apart
    where = tmp_path / "state.db"
    with LocalScheduleBackend(where, clock=clock) as jobs, LocalTriggerBackend(where) as triggers:
        marks = [jobs.version()]
        made = jobs.create("a/jobs/one", JOB)
        marks.append(jobs.version())
        jobs.set_state(made.remote_id, "paused")
        marks.append(jobs.version())
        jobs.set_state(made.remote_id, "active")
        marks.append(jobs.version())
        jobs.update(made.remote_id, "a/jobs/one", {**JOB, "schedule": "0 10 * * *"})
        marks.append(jobs.version())
        before = triggers.version()
        jobs.delete(made.remote_id)
        marks.append(jobs.version())
        assert len(set(marks)) == len(marks)
        assert triggers.version() == before  # the other table's writers do not move it
