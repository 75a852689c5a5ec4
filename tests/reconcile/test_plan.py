"""The planner's decisions, one rule per test, on plain values (no I/O)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from planner_operator.backends.base import RemoteObject
from planner_operator.core.records import Intent
from planner_operator.errors import ConfigError
from planner_operator.reconcile.plan import Op, PlanOptions, deletion_budget, field_diff, plan
from tests.support.builders import (
    converged,
    desired,
    desired_map,
    job_spec,
    owned_for,
    remote_for,
    trigger_spec,
)

JOB = "agent-a/jobs/daily"
TRIGGER = "agent-a/triggers/mail"


def ops(result_plan: object) -> dict[str, Op]:
    return {c.key: c.op for c in result_plan.changes}  # type: ignore[attr-defined]


def test_new_resources_are_created_in_order_creates_first() -> None:
    wanted = desired_map([desired(JOB, job_spec()), desired(TRIGGER, trigger_spec())])
    result = plan(wanted, [], [])
    assert [c.op for c in result.changes] == [Op.CREATE, Op.CREATE]
    assert result.counts()[Op.CREATE] == 2
    assert all(c.reason == "new in config" for c in result.changes)


def test_schedule_change_is_an_update_with_field_diff() -> None:
    _, actual, owned = converged([desired(JOB, job_spec())])
    edited = desired_map([desired(JOB, job_spec("0 10 * * 1"))])
    [change] = plan(edited, actual, owned).changes
    assert change.op is Op.UPDATE
    assert [(d.path, d.before, d.after) for d in change.diff] == [
        ("schedule", "0 9 * * 1", "0 10 * * 1")
    ]
    assert change.reason == "changed: schedule"


def test_trigger_config_change_is_a_replace() -> None:
    _, actual, owned = converged([desired(TRIGGER, trigger_spec())])
    edited = desired_map([desired(TRIGGER, trigger_spec({"labelIds": "SPAM"}))])
    [change] = plan(edited, actual, owned).changes
    assert change.op is Op.REPLACE
    assert "config cannot change in place" in change.reason
    assert [d.path for d in change.diff] == ["config.labelIds"]


def test_trigger_action_change_is_an_update_not_a_replace() -> None:
    _, actual, owned = converged([desired(TRIGGER, trigger_spec())])
    spec = trigger_spec(action={"workflow": {"id": "triage", "input": {}}})
    [change] = plan(desired_map([desired(TRIGGER, spec)]), actual, owned).changes
    assert change.op is Op.UPDATE


def test_rename_is_delete_plus_create_and_says_so() -> None:
    _, actual, owned = converged([desired(JOB, job_spec())])
    renamed = desired_map([desired("agent-a/jobs/every-day", job_spec())])
    result = plan(renamed, actual, owned)
    by_key = {c.key: c for c in result.changes}
    assert by_key["agent-a/jobs/every-day"].op is Op.CREATE
    assert "renamed from daily" in by_key["agent-a/jobs/every-day"].notes
    assert by_key[JOB].op is Op.DELETE
    assert "renamed to every-day" in by_key[JOB].notes


def test_disabling_a_job_is_an_update_marked_paused() -> None:
    _, actual, owned = converged([desired(JOB, job_spec())])
    [change] = plan(desired_map([desired(JOB, job_spec(enabled=False))]), actual, owned).changes
    assert change.op is Op.UPDATE
    assert change.notes == ("paused",)


def test_paused_remotely_is_resumed_and_reported_as_drift() -> None:
    wanted, actual, owned = converged([desired(JOB, job_spec())])
    paused = [RemoteObject(actual[0].remote_id, "job", actual[0].spec, key=JOB, state="paused")]
    result = plan(wanted, paused, owned)
    [change] = result.changes
    assert change.op is Op.UPDATE
    assert change.notes == ("resume",)
    assert [d.what for d in result.drift] == ["changed remotely: enabled"]


def test_owned_object_deleted_remotely_is_recreated() -> None:
    wanted, _, owned = converged([desired(JOB, job_spec())])
    result = plan(wanted, [], owned)
    [change] = result.changes
    assert change.op is Op.CREATE
    assert "gone remotely" in change.reason
    assert [d.what for d in result.drift] == ["missing remotely"]


def test_unowned_remote_objects_are_reported_never_deleted() -> None:
    stranger = RemoteObject("ti_foreign", "trigger", trigger_spec(), key=None)
    wanted, actual, owned = converged([desired(JOB, job_spec())])
    result = plan(wanted, [*actual, stranger], owned)
    assert result.unmanaged == (stranger,)
    assert all(c.op is Op.NOOP for c in result.changes)


def test_orphan_with_our_key_is_taken_over_by_create() -> None:
    d = desired(JOB, job_spec())
    orphan = remote_for(d, "job_left_behind")
    result = plan(desired_map([d]), [orphan], [])
    [change] = result.changes
    assert change.op is Op.CREATE
    assert change.remote == orphan
    assert result.unmanaged == ()


def test_load_error_freezes_that_files_resources_and_blocks_all_deletes() -> None:
    a_job = desired("agent-a/jobs/daily", job_spec(), source="agents/agent-a.yaml")
    b_job = desired("agent-b/jobs/daily", job_spec(), source="agents/agent-b.yaml")
    c_job = desired("agent-c/jobs/daily", job_spec(), source="agents/agent-c.yaml")
    _, actual, owned = converged([a_job, b_job, c_job])
    error = ConfigError("invalid YAML", file="agents/agent-a.yaml", line=3, col=1)
    # agent-a failed to load, agent-c was removed, agent-b edited
    edited_b = desired("agent-b/jobs/daily", job_spec("0 10 * * *"), source="agents/agent-b.yaml")
    result = plan(desired_map([edited_b]), actual, owned, [error])
    by_key = {c.key: c for c in result.changes}
    assert by_key["agent-a/jobs/daily"].op is Op.NOOP
    assert "frozen" in by_key["agent-a/jobs/daily"].notes
    assert by_key["agent-b/jobs/daily"].op is Op.UPDATE  # other files proceed
    assert by_key["agent-c/jobs/daily"].op is Op.DELETE
    assert by_key["agent-c/jobs/daily"].blocked is not None
    assert "agents/agent-a.yaml" in by_key["agent-c/jobs/daily"].blocked
    assert result.frozen_files == ("agents/agent-a.yaml",)
    assert not result.ok


def test_empty_desired_deletes_nothing_unless_allowed() -> None:
    _, actual, owned = converged([desired(JOB, job_spec())])
    result = plan({}, actual, owned)
    assert [c.op for c in result.changes] == [Op.DELETE]
    assert result.changes[0].blocked is not None and "empty" in result.changes[0].blocked
    assert not result.has_changes
    allowed = plan({}, actual, owned, options=PlanOptions(allow_empty=True))
    assert allowed.has_changes


def test_mass_delete_budget() -> None:
    assert deletion_budget(10) == 3
    assert deletion_budget(100) == 10
    keep = [desired(f"agent-a/jobs/keep-{i}", job_spec()) for i in range(36)]
    drop = [desired(f"agent-a/jobs/drop-{i}", job_spec()) for i in range(4)]
    _, actual, owned = converged(keep + drop)  # 40 managed: budget max(3, 4) = 4
    ok = plan(desired_map(keep), actual, owned)
    assert ok.counts()[Op.DELETE] == 4
    too_many = plan(desired_map(keep[:-1]), actual, owned)  # 5 deletes > 4
    assert too_many.counts()[Op.DELETE] == 0
    assert any("--allow-mass-delete" in r for r in too_many.refusals)
    forced = plan(
        desired_map(keep[:-1]), actual, owned, options=PlanOptions(allow_mass_delete=True)
    )
    assert forced.counts()[Op.DELETE] == 5


def test_protected_resource_survives_file_removal_until_flag() -> None:
    keep = desired("agent-a/jobs/keep", job_spec())
    guarded = desired("agent-a/jobs/guarded", job_spec(protect=True))
    _, actual, owned = converged([keep, guarded])
    result = plan(desired_map([keep]), actual, owned)
    [delete] = [c for c in result.changes if c.op is Op.DELETE]
    assert delete.blocked is not None and "--allow-protected-delete" in delete.blocked
    opts = PlanOptions(allow_protected_delete=True)
    assert plan(desired_map([keep]), actual, owned, options=opts).counts()[Op.DELETE] == 1


def test_retired_object_from_interrupted_replace_is_deleted() -> None:
    d = desired(TRIGGER, trigger_spec())
    _, actual, owned = converged([d])
    old = owned_for(d, "trg_old", retired=True)
    old_remote = RemoteObject("trg_old", "trigger", trigger_spec({"labelIds": "X"}), key=TRIGGER)
    result = plan(desired_map([d]), [*actual, old_remote], [*owned, old])
    deletes = [c for c in result.changes if c.op is Op.DELETE]
    assert [c.owned.remote_id for c in deletes if c.owned] == ["trg_old"]
    assert deletes[0].actionable


def test_stale_ledger_hash_with_matching_remote_is_recorded() -> None:
    d = desired(JOB, job_spec("0 10 * * 1"))
    _, _, owned = converged([desired(JOB, job_spec())])
    remote = remote_for(d, owned[0].remote_id)
    [change] = plan(desired_map([d]), [remote], owned).changes
    assert change.op is Op.UPDATE  # remote is right, the ledger is brought up to date
    assert change.reason == "remote already matches; record it"


def test_field_diff_walks_mappings_and_marks_added_removed() -> None:
    diff = field_diff({"a": 1, "b": {"c": 1, "d": 2}}, {"b": {"c": 2}, "e": 3})
    assert [(d.path, d.had_before, d.has_after) for d in diff] == [
        ("a", True, False),
        ("b.c", True, True),
        ("b.d", True, False),
        ("e", False, True),
    ]
    assert field_diff({"x": True}, {"x": 1})  # a type change is a change


# -- objects left by an interrupted create (write-ahead intents) ---------------------------------

WHEN = datetime(2026, 3, 1, 12, 30, tzinfo=UTC)


def intent_for(key: str, spec: dict[str, Any], **extra: Any) -> Intent:
    d = desired(key, spec)
    values: dict[str, Any] = {
        "key": key,
        "kind": d.kind,
        "backend": "local",
        "spec_hash": d.spec_hash,
        "spec": d.spec,
        "created_at": WHEN,
        "id": 7,
    }
    values.update(extra)
    return Intent(**values)


def stray(key: str, spec: dict[str, Any], remote_id: str = "stray-1") -> RemoteObject:
    return remote_for(desired(key, spec), remote_id)


def test_leftover_of_an_interrupted_create_is_deleted_once_its_key_is_gone() -> None:
    wanted, actual, owned = converged([desired(JOB, job_spec())])
    gone = "agent-a/jobs/renamed-away"
    leftover = stray(gone, job_spec())
    result = plan(wanted, [*actual, leftover], owned, intents=[intent_for(gone, job_spec())])
    [change] = result.actionable
    assert (change.op, change.key, change.owned) == (Op.DELETE, gone, None)
    assert change.reason == "left by an interrupted create at 2026-03-01T12:30:00+00:00"
    assert change.remote == leftover and change.intent is not None
    assert result.unmanaged == ()
    assert result.intents == (intent_for(gone, job_spec()),)


def test_unowned_object_with_a_key_but_no_intent_is_only_reported() -> None:
    wanted, actual, owned = converged([desired(JOB, job_spec())])
    theirs = stray("agent-a/jobs/other", job_spec())
    result = plan(wanted, [*actual, theirs], owned, intents=[intent_for(TRIGGER, trigger_spec())])
    assert not result.has_changes
    assert result.unmanaged == (theirs,)


def test_create_takes_over_the_leftover_of_its_own_interrupted_create() -> None:
    wanted = desired_map([desired(JOB, job_spec())])
    leftover = stray(JOB, job_spec())
    result = plan(wanted, [leftover], [], intents=[intent_for(JOB, job_spec())])
    [change] = result.changes
    assert change.op is Op.CREATE and change.takes_over == leftover.remote_id
    assert change.remote == leftover and change.intent == intent_for(JOB, job_spec())
    assert change.notes == (
        "takes over stray-1, left by an interrupted create at 2026-03-01T12:30:00+00:00",
    )
    assert result.unmanaged == ()


def test_create_without_leftovers_is_still_tied_to_its_pending_intent() -> None:
    wanted = desired_map([desired(JOB, job_spec())])
    [change] = plan(wanted, [], [], intents=[intent_for(JOB, job_spec())]).changes
    assert change.op is Op.CREATE and change.takes_over is None
    assert change.intent == intent_for(JOB, job_spec())


def test_leftover_of_another_identity_is_deleted_not_taken_over() -> None:
    # a replace to SPAM was cut off after its create; the config went back to INBOX
    wanted, actual, owned = converged([desired(TRIGGER, trigger_spec())])
    spam = trigger_spec({"labelIds": "SPAM"})
    leftover = stray(TRIGGER, spam)
    result = plan(wanted, [*actual, leftover], owned, intents=[intent_for(TRIGGER, spam)])
    assert [(c.op, c.remote) for c in result.actionable] == [(Op.DELETE, leftover)]


def test_replace_takes_over_the_new_object_its_interrupted_create_made() -> None:
    _, actual, owned = converged([desired(TRIGGER, trigger_spec())])
    spam = trigger_spec({"labelIds": "SPAM"})
    leftover = stray(TRIGGER, spam)
    wanted = desired_map([desired(TRIGGER, spam)])
    result = plan(wanted, [*actual, leftover], owned, intents=[intent_for(TRIGGER, spam)])
    [change] = result.changes
    assert change.op is Op.REPLACE and change.takes_over == leftover.remote_id
    assert change.owned == owned[0]  # the old object is still the one deleted afterwards
    assert "takes over stray-1" in change.notes[0]
    assert result.unmanaged == ()


def test_leftover_deletes_obey_the_safety_rules() -> None:
    gone = [f"agent-b/jobs/j{i}" for i in range(4)]
    leftovers = [stray(k, job_spec(), f"s{i}") for i, k in enumerate(gone)]
    intents = [intent_for(k, job_spec(), id=i) for i, k in enumerate(gone)]
    wanted, actual, owned = converged([desired(JOB, job_spec())])
    over_budget = plan(wanted, [*actual, *leftovers], owned, intents=intents)
    assert len(over_budget.blocked) == 4 and "refusing to delete 4" in over_budget.refusals[0]
    empty = plan({}, leftovers, [], intents=intents, options=PlanOptions(allow_mass_delete=True))
    assert not empty.has_changes and "desired state is empty" in empty.refusals[0]
    error = ConfigError("invalid YAML", file="agents/agent-b.yaml")
    broken = plan(wanted, [*actual, *leftovers], owned, [error], intents=intents)
    assert not broken.has_changes and len(broken.blocked) == 4


def test_leftover_of_a_protected_resource_needs_the_protected_flag() -> None:
    gone = "agent-b/jobs/guarded"
    spec = job_spec(protect=True)
    wanted, actual, owned = converged([desired(JOB, job_spec())])
    args = (wanted, [*actual, stray(gone, spec)], owned)
    [blocked] = plan(*args, intents=[intent_for(gone, spec)]).blocked
    assert blocked.blocked is not None and "protected" in blocked.blocked
    allowed = plan(
        *args, intents=[intent_for(gone, spec)], options=PlanOptions(allow_protected_delete=True)
    )
    assert [c.op for c in allowed.actionable] == [Op.DELETE]
