"""The backend contract: every implementation of the Protocols in backends/base.py passes this.

The planner and apply are written against these behaviours only, so a backend that passes here
can replace any other. To add an implementation, add one line to ``IMPLEMENTATIONS``: a factory
from ``tmp_path`` to a context manager yielding the backend (start a fake server there), plus what
the backend can observe (Composio reports no key and only some spec fields).

The bottom of the file holds local-backend extras (fault injection, drift, shared file) that are
not part of the contract.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from planner_operator.backends import select
from planner_operator.backends.base import REPLACE_FIELDS, RemoteBackend, RemoteObject, list_all
from planner_operator.backends.local import LocalFaults, LocalScheduleBackend, LocalTriggerBackend
from planner_operator.core.canonical import subset
from planner_operator.core.keys import Kind
from planner_operator.core.settings import Settings
from planner_operator.errors import Conflict, NotFound, RetryableError, UnknownOutcome
from planner_operator.state.ledger import Ledger
from planner_operator.state.lock import ApplyLock
from tests.fakes.composio_server import FakeComposio


@dataclass(frozen=True)
class Impl:
    """One backend implementation under test and what it can observe."""

    kind: Kind
    factory: Callable[[Path], AbstractContextManager[RemoteBackend]]
    reports_key: bool = True
    observed: frozenset[str] | None = None  # None: every spec field comes back as written
    # The REPLACE_FIELDS the backend itself tells apart. Composio derives the toolkit from the
    # event slug (preflight refuses a toolkit that does not match), so a toolkit-only change
    # cannot reach it.
    distinguishes: frozenset[str] = REPLACE_FIELDS["trigger"]
    # Composio keeps one instance per trigger type, owner and config, so two keys with identical
    # specs share it (its preflight refuses such configs); "distinct keys" tests then use
    # distinct specs.
    one_object_per_spec: bool = False


@contextmanager
def composio_over_fake(tmp: Path) -> Iterator[RemoteBackend]:
    """The real SDK against the fake API, composed as production opens it (webhook triggers
    routed to the local table); a budget high enough not to slow the suite."""
    env = {"PLANNER_COMPOSIO_BUDGET_PER_MIN": "1000000"}
    with FakeComposio(budget_per_minute=1_000_000) as fake:
        settings = Settings.resolve(state_dir=tmp / "state", env={})
        with select.composio_triggers(settings, fake.env(**env)) as backend:
            yield backend


class Settled:
    """A backend whose writes take effect at ``finish()`` (Inngest: one sync per apply).

    The contract for such a backend is that after ``finish()`` returns no problems, ``list``
    shows every write; this wrapper finishes before the next read or write after a write, so
    the same suite applies (one sync per batch of writes, as in an apply).
    """

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.dirty = False

    @property
    def info(self) -> Any:
        return self.inner.info

    def list(self, *, cursor: str | None = None, limit: int = 100) -> Any:
        self._settle()
        return self.inner.list(cursor=cursor, limit=limit)

    def create(self, key: str, spec: Mapping[str, Any]) -> RemoteObject:
        made: RemoteObject = self.inner.create(key, spec)
        self.dirty = True
        return made

    def update(self, remote_id: str, key: str, spec: Mapping[str, Any]) -> RemoteObject:
        self._settle()
        made: RemoteObject = self.inner.update(remote_id, key, spec)
        self.dirty = True
        return made

    def delete(self, remote_id: str) -> None:
        self._settle()
        self.inner.delete(remote_id)
        self.dirty = True

    def _settle(self) -> None:
        if self.dirty:
            assert self.inner.finish() == []
            self.dirty = False


@contextmanager
def inngest_over_fake(tmp: Path) -> Iterator[RemoteBackend]:
    """The Inngest backend over the fake Inngest server, synced by a serving app's SDK."""
    from planner_operator.backends.inngest.backend import InngestScheduleBackend
    from planner_operator.backends.inngest.sdk import InngestConfig
    from tests.fakes.inngest_server import FakeInngest
    from tests.support.inngest_serve import serving_mount

    with FakeInngest() as fake:
        env = {"INNGEST_DEV": fake.base_url}
        with serving_mount(tmp / "state.db", env) as origin:  # only the serving app syncs
            config = InngestConfig.from_env({**env, "INNGEST_SERVE_ORIGIN": origin})
            with InngestScheduleBackend(config, tmp / "state.db") as backend:
                yield Settled(backend)


IMPLEMENTATIONS: dict[str, Impl] = {
    "inngest-over-fake": Impl(
        "job",
        inngest_over_fake,
        observed=frozenset({"schedule", "timezone", "enabled"}),
    ),
    "local-jobs": Impl("job", lambda tmp: LocalScheduleBackend(tmp / "state.db")),
    "local-triggers": Impl("trigger", lambda tmp: LocalTriggerBackend(tmp / "state.db")),
    "composio-over-fake": Impl(
        "trigger",
        composio_over_fake,
        reports_key=False,
        observed=frozenset({"event", "config", "enabled"}),
        distinguishes=REPLACE_FIELDS["trigger"] - {"toolkit"},
        one_object_per_spec=True,
    ),
}
TRIGGER_IMPLS = sorted(name for name, impl in IMPLEMENTATIONS.items() if impl.kind == "trigger")
OFF_STATE = {"job": "paused", "trigger": "disabled"}


@pytest.fixture(params=sorted(IMPLEMENTATIONS))
def impl(request: pytest.FixtureRequest) -> Impl:
    return IMPLEMENTATIONS[request.param]


@pytest.fixture
def backend(impl: Impl, tmp_path: Path) -> Iterator[RemoteBackend]:
    with impl.factory(tmp_path) as made:
        yield made


@pytest.fixture(params=TRIGGER_IMPLS)
def trigger_backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[RemoteBackend]:
    with IMPLEMENTATIONS[request.param].factory(tmp_path) as made:
        yield made


def key_for(kind: Kind, n: int = 0) -> str:
    return f"agent-{n % 7}/{'jobs' if kind == 'job' else 'triggers'}/item-{n}"


def sample(kind: Kind, n: int = 0, **changes: Any) -> dict[str, Any]:
    if kind == "job":
        spec: dict[str, Any] = {
            "schedule": "0 9 * * 1",
            "timezone": "Europe/Berlin",
            "enabled": True,
            "overlap": "skip",
            "description": f"job number {n}",
            "action": {"chat": {"template": "Good morning {user}", "variables": {"user": "ü"}}},
        }
    else:
        spec = {
            "toolkit": "gmail",
            "event": "GMAIL_NEW_GMAIL_MESSAGE",
            "connected_account": "ca_123",
            "config": {"labelIds": "INBOX", "n": n},
            "filter": {"sender": {"contains": "recruiter"}},
            "enabled": True,
            "action": {"workflow": {"id": "triage", "input": {"n": n}}},
        }
    spec.update(changes)
    return spec


def in_place_change(kind: Kind) -> dict[str, Any]:
    """A change every backend of this kind can make without a replace."""
    if kind == "job":
        return {"schedule": "30 8 * * *", "description": "changed"}
    return {"filter": {"sender": {"contains": "hiring"}}}


def seen(impl: Impl, spec: Mapping[str, Any]) -> dict[str, Any]:
    """The part of a spec this backend reports back."""
    return dict(spec) if impl.observed is None else subset(spec, impl.observed)


def assert_reports(impl: Impl, obj: RemoteObject, key: str, spec: Mapping[str, Any]) -> None:
    assert obj.kind == impl.kind
    assert seen(impl, obj.spec) == seen(impl, spec)
    assert obj.state == ("active" if spec.get("enabled", True) else OFF_STATE[impl.kind])
    if impl.reports_key:
        assert obj.key == key


# -- the contract ----------------------------------------------------------------------------


def test_empty_backend_lists_nothing(backend: RemoteBackend) -> None:
    page = backend.list()
    assert page.items == ()
    assert page.next_cursor is None
    assert list(list_all(backend)) == []


def test_info_names_the_kind(impl: Impl, backend: RemoteBackend) -> None:
    assert backend.info.kind == impl.kind
    assert backend.info.name


def test_create_then_list_shows_it(impl: Impl, backend: RemoteBackend) -> None:
    key, spec = key_for(impl.kind), sample(impl.kind)
    created = backend.create(key, spec)
    assert created.remote_id
    assert_reports(impl, created, key, spec)
    [listed] = list_all(backend)
    assert listed.remote_id == created.remote_id
    assert_reports(impl, listed, key, spec)


def test_create_twice_is_idempotent(impl: Impl, backend: RemoteBackend) -> None:
    key, spec = key_for(impl.kind), sample(impl.kind)
    first = backend.create(key, spec)
    second = backend.create(key, spec)
    assert second.remote_id == first.remote_id
    assert [o.remote_id for o in list_all(backend)] == [first.remote_id]


def test_create_again_with_an_in_place_change_updates_the_same_object(
    impl: Impl, backend: RemoteBackend
) -> None:
    key = key_for(impl.kind)
    first = backend.create(key, sample(impl.kind))
    changed = sample(impl.kind, **in_place_change(impl.kind))
    again = backend.create(key, changed)
    assert again.remote_id == first.remote_id
    [listed] = list_all(backend)
    assert_reports(impl, listed, key, changed)


def other_sample(impl: Impl) -> dict[str, Any]:
    """The same spec again, or a different one where identical specs share one object."""
    return sample(impl.kind, 2) if impl.one_object_per_spec else sample(impl.kind)


def test_distinct_keys_are_distinct_objects(impl: Impl, backend: RemoteBackend) -> None:
    a = backend.create(key_for(impl.kind, 1), sample(impl.kind))
    b = backend.create(key_for(impl.kind, 2), other_sample(impl))
    assert a.remote_id != b.remote_id
    assert {o.remote_id for o in list_all(backend)} == {a.remote_id, b.remote_id}


def test_create_disabled_reports_the_off_state(impl: Impl, backend: RemoteBackend) -> None:
    key, spec = key_for(impl.kind), sample(impl.kind, enabled=False)
    created = backend.create(key, spec)
    assert created.state == OFF_STATE[impl.kind]
    [listed] = list_all(backend)
    assert listed.state == OFF_STATE[impl.kind]


def test_update_changes_the_spec_in_place(impl: Impl, backend: RemoteBackend) -> None:
    key = key_for(impl.kind)
    created = backend.create(key, sample(impl.kind))
    paused = sample(impl.kind, enabled=False, **in_place_change(impl.kind))
    updated = backend.update(created.remote_id, key, paused)
    assert updated.remote_id == created.remote_id
    assert_reports(impl, updated, key, paused)
    [listed] = list_all(backend)
    assert_reports(impl, listed, key, paused)

    resumed = {**paused, "enabled": True}
    backend.update(created.remote_id, key, resumed)
    [listed] = list_all(backend)
    assert listed.remote_id == created.remote_id
    assert_reports(impl, listed, key, resumed)


def test_update_missing_raises_not_found(impl: Impl, backend: RemoteBackend) -> None:
    key = key_for(impl.kind)
    created = backend.create(key, sample(impl.kind))
    backend.delete(created.remote_id)
    with pytest.raises(NotFound):
        backend.update(created.remote_id, key, sample(impl.kind))


def test_delete_removes(impl: Impl, backend: RemoteBackend) -> None:
    keep = backend.create(key_for(impl.kind, 1), sample(impl.kind))
    gone = backend.create(key_for(impl.kind, 2), other_sample(impl))
    backend.delete(gone.remote_id)
    assert [o.remote_id for o in list_all(backend)] == [keep.remote_id]


def test_delete_missing_raises_not_found(impl: Impl, backend: RemoteBackend) -> None:
    created = backend.create(key_for(impl.kind), sample(impl.kind))
    backend.delete(created.remote_id)
    with pytest.raises(NotFound):
        backend.delete(created.remote_id)


def test_create_after_delete_makes_a_new_object(impl: Impl, backend: RemoteBackend) -> None:
    key, spec = key_for(impl.kind), sample(impl.kind)
    first = backend.create(key, spec)
    backend.delete(first.remote_id)
    second = backend.create(key, spec)
    assert [o.remote_id for o in list_all(backend)] == [second.remote_id]


def test_paging_returns_every_object_exactly_once(impl: Impl, backend: RemoteBackend) -> None:
    created = {
        backend.create(key_for(impl.kind, n), sample(impl.kind, n)).remote_id for n in range(250)
    }
    assert len(created) == 250

    pages, cursor = 0, None
    while True:
        page = backend.list(cursor=cursor, limit=100)
        assert len(page.items) <= 100
        pages += 1
        cursor = page.next_cursor
        if cursor is None:
            break
    assert pages >= 3

    listed = [o.remote_id for o in list_all(backend, page_size=100)]
    assert len(listed) == 250
    assert set(listed) == created
    if impl.reports_key:
        keys = {o.key for o in list_all(backend, page_size=100)}
        assert keys == {key_for(impl.kind, n) for n in range(250)}


# -- triggers: fields fixed at creation ------------------------------------------------------


# A realistic new value for each field fixed at creation (a fake server may validate them).
FIXED_FIELD_CHANGES: dict[str, Any] = {
    "toolkit": "slack",
    "event": "SLACK_RECEIVE_MESSAGE",
    "connected_account": "ca_456",
    "user_id": "user-2",
    "config": {"labelIds": "SPAM"},
    "webhook": "https://example.test/hooks/2",
}


def test_every_fixed_trigger_field_has_a_change() -> None:
    assert set(FIXED_FIELD_CHANGES) == REPLACE_FIELDS["trigger"]


@pytest.mark.parametrize("field", sorted(FIXED_FIELD_CHANGES))
def test_trigger_with_a_changed_fixed_field_is_a_new_object(
    trigger_backend: RemoteBackend, field: str, request: pytest.FixtureRequest
) -> None:
    impl = IMPLEMENTATIONS[request.node.callspec.params["trigger_backend"]]
    if field not in impl.distinguishes:
        pytest.skip(f"{field} is not part of this backend's identity (see Impl.distinguishes)")
    key = key_for("trigger")
    old = trigger_backend.create(key, sample("trigger"))
    changed = sample("trigger", **{field: FIXED_FIELD_CHANGES[field]})
    new = trigger_backend.create(key, changed)
    assert new.remote_id != old.remote_id
    # The old object stays until it is deleted: apply deletes it after recording the new one.
    assert {o.remote_id for o in list_all(trigger_backend)} == {old.remote_id, new.remote_id}
    again = trigger_backend.create(key, changed)
    assert again.remote_id == new.remote_id


def test_trigger_update_refuses_a_fixed_field_change(trigger_backend: RemoteBackend) -> None:
    key = key_for("trigger")
    created = trigger_backend.create(key, sample("trigger"))
    with pytest.raises(Conflict, match="config"):
        trigger_backend.update(created.remote_id, key, sample("trigger", config={"x": 1}))
    [listed] = list_all(trigger_backend)
    assert listed.spec["config"] == sample("trigger")["config"]


# -- local backend extras (not part of the contract) -----------------------------------------


def test_local_ids_are_prefixed_random_hex(tmp_path: Path) -> None:
    with (
        LocalScheduleBackend(tmp_path / "s.db") as jobs,
        LocalTriggerBackend(tmp_path / "s.db") as triggers,
    ):
        job = jobs.create(key_for("job"), sample("job"))
        trg = triggers.create(key_for("trigger"), sample("trigger"))
        assert re.fullmatch(r"job_[0-9a-f]{12}", job.remote_id)
        assert re.fullmatch(r"trg_[0-9a-f]{12}", trg.remote_id)
        assert jobs.info.detail == str(tmp_path / "s.db")
        assert (jobs.info.name, triggers.info.kind) == ("local", "trigger")


def test_local_state_persists_and_shares_the_file(tmp_path: Path) -> None:
    path = tmp_path / ".planner" / "state.db"
    with Ledger(path) as ledger, ApplyLock(path), LocalScheduleBackend(path) as jobs:
        job = jobs.create(key_for("job"), sample("job"))
        ledger.set_meta("last_revision", "abc")
    with LocalScheduleBackend(path) as jobs, LocalTriggerBackend(path) as triggers:
        assert [o.remote_id for o in list_all(jobs)] == [job.remote_id]
        assert list(list_all(triggers)) == []


def test_local_cursor_survives_deleting_the_cursor_object(tmp_path: Path) -> None:
    with LocalScheduleBackend(tmp_path / "s.db") as jobs:
        ids = sorted(jobs.create(key_for("job", n), sample("job", n)).remote_id for n in range(5))
        page = jobs.list(limit=2)
        assert page.next_cursor == ids[1]
        jobs.delete(ids[1])
        rest = jobs.list(cursor=page.next_cursor, limit=10)
        assert [o.remote_id for o in rest.items] == ids[2:]
        with pytest.raises(ValueError, match="limit"):
            jobs.list(limit=0)


def test_local_faults_fail_before_writing(tmp_path: Path) -> None:
    faults = LocalFaults(fail_next=[RetryableError("429", status=429, retry_after=2.0)])
    with LocalScheduleBackend(tmp_path / "s.db", faults=faults) as jobs:
        with pytest.raises(RetryableError) as err:
            jobs.create(key_for("job"), sample("job"))
        assert err.value.retry_after == 2.0
        assert list(list_all(jobs)) == []
        jobs.create(key_for("job"), sample("job"))  # the next attempt goes through
        assert len(list(list_all(jobs))) == 1
        assert faults.calls == [("create", key_for("job"))] * 2


def test_local_commit_then_fail_lands_the_write(tmp_path: Path) -> None:
    faults = LocalFaults(commit_then_fail=True)
    with LocalTriggerBackend(tmp_path / "s.db", faults=faults) as triggers:
        with pytest.raises(UnknownOutcome):
            triggers.create(key_for("trigger"), sample("trigger"))
        [landed] = list_all(triggers)
        # Retrying the create after the unknown outcome finds the same object: no duplicate.
        retried = triggers.create(key_for("trigger"), sample("trigger"))
        assert retried.remote_id == landed.remote_id
        assert faults.commit_then_fail is False

        faults.commit_then_fail = True
        with pytest.raises(UnknownOutcome):
            triggers.delete(landed.remote_id)
        assert list(list_all(triggers)) == []


def test_local_fail_list(tmp_path: Path) -> None:
    faults = LocalFaults(fail_list=[RetryableError("503", status=503)])
    with LocalScheduleBackend(tmp_path / "s.db", faults=faults) as jobs:
        with pytest.raises(RetryableError):
            jobs.list()
        assert jobs.list().items == ()


def test_local_set_state_simulates_drift(tmp_path: Path) -> None:
    with (
        LocalScheduleBackend(tmp_path / "s.db") as jobs,
        LocalTriggerBackend(tmp_path / "s.db") as triggers,
    ):
        job = jobs.create(key_for("job"), sample("job"))
        jobs.set_state(job.remote_id, "paused", "paused in the dashboard")
        [drifted] = list_all(jobs)
        assert (drifted.state, drifted.reason) == ("paused", "paused in the dashboard")
        assert drifted.spec["enabled"] is False

        jobs.set_state(job.remote_id, "active")
        [back] = list_all(jobs)
        assert (back.state, back.spec["enabled"]) == ("active", True)

        trg = triggers.create(key_for("trigger"), sample("trigger"))
        triggers.set_state(trg.remote_id, "error", "connected account revoked")
        [broken] = list_all(triggers)
        assert (broken.state, broken.reason) == ("error", "connected account revoked")
        assert dict(broken.spec) == sample("trigger")

        # An apply (update) puts it back and clears the reason.
        triggers.update(trg.remote_id, key_for("trigger"), sample("trigger"))
        [fixed] = list_all(triggers)
        assert (fixed.state, fixed.reason) == ("active", None)

        with pytest.raises(ValueError, match="state"):
            triggers.set_state(trg.remote_id, "paused")
        with pytest.raises(NotFound):
            jobs.set_state("job_000000000000", "paused")


def test_local_job_update_refuses_a_key_taken_by_another_job(tmp_path: Path) -> None:
    with LocalScheduleBackend(tmp_path / "s.db") as jobs:
        a = jobs.create(key_for("job", 1), sample("job"))
        jobs.create(key_for("job", 2), sample("job"))
        with pytest.raises(Conflict, match=re.escape(key_for("job", 2))):
            jobs.update(a.remote_id, key_for("job", 2), sample("job"))
