"""The planner's laws, as hypothesis properties over random desired/actual/ledger states.

These are the promises a user relies on when they merge a PR: nothing unowned is ever deleted,
a broken or empty config never prunes, and an applied plan leaves nothing to do.
"""

from __future__ import annotations

from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from planner_operator.apply import Applier
from planner_operator.backends.base import RemoteObject, list_all
from planner_operator.backends.local import LocalScheduleBackend, LocalTriggerBackend
from planner_operator.desired import DesiredResource
from planner_operator.errors import ConfigError
from planner_operator.ledger import Ledger
from planner_operator.owned import OwnedEntry
from planner_operator.plan import Op, PlanOptions, plan
from tests.support.builders import (
    desired,
    desired_map,
    job_spec,
    owned_for,
    remote_for,
    trigger_spec,
)

AGENTS = ("alpha", "beta", "gamma")
NAMES = ("one", "two", "three", "four")

specs_job = st.builds(
    job_spec,
    schedule=st.sampled_from(["0 9 * * 1", "@daily", "*/15 * * * *"]),
    enabled=st.booleans(),
    protect=st.booleans(),
)
specs_trigger = st.builds(
    trigger_spec,
    config=st.sampled_from([{"labelIds": "INBOX"}, {"labelIds": "SPAM"}]),
    enabled=st.booleans(),
)


@st.composite
def resources(draw: st.DrawFn) -> list[DesiredResource]:
    out = []
    for agent in draw(st.sets(st.sampled_from(AGENTS))):
        for name in draw(st.sets(st.sampled_from(NAMES), max_size=3)):
            out.append(desired(f"{agent}/jobs/{name}", draw(specs_job)))
        for name in draw(st.sets(st.sampled_from(NAMES), max_size=2)):
            out.append(desired(f"{agent}/triggers/{name}", draw(specs_trigger)))
    return out


@st.composite
def world(
    draw: st.DrawFn,
) -> tuple[dict[str, DesiredResource], list[RemoteObject], list[OwnedEntry]]:
    """Arbitrary, possibly inconsistent desired / actual / owned (remote may lag the ledger)."""
    wanted = desired_map(draw(resources()))
    previous = draw(resources())
    owned: list[OwnedEntry] = []
    actual: list[RemoteObject] = []
    for i, old in enumerate(previous):
        rid = f"r{i}"
        owned.append(owned_for(old, rid))
        if draw(st.booleans()):  # the remote may have vanished
            actual.append(RemoteObject(rid, old.kind, dict(old.spec), key=old.key))
    for j in range(draw(st.integers(0, 3))):  # objects someone else made
        actual.append(RemoteObject(f"foreign{j}", "trigger", trigger_spec(), key=None))
    return wanted, actual, owned


@settings(max_examples=300, deadline=None)
@given(world(), st.booleans(), st.booleans())
def test_deletes_only_owned_objects(
    state: tuple[dict[str, DesiredResource], list[RemoteObject], list[OwnedEntry]],
    mass: bool,
    protected: bool,
) -> None:
    wanted, actual, owned = state
    options = PlanOptions(allow_mass_delete=mass, allow_protected_delete=protected)
    owned_ids = {(e.kind, e.remote_id) for e in owned}
    for change in plan(wanted, actual, owned, options=options).changes:
        if change.op in (Op.DELETE, Op.REPLACE):
            assert change.owned is not None
            assert (change.owned.kind, change.owned.remote_id) in owned_ids


@settings(max_examples=200, deadline=None)
@given(resources())
def test_plan_of_converged_state_is_empty(items: list[DesiredResource]) -> None:
    wanted = desired_map(items)
    ids = {k: f"id{i}" for i, k in enumerate(wanted)}
    actual = [remote_for(d, ids[key]) for key, d in wanted.items()]
    owned = [owned_for(d, ids[k]) for k, d in wanted.items()]
    result = plan(wanted, actual, owned)
    assert not result.has_changes
    assert all(c.op is Op.NOOP for c in result.changes)
    assert result.unmanaged == () and result.drift == ()


@settings(max_examples=200, deadline=None)
@given(world())
def test_empty_desired_never_deletes(
    state: tuple[dict[str, DesiredResource], list[RemoteObject], list[OwnedEntry]],
) -> None:
    _, actual, owned = state
    result = plan({}, actual, owned, options=PlanOptions(allow_mass_delete=True))
    assert not any(
        c.actionable and c.op is Op.DELETE and not c.owned.retired
        for c in result.changes
        if c.owned
    )


@settings(max_examples=200, deadline=None)
@given(world(), st.sampled_from(AGENTS))
def test_corrupt_file_changes_none_of_its_resources_and_nothing_is_deleted(
    state: tuple[dict[str, DesiredResource], list[RemoteObject], list[OwnedEntry]],
    broken_agent: str,
) -> None:
    wanted, actual, owned = state
    broken_file = f"agents/{broken_agent}.yaml"
    # a broken file contributes no desired resources
    survivors = {k: d for k, d in wanted.items() if d.agent != broken_agent}
    error = ConfigError("invalid YAML", file=broken_file, line=1, col=1)
    options = PlanOptions(allow_mass_delete=True, allow_protected_delete=True, allow_empty=True)
    result = plan(survivors, actual, owned, [error], options=options)
    for change in result.changes:
        if change.agent == broken_agent and change.owned is not None:
            assert not change.actionable, change
        if change.op is Op.DELETE:
            assert not change.actionable


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(first=resources(), second=resources())
def test_apply_then_replan_is_empty(
    tmp_path_factory: object, first: list[DesiredResource], second: list[DesiredResource]
) -> None:
    directory = Path(tmp_path_factory.mktemp("laws"))  # type: ignore[attr-defined]
    with (
        LocalScheduleBackend(directory / "state.db") as jobs,
        LocalTriggerBackend(directory / "state.db") as triggers,
        Ledger(directory / "ledger.db") as ledger,
    ):
        backends = {"job": jobs, "trigger": triggers}
        everything = PlanOptions(
            allow_mass_delete=True, allow_protected_delete=True, allow_empty=True
        )
        for items in (first, second):  # apply one state, then move to another
            wanted = desired_map(items)
            actual = [*list_all(jobs), *list_all(triggers)]
            result = plan(wanted, actual, ledger.entries(), options=everything)
            applied = Applier(backends, ledger, revision="test").apply(result)  # type: ignore[arg-type]
            assert not applied.failed
            actual = [*list_all(jobs), *list_all(triggers)]
            again = plan(wanted, actual, ledger.entries(), options=everything)
            assert not again.has_changes, [c for c in again.changes if c.actionable]
            # remote == desired over owned resources, and one object per key
            assert sorted(o.key or "" for o in actual) == sorted(wanted)
