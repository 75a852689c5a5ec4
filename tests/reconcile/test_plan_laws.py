"""The planner's laws, as hypothesis properties over random desired/actual/ledger states.

These are the promises a user relies on when they merge a PR: nothing unowned is ever deleted
(only what the ledger owns, or what an interrupted create it announced left behind), a broken or
empty config never prunes, and an applied plan leaves nothing to do.
"""

from __future__ import annotations

from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from planner_operator.backends.base import RemoteObject, list_all
from planner_operator.backends.local import LocalScheduleBackend, LocalTriggerBackend
from planner_operator.config.desired import DesiredResource
from planner_operator.core.keys import Kind
from planner_operator.core.records import Intent, OwnedEntry
from planner_operator.errors import ConfigError
from planner_operator.reconcile.apply import Applier
from planner_operator.reconcile.plan import Op, PlanOptions, plan
from planner_operator.state.ledger import Ledger
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


def kind_of(key: str) -> Kind:
    return "job" if "/jobs/" in key else "trigger"


@st.composite
def leftovers(
    draw: st.DrawFn, wanted: dict[str, DesiredResource], owned: list[OwnedEntry]
) -> tuple[list[RemoteObject], list[Intent]]:
    """Unowned objects under agent keys (declared, owned or neither), some of them announced by a
    pending intent; intents may also match nothing remote."""
    known = sorted({*wanted, *(e.key for e in owned)})
    keys = st.sampled_from(known) if known else st.nothing()
    keys = keys | st.builds(lambda a, n: f"{a}/jobs/{n}", st.sampled_from(AGENTS), st.just("x"))
    strays: list[RemoteObject] = []
    for i, key in enumerate(draw(st.lists(keys, max_size=4))):
        kind = kind_of(key)
        spec = draw(specs_job if kind == "job" else specs_trigger)
        strays.append(RemoteObject(f"stray{i}", kind, spec, key=key))
    announced = draw(st.lists(keys, max_size=3, unique=True))
    intents = [Intent(k, kind_of(k), "local", "h", {}, id=i + 1) for i, k in enumerate(announced)]
    return strays, intents


@settings(max_examples=300, deadline=None)
@given(world(), st.data(), st.booleans(), st.booleans())
def test_deletes_only_owned_or_intended_objects(
    state: tuple[dict[str, DesiredResource], list[RemoteObject], list[OwnedEntry]],
    data: st.DataObject,
    mass: bool,
    protected: bool,
) -> None:
    wanted, actual, owned = state
    strays, intents = data.draw(leftovers(wanted, owned))
    options = PlanOptions(allow_mass_delete=mass, allow_protected_delete=protected)
    owned_ids = {(e.kind, e.remote_id) for e in owned}
    intended = {(i.kind, i.key) for i in intents}
    result = plan(wanted, [*actual, *strays], owned, options=options, intents=intents)
    for change in result.changes:
        if change.op is Op.REPLACE or (change.op is Op.DELETE and change.owned is not None):
            assert change.owned is not None
            assert (change.owned.kind, change.owned.remote_id) in owned_ids
        elif change.op is Op.DELETE:  # deletes: owned or intended, nothing else
            assert change.remote is not None and change.intent is not None
            assert (change.remote.kind, change.remote.key) in intended
            assert (change.remote.kind, change.remote.remote_id) not in owned_ids
        if change.op is Op.UPDATE:
            assert change.owned is not None
    # a stray a pending intent covers is deleted or taken over, never unmanaged; others are
    # never deleted (a create may still take one over: the backend's create finds it by key)
    deleted = {c.remote.remote_id for c in result.changes if c.op is Op.DELETE and c.remote}
    taken_over = {c.takes_over for c in result.changes if c.takes_over}
    for stray in strays:
        if (stray.kind, stray.key) in intended:
            assert stray.remote_id in deleted | taken_over and stray not in result.unmanaged
        else:
            assert stray.remote_id not in deleted
    taken = [c.takes_over for c in result.changes if c.takes_over]
    assert len(taken) == len(set(taken))  # one create per object


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
@given(world(), st.data())
def test_empty_desired_never_deletes(
    state: tuple[dict[str, DesiredResource], list[RemoteObject], list[OwnedEntry]],
    data: st.DataObject,
) -> None:
    _, actual, owned = state
    strays, intents = data.draw(leftovers({}, owned))
    options = PlanOptions(allow_mass_delete=True)
    result = plan({}, [*actual, *strays], owned, options=options, intents=intents)
    assert not any(
        c.actionable and c.op is Op.DELETE and not (c.owned and c.owned.retired)
        for c in result.changes
    )


@settings(max_examples=200, deadline=None)
@given(world(), st.sampled_from(AGENTS), st.data())
def test_corrupt_file_changes_none_of_its_resources_and_nothing_is_deleted(
    state: tuple[dict[str, DesiredResource], list[RemoteObject], list[OwnedEntry]],
    broken_agent: str,
    data: st.DataObject,
) -> None:
    wanted, actual, owned = state
    strays, intents = data.draw(leftovers(wanted, owned))
    broken_file = f"agents/{broken_agent}.yaml"
    # a broken file contributes no desired resources
    survivors = {k: d for k, d in wanted.items() if d.agent != broken_agent}
    error = ConfigError("invalid YAML", file=broken_file, line=1, col=1)
    options = PlanOptions(allow_mass_delete=True, allow_protected_delete=True, allow_empty=True)
    result = plan(survivors, [*actual, *strays], owned, [error], options=options, intents=intents)
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
            result = plan(
                wanted, actual, ledger.entries(), options=everything, intents=ledger.intents()
            )
            applied = Applier(backends, ledger, revision="test").apply(result)  # type: ignore[arg-type]
            assert not applied.failed
            assert ledger.intents() == []  # every create announced, then settled
            actual = [*list_all(jobs), *list_all(triggers)]
            again = plan(
                wanted, actual, ledger.entries(), options=everything, intents=ledger.intents()
            )
            assert not again.has_changes, [c for c in again.changes if c.actionable]
            # remote == desired over owned resources, and one object per key
            assert sorted(o.key or "" for o in actual) == sorted(wanted)
