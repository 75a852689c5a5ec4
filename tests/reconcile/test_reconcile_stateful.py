"""The reconciler as a state machine: random edits, faults and crashes, then the safety rules.

Hypothesis drives a directory of agent files and the embedded backend through sequences of
steps: add or edit a file, corrupt one, delete one, create objects in the backend that the
operator does not own, change owned objects behind its back, arm faults for the next run (500,
429 with Retry-After, a timeout before or after the write landed, a failed list, a crash after
k writes), and reconcile the way the CLI does (``reconcile.reconcile`` with
``--allow-mass-delete``). After every run:

* objects the operator does not own are untouched, and the state files pass an integrity check;
* an owned object leaves the ledger only by being deleted, and no key has two active ledger
  rows: a fault or crash may leave work undone, never lose track of what exists;
* after a run with no faults: files that load converge (remote spec == desired spec, owned),
  a broken file's resources are left exactly as they were, and nothing is deleted while any
  file fails to load; with no load errors either, remote == desired over the agent keys, with
  one object per key, none unowned (not even one a crash left mid-create), no retired
  leftovers, and a second plan has no changes.
"""

from __future__ import annotations

import shutil
import sqlite3
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from planner_operator.backends.base import RemoteObject, list_all
from planner_operator.backends.local import LocalFaults, LocalScheduleBackend, LocalTriggerBackend
from planner_operator.backends.select import Backends
from planner_operator.core.keys import Kind
from planner_operator.core.settings import Settings
from planner_operator.errors import BackendError, PlannerError, RetryableError, UnknownOutcome
from planner_operator.reconcile.apply import ItemResult, RetryPolicy
from planner_operator.reconcile.engine import Outcome, SourceSpec, read_desired, reconcile
from planner_operator.reconcile.plan import PlanOptions
from planner_operator.state.ledger import Ledger

AGENTS = ("alpha", "beta", "gamma")
NAMES = ("one", "two")
SCHEDULES = ("0 9 * * *", "30 6 * * 1-5", "@hourly")
LABELS = ("INBOX", "SPAM")  # part of a trigger's identity: changing it is a replace
TEMPLATES = ("mail {subject}", "new mail from {sender}")  # an in-place update
KINDS: tuple[Kind, ...] = ("job", "trigger")
NO_RETRY_WAIT = RetryPolicy(attempts=4, base_delay=0.0, max_delay=0.0)


class SimulatedCrash(Exception):
    """Stands in for SIGKILL: not a PlannerError, so nothing in apply catches it."""


class CrashAfterWrites(LocalFaults):
    """Dies right after the k-th backend write committed, before the ledger hears of it."""

    def __init__(self, writes: int) -> None:
        super().__init__()
        self.left = writes

    def after_write(self, operation: str, target: str) -> None:
        self.left -= 1
        if self.left <= 0:
            raise SimulatedCrash(f"after {operation} {target}")
        super().after_write(operation, target)


JOBS = st.dictionaries(
    st.sampled_from(NAMES), st.tuples(st.sampled_from(SCHEDULES), st.booleans()), max_size=2
)
TRIGGERS = st.dictionaries(
    st.sampled_from(NAMES),
    st.tuples(st.sampled_from(LABELS), st.sampled_from(TEMPLATES)),
    max_size=2,
)
FAULTS = st.lists(
    st.sampled_from(
        [
            RetryableError("500 internal error (injected)", backend="local", status=500),
            RetryableError("429 (injected)", backend="local", status=429, retry_after=0),
            UnknownOutcome("timed out before the write (injected)", backend="local"),
        ]
    ),
    min_size=1,
    max_size=6,  # more than RetryPolicy.attempts in a row fails that item
)


def agent_text(
    agent: str, jobs: Mapping[str, tuple[str, bool]], triggers: Mapping[str, Any]
) -> str:
    lines = [f"name: Agent {agent}", "planner:", "  jobs:" if jobs else "  jobs: []"]
    for name, (schedule, enabled) in sorted(jobs.items()):
        lines += [
            f"    - name: {name}",
            f'      schedule: "{schedule}"',
            f"      enabled: {str(enabled).lower()}",
            '      action: {chat: {template: "hello {date}"}}',
        ]
    lines.append("  triggers:" if triggers else "  triggers: []")
    for name, (label, template) in sorted(triggers.items()):
        lines += [
            f"    - name: {name}",
            "      toolkit: gmail",
            "      event: GMAIL_NEW_GMAIL_MESSAGE",
            f"      connected_account: ca_{agent}",
            f"      config: {{labelIds: {label}}}",
            f'      action: {{chat: {{template: "{template}"}}}}',
        ]
    return "\n".join(lines) + "\n"


class ReconcilerMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.root = Path(tempfile.mkdtemp(prefix="reconcile-stateful-"))
        self.agents = self.root / "agents"
        self.agents.mkdir()
        self.settings = Settings.resolve(state_dir=self.root / "state", env={})
        self.files: dict[str, str] = {}  # agent -> "ok" | "broken"
        self.keys: dict[str, set[str]] = {}  # agent -> keys its file declares (when ok)
        self.unowned: dict[tuple[Kind, str], tuple[str, dict[str, Any]]] = {}
        self.faults: LocalFaults | None = None
        self.crash_after_items: int | None = None

    def teardown(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)

    # -- the world changes --------------------------------------------------------------------

    @initialize(files=st.dictionaries(st.sampled_from(AGENTS), st.tuples(JOBS, TRIGGERS)))
    def start_applied(self, files: dict[str, tuple[dict[str, Any], dict[str, Any]]]) -> None:
        """Most sequences start from applied agents: the interesting steps come sooner."""
        for agent, (jobs, triggers) in files.items():
            self.write_file(agent, jobs, triggers)
        self.reconcile()

    @rule(agent=st.sampled_from(AGENTS), jobs=JOBS, triggers=TRIGGERS)
    def write_file(self, agent: str, jobs: dict[str, Any], triggers: dict[str, Any]) -> None:
        if not jobs and not triggers:
            jobs = {"one": ("@hourly", True)}
        (self.agents / f"{agent}.yaml").write_text(agent_text(agent, jobs, triggers))
        self.files[agent] = "ok"
        self.keys[agent] = {f"{agent}/jobs/{n}" for n in jobs} | {
            f"{agent}/triggers/{n}" for n in triggers
        }

    @precondition(lambda self: bool(self.files))
    @rule(data=st.data())
    def corrupt_file(self, data: st.DataObject) -> None:
        agent = data.draw(st.sampled_from(sorted(self.files)))
        text = data.draw(st.sampled_from(["name: [unclosed\n", "name: A\nplanner: {jobs: 3}\n"]))
        (self.agents / f"{agent}.yaml").write_text(text)
        self.files[agent] = "broken"
        self.keys.pop(agent, None)

    @precondition(lambda self: bool(self.files))
    @rule(data=st.data())
    def delete_file(self, data: st.DataObject) -> None:
        agent = data.draw(st.sampled_from(sorted(self.files)))
        (self.agents / f"{agent}.yaml").unlink()
        del self.files[agent]
        self.keys.pop(agent, None)

    @rule(kind=st.sampled_from(KINDS), n=st.integers(0, 3))
    def add_unowned_object(self, kind: Kind, n: int) -> None:
        spec: dict[str, Any] = (
            {"schedule": "0 1 * * *", "timezone": "UTC", "enabled": True}
            if kind == "job"
            else {"toolkit": "gmail", "event": "GMAIL_NEW_GMAIL_MESSAGE", "config": {"n": n}}
        )
        key = f"someone-else-{n}/{kind}s/theirs"
        with self.backends(LocalFaults()) as backends:
            made = backends.by_kind[kind].create(key, spec)
        self.unowned[(kind, made.remote_id)] = (key, dict(made.spec))

    @rule(
        agent=st.sampled_from(AGENTS),
        name=st.sampled_from(NAMES),
        how=st.sampled_from(["pause", "delete"]),
    )
    def change_owned_job_behind_our_back(self, agent: str, name: str, how: str) -> None:
        """Someone pauses or deletes a job in a dashboard (drawn by name, not from remote
        state: remote ids are random, and draws must not depend on them)."""
        found = [o for o in self.remote() if o.kind == "job" and o.key == f"{agent}/jobs/{name}"]
        with LocalScheduleBackend(self.settings.state_db) as backend:
            for target in found:
                if how == "pause":
                    backend.set_state(target.remote_id, "paused", "paused in a dashboard")
                else:
                    backend.delete(target.remote_id)

    # -- faults for the next run --------------------------------------------------------------

    @rule(
        how=st.sampled_from(
            ["fail writes", "write landed, then timeout", "fail listing", "crash", "crash later"]
        ),
        errors=FAULTS,
        k=st.integers(1, 6),
    )
    def arm_fault_for_next_run(self, how: str, errors: list[BackendError], k: int) -> None:
        """Fail writes with 500/429/timeout; time out after a write landed; fail the listing;
        crash after k remote writes (before the ledger hears) or after k recorded items."""
        self.faults, self.crash_after_items = None, None
        if how == "fail writes":
            self.faults = LocalFaults(fail_next=list(errors))
        elif how == "write landed, then timeout":
            self.faults = LocalFaults(commit_then_fail=True)
        elif how == "fail listing":
            self.faults = LocalFaults(fail_list=[RetryableError("503 (injected)", status=503)])
        elif how == "crash":
            self.faults = CrashAfterWrites(k)
        else:
            self.crash_after_items = k

    # -- the run and what must hold after it --------------------------------------------------

    @rule()
    def reconcile(self) -> None:
        faults, self.faults = self.faults, None
        crash_after, self.crash_after_items = self.crash_after_items, None
        faulted = faults is not None or crash_after is not None
        before = {o.remote_id: o for o in self.remote() if self.ours(o)}
        owned_before = self.owned_ids()

        def progress(index: int, total: int, item: ItemResult) -> None:
            if crash_after is not None and index >= crash_after:
                raise SimulatedCrash(f"after item {index} of {total}")

        outcome: Outcome | None = None
        try:
            outcome = reconcile(
                SourceSpec(path=self.agents),
                self.settings,
                options=PlanOptions(allow_mass_delete=True),
                progress=progress,
                retry=NO_RETRY_WAIT,
                backends_factory=lambda s: self.open_backends(faults or LocalFaults()),
            )
        except (SimulatedCrash, PlannerError):
            assert faulted, "only an injected fault may stop a run"
        self.check_safe(owned_before)
        if not faulted:
            assert outcome is not None
            self.check_converged(outcome, before)

    def check_safe(self, owned_before: set[tuple[Kind, str]]) -> None:
        remote = self.remote()
        owned = self.owned_ids()
        for obj in remote:  # an object can leave the ledger only by being deleted first
            lost = (obj.kind, obj.remote_id) in owned_before - owned
            assert not lost, f"{obj.key}: {obj.remote_id} still exists but is no longer owned"
        by_id = {(o.kind, o.remote_id): o for o in remote}
        for (kind, remote_id), (key, spec) in self.unowned.items():
            theirs = by_id.get((kind, remote_id))
            assert theirs is not None, f"unowned {kind} {remote_id} was deleted"
            assert (theirs.key, theirs.spec) == (key, spec), f"unowned {remote_id} was changed"
        active = [e.key for e in self.ledger_entries() if not e.retired]
        assert len(active) == len(set(active)), "a key has two active objects"
        for path in (self.settings.ledger_db, self.settings.state_db):
            with sqlite3.connect(path) as conn:
                assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)

    def check_converged(self, outcome: Outcome, before: Mapping[str, RemoteObject]) -> None:
        wanted = read_desired(SourceSpec(path=self.agents))
        broken = {a for a, state in self.files.items() if state == "broken"}
        assert {r.key for r in wanted.resources.values()} == set().union(*self.keys.values())
        remote = [o for o in self.remote() if self.ours(o)]
        by_key = {str(o.key): o for o in remote}
        by_id = {o.remote_id: o for o in remote}  # a cut-off replace leaves two objects per key
        active = {e.key: e for e in self.ledger_entries() if not e.retired}
        for key, resource in wanted.resources.items():
            assert key in by_key and by_key[key].spec == dict(resource.spec), key
            assert active[key].remote_id == by_key[key].remote_id, key
        for old in before.values():
            key = str(old.key)
            if key.split("/")[0] in broken:  # frozen: exactly as it was
                assert by_id.get(old.remote_id) == old, f"{key} changed while its file is broken"
            if broken or not wanted.resources:  # nothing deleted: a load error or empty desired
                # by key: a replace (new object, old one deleted) is an update, not a prune
                assert key in by_key, f"{key} deleted during a run that must not prune"
        if broken or not wanted.resources:
            return
        assert outcome.applied is not None and outcome.applied.ok, outcome.applied
        entries = self.ledger_entries()
        owned_ids = {(e.kind, e.remote_id) for e in entries}
        untracked = [o.remote_id for o in remote if (o.kind, o.remote_id) not in owned_ids]
        assert not untracked, f"agent objects nobody owns (left by a crash?): {untracked}"
        assert sorted(by_key) == sorted(str(o.key) for o in remote), "two objects for one key"
        assert set(by_key) == set(wanted.resources) == set(active)
        assert not [e for e in entries if e.retired]
        again = reconcile(SourceSpec(path=self.agents), self.settings, dry_run=True)
        assert not again.plan.has_changes, [c.key for c in again.plan.actionable]

    def owned_ids(self) -> set[tuple[Kind, str]]:
        return {(e.kind, e.remote_id) for e in self.ledger_entries()}

    @invariant()
    def ledger_opens(self) -> None:
        with Ledger(self.settings.ledger_db) as ledger:
            ledger.entries()

    # -- helpers -------------------------------------------------------------------------------

    def open_backends(self, faults: LocalFaults) -> Backends:
        jobs = LocalScheduleBackend(self.settings.state_db, faults=faults)
        triggers = LocalTriggerBackend(self.settings.state_db, faults=faults)
        return Backends({"job": jobs, "trigger": triggers}, [jobs, triggers])

    @contextmanager
    def backends(self, faults: LocalFaults) -> Iterator[Backends]:
        opened = self.open_backends(faults)
        try:
            yield opened
        finally:
            opened.close()

    def remote(self) -> list[RemoteObject]:
        with self.backends(LocalFaults()) as backends:
            return [o for b in backends.by_kind.values() for o in list_all(b)]

    def ledger_entries(self) -> list[Any]:
        with Ledger(self.settings.ledger_db) as ledger:
            return list(ledger.entries())

    @staticmethod
    def ours(obj: RemoteObject) -> bool:
        return str(obj.key).split("/")[0] in AGENTS


FAST = settings(
    max_examples=50,
    stateful_step_count=20,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
ReconcilerMachine.TestCase.settings = FAST
test_reconciler_state_machine = ReconcilerMachine.TestCase


class LongReconcilerMachine(ReconcilerMachine):
    pass


LongReconcilerMachine.TestCase.settings = settings(FAST, max_examples=300, stateful_step_count=40)
test_reconciler_state_machine_long = pytest.mark.slow(LongReconcilerMachine.TestCase)


def test_orphan_of_an_interrupted_create_is_deleted_once_its_key_is_gone() -> None:
    """A create cut off between the remote write and the ledger write left an unowned object;
    its write-ahead intent marks it as ours, so it goes once the agent is removed."""
    machine = ReconcilerMachine()
    try:
        machine.write_file("alpha", {"one": ("@hourly", True)}, {})
        machine.write_file("beta", {"one": ("@hourly", True)}, {})
        machine.reconcile()
        machine.write_file("alpha", {"one": ("@hourly", True), "two": ("@daily", True)}, {})
        machine.arm_fault_for_next_run("crash", [], 1)  # dies right after creating alpha/two
        machine.reconcile()
        (machine.agents / "alpha.yaml").unlink()  # the agent is removed before the next run
        del machine.files["alpha"]
        del machine.keys["alpha"]
        machine.reconcile()
        assert [o.key for o in machine.remote()] == ["beta/jobs/one"]
    finally:
        machine.teardown()
