"""Applying plans against the real local backend with injected faults (no mocks)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from planner_operator.backends.base import list_all
from planner_operator.backends.local import LocalFaults, LocalScheduleBackend, LocalTriggerBackend
from planner_operator.config.desired import DesiredResource
from planner_operator.core.clock import ManualClock
from planner_operator.errors import NotFound, PermanentError, RetryableError, UnknownOutcome
from planner_operator.reconcile.apply import Applier, RetryPolicy
from planner_operator.reconcile.plan import Op, Plan, plan
from planner_operator.state.ledger import Ledger
from tests.support.builders import desired, desired_map, job_spec, trigger_spec


class World:
    def __init__(self, directory: Path) -> None:
        self.job_faults = LocalFaults()
        self.trigger_faults = LocalFaults()
        self.jobs = LocalScheduleBackend(directory / "state.db", faults=self.job_faults)
        self.triggers = LocalTriggerBackend(directory / "state.db", faults=self.trigger_faults)
        self.ledger = Ledger(directory / "ledger.db")
        self.clock = ManualClock()  # retry waits pass at once and are recorded

    def plan(self, items: list[DesiredResource]) -> Plan:
        actual = [*list_all(self.jobs), *list_all(self.triggers)]
        return plan(
            desired_map(items), actual, self.ledger.entries(), intents=self.ledger.intents()
        )

    def applier(self, attempts: int = 4) -> Applier:
        return Applier(
            {"job": self.jobs, "trigger": self.triggers},
            self.ledger,
            revision="rev1",
            retry=RetryPolicy(attempts=attempts, base_delay=0.01),
            clock=self.clock,
        )

    def close(self) -> None:
        self.jobs.close()
        self.triggers.close()
        self.ledger.close()


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    w = World(tmp_path)
    yield w
    w.close()


JOBS = [desired(f"agent-a/jobs/j{i}", job_spec()) for i in range(3)]


def test_apply_records_each_success_in_ledger(world: World) -> None:
    result = world.applier().apply(world.plan(JOBS))
    assert len(result.succeeded) == 3 and not result.failed
    entries = {e.key: e for e in world.ledger.entries()}
    assert set(entries) == {d.key for d in JOBS}
    assert all(e.revision == "rev1" and e.backend == "local" for e in entries.values())
    assert not world.plan(JOBS).has_changes


def test_rate_limit_honours_retry_after_then_succeeds(world: World) -> None:
    world.job_faults.fail_next = [RetryableError("429", status=429, retry_after=7.0)]
    result = world.applier().apply(world.plan(JOBS[:1]))
    assert not result.failed
    assert world.clock.slept == [7.0]  # exactly the server's Retry-After, before the next request


def test_server_errors_retry_with_backoff_then_give_up(world: World) -> None:
    world.job_faults.fail_next = [RetryableError("500", status=500) for _ in range(3)]
    result = world.applier(attempts=3).apply(world.plan(JOBS[:2]))
    # first item exhausts its 3 attempts; the second, independent, still applies
    assert [i.ok for i in result.items] == [False, True]
    assert len(world.clock.slept) == 2
    assert "500" in (result.items[0].error or "")
    assert [e.key for e in world.ledger.entries()] == [JOBS[1].key]


def test_permanent_error_is_not_retried_and_apply_continues(world: World) -> None:
    world.job_faults.fail_next = [PermanentError("refused", status=400)]
    result = world.applier().apply(world.plan(JOBS))
    assert [i.ok for i in result.items] == [False, True, True]
    assert world.clock.slept == []
    again = world.applier().apply(world.plan(JOBS))  # the re-run converges
    assert [i.change.key for i in again.items] == [JOBS[0].key]
    assert not world.plan(JOBS).has_changes


def test_commit_then_timeout_does_not_duplicate(world: World) -> None:
    world.job_faults.commit_then_fail = True
    result = world.applier().apply(world.plan(JOBS[:1]))
    assert not result.failed  # retried after the unknown outcome: idempotent create
    assert len(list(list_all(world.jobs))) == 1
    assert len(world.ledger.entries()) == 1


def test_unknown_outcome_exhausted_then_rerun_converges_without_duplicates(world: World) -> None:
    world.job_faults.commit_then_fail = True
    result = world.applier(attempts=1).apply(world.plan(JOBS[:1]))
    assert result.failed  # the write landed but the applier could not know
    assert world.ledger.entries() == []
    rerun = world.plan(JOBS[:1])
    assert [c.op for c in rerun.changes] == [Op.CREATE]
    assert rerun.changes[0].remote is not None  # found by key: taken over, not duplicated
    world.applier().apply(rerun)
    assert len(list(list_all(world.jobs))) == 1
    assert not world.plan(JOBS[:1]).has_changes


def test_replace_creates_new_then_deletes_old(world: World) -> None:
    old = desired("agent-a/triggers/mail", trigger_spec())
    world.applier().apply(world.plan([old]))
    [before] = list(list_all(world.triggers))
    new = desired("agent-a/triggers/mail", trigger_spec({"labelIds": "SPAM"}))
    p = world.plan([new])
    assert [c.op for c in p.changes] == [Op.REPLACE]
    world.applier().apply(p)
    [after] = list(list_all(world.triggers))
    assert after.remote_id != before.remote_id
    assert after.spec["config"] == {"labelIds": "SPAM"}
    assert [(e.remote_id, e.retired) for e in world.ledger.entries()] == [(after.remote_id, False)]


class FailingDeletes(LocalFaults):
    """Every delete fails with 503: the window between "create new" and "delete old"."""

    def before_write(self, operation: str, target: str) -> None:
        super().before_write(operation, target)
        if operation == "delete":
            raise RetryableError("503 unavailable", status=503)


def test_replace_interrupted_before_old_delete_keeps_old_owned(tmp_path: Path) -> None:
    world = World(tmp_path)
    try:
        old = desired("agent-a/triggers/mail", trigger_spec())
        world.applier().apply(world.plan([old]))
        new = desired("agent-a/triggers/mail", trigger_spec({"labelIds": "SPAM"}))
        world.triggers.faults = FailingDeletes()
        result = world.applier(attempts=1).apply(world.plan([new]))
        assert result.failed
        assert ("delete", result.items[0].change.owned.remote_id) in world.triggers.faults.calls  # type: ignore[union-attr]
        entries = world.ledger.entries()
        assert sorted(e.retired for e in entries) == [False, True]  # old still owned, retired
        assert len(list(list_all(world.triggers))) == 2
        world.triggers.faults = LocalFaults()
        cleanup = world.plan([new])
        assert [(c.op, c.reason) for c in cleanup.actionable] == [
            (Op.DELETE, "old object left by a replace")
        ]
        world.applier().apply(cleanup)
        assert len(list(list_all(world.triggers))) == 1
        assert not world.plan([new]).has_changes
    finally:
        world.close()


def test_delete_of_already_gone_object_just_forgets_it(world: World) -> None:
    world.applier().apply(world.plan(JOBS))
    [first] = [e for e in world.ledger.entries() if e.key == JOBS[0].key]
    world.jobs.delete(first.remote_id)  # gone outside the operator
    p = world.plan(JOBS[1:])
    [change] = p.actionable
    assert change.op is Op.DELETE and "already gone" in change.notes[0]
    assert not world.applier().apply(p).failed
    assert JOBS[0].key not in {e.key for e in world.ledger.entries()}
    with pytest.raises(NotFound):
        world.jobs.delete(first.remote_id)


def test_update_pauses_job_in_backend(world: World) -> None:
    world.applier().apply(world.plan(JOBS[:1]))
    paused = desired(JOBS[0].key, job_spec(enabled=False))
    world.applier().apply(world.plan([paused]))
    [obj] = list(list_all(world.jobs))
    assert obj.state == "paused"
    assert not world.plan([paused]).has_changes


def test_unknown_outcome_is_retryable_type() -> None:
    assert issubclass(UnknownOutcome, RetryableError)


# -- write-ahead intents -------------------------------------------------------------------------


class SimulatedCrash(Exception):
    """Stands in for SIGKILL: not a PlannerError, so nothing in apply catches it."""


class CrashBeforeCreate(LocalFaults):
    """Dies after the intent was committed and before the remote create."""

    def before_write(self, operation: str, target: str) -> None:
        if operation == "create":
            raise SimulatedCrash(target)
        super().before_write(operation, target)


def test_create_announces_and_clears_its_intent(world: World) -> None:
    seen: list[list[str]] = []

    class Watching(LocalFaults):
        def before_write(self, operation: str, target: str) -> None:
            seen.append([i.key for i in world.ledger.intents()])

    world.jobs.faults = Watching()
    assert not world.applier().apply(world.plan(JOBS[:2])).failed
    assert seen == [[JOBS[0].key], [JOBS[1].key]]  # committed before each remote write
    assert world.ledger.intents() == []


def test_permanent_failure_clears_the_intent_it_wrote(world: World) -> None:
    world.job_faults.fail_next = [PermanentError("refused", status=400)]
    assert world.applier().apply(world.plan(JOBS[:1])).failed
    assert world.ledger.intents() == [] and list(list_all(world.jobs)) == []


def test_unknown_outcome_keeps_the_intent_and_the_leftover_is_deleted_later(world: World) -> None:
    world.job_faults.commit_then_fail = True
    assert world.applier(attempts=1).apply(world.plan(JOBS[:1])).failed
    [leftover] = list(list_all(world.jobs))
    assert [i.key for i in world.ledger.intents()] == [JOBS[0].key]
    assert world.ledger.entries() == []
    cleanup = world.plan(JOBS[1:2])  # the key left the config before the next run
    assert sorted((c.op, c.key) for c in cleanup.actionable) == [
        (Op.CREATE, JOBS[1].key),
        (Op.DELETE, JOBS[0].key),
    ]
    assert not world.applier().apply(cleanup).failed
    assert [o.key for o in list_all(world.jobs)] == [JOBS[1].key]
    assert leftover.remote_id not in {o.remote_id for o in list_all(world.jobs)}
    assert world.ledger.intents() == []
    assert not world.plan(JOBS[1:2]).has_changes


def test_permanent_failure_keeps_an_intent_an_earlier_create_left(world: World) -> None:
    world.job_faults.commit_then_fail = True
    world.applier(attempts=1).apply(world.plan(JOBS[:1]))
    [pending] = world.ledger.intents()
    world.job_faults.fail_next = [PermanentError("refused", status=400)]
    assert world.applier().apply(world.plan(JOBS[:1])).failed
    assert world.ledger.intents() == [pending]  # still covers the object the first one made


def test_crash_between_intent_and_create_leaves_a_stale_intent_that_goes(world: World) -> None:
    world.jobs.faults = CrashBeforeCreate()
    with pytest.raises(SimulatedCrash):
        world.applier().apply(world.plan(JOBS[:1]))
    assert [i.key for i in world.ledger.intents()] == [JOBS[0].key]
    world.jobs.faults = LocalFaults()
    later = world.plan(JOBS[1:2])  # nothing remote matches the intent: nothing to delete
    assert [(c.op, c.key) for c in later.actionable] == [(Op.CREATE, JOBS[1].key)]
    assert not world.applier().apply(later).failed
    assert world.ledger.intents() == []


def test_intent_stays_when_the_create_did_not_take_over_the_expected_object(world: World) -> None:
    world.job_faults.commit_then_fail = True
    world.applier(attempts=1).apply(world.plan(JOBS[:1]))
    [leftover] = list(list_all(world.jobs))
    adopt = world.plan(JOBS[:1])
    assert adopt.changes[0].takes_over == leftover.remote_id
    world.jobs.delete(leftover.remote_id)  # gone between plan and apply: a new one is made
    [made] = world.applier().apply(adopt).items
    assert made.ok and made.remote_id != leftover.remote_id
    assert len(world.ledger.intents()) == 1  # not settled as planned: the next run decides
    assert not world.plan(JOBS[:1]).has_changes
    world.applier().apply(world.plan(JOBS[:1]))  # a clean apply drops the stale intent
    assert world.ledger.intents() == []
