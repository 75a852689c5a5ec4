"""Objects left by an interrupted create, end to end through ``reconcile`` on the embedded backend.

A create cut off between the remote write and the ledger write leaves an object no ledger row
owns. The write-ahead intent recorded before the write says it is ours: the next run adopts it
while its key is declared and deletes it once the key is gone (file deleted, job renamed),
under the usual safety rules. Objects no intent covers are never touched.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from planner_operator.backends.base import RemoteObject, list_all
from planner_operator.backends.local import LocalFaults, LocalScheduleBackend, LocalTriggerBackend
from planner_operator.backends.select import Backends
from planner_operator.core.canonical import spec_hash
from planner_operator.core.records import Intent
from planner_operator.core.settings import Settings
from planner_operator.reconcile.apply import RetryPolicy
from planner_operator.reconcile.engine import Outcome, SourceSpec, reconcile
from planner_operator.reconcile.plan import Op
from planner_operator.server.operator import local_jobs
from planner_operator.state.ledger import Ledger

NO_WAIT = RetryPolicy(attempts=2, base_delay=0.0, max_delay=0.0)
LEFT = "left by an interrupted create at "


class SimulatedCrash(Exception):
    """Stands in for SIGKILL: not a PlannerError, so nothing in apply catches it."""


class CrashAfterWrites(LocalFaults):
    """Dies right after the k-th remote write committed, before the ledger hears of it."""

    def __init__(self, writes: int) -> None:
        super().__init__()
        self.left = writes

    def after_write(self, operation: str, target: str) -> None:
        self.left -= 1
        if self.left <= 0:
            raise SimulatedCrash(f"after {operation} {target}")


def job(name: str, schedule: str = "@hourly") -> str:
    return (
        f'    - name: {name}\n      schedule: "{schedule}"\n'
        '      action: {chat: {template: "hello {date}"}}\n'
    )


def trigger(name: str, label: str) -> str:
    return (
        f"    - name: {name}\n      toolkit: gmail\n      event: GMAIL_NEW_GMAIL_MESSAGE\n"
        f"      connected_account: ca_1\n      config: {{labelIds: {label}}}\n"
        '      action: {chat: {template: "mail {subject}"}}\n'
    )


class Workspace:
    def __init__(self, root: Path) -> None:
        self.agents = root / "agents"
        self.agents.mkdir()
        self.settings = Settings.resolve(state_dir=root / "state", env={})

    def write(self, agent: str, jobs: str = "", triggers: str = "") -> None:
        body = f"name: Agent {agent}\nplanner:\n"
        body += f"  jobs:\n{jobs}" if jobs else "  jobs: []\n"
        body += f"  triggers:\n{triggers}" if triggers else "  triggers: []\n"
        (self.agents / f"{agent}.yaml").write_text(body, encoding="utf-8")

    def backends(self, faults: LocalFaults | None = None) -> Backends:
        jobs = LocalScheduleBackend(self.settings.state_db, faults=faults)
        triggers = LocalTriggerBackend(self.settings.state_db, faults=faults)
        return Backends({"job": jobs, "trigger": triggers}, [jobs, triggers])

    def reconcile(
        self,
        faults: LocalFaults | None = None,
        *,
        dry_run: bool = False,
        retry: RetryPolicy = NO_WAIT,
    ) -> Outcome:
        return reconcile(
            SourceSpec(path=self.agents),
            self.settings,
            dry_run=dry_run,
            retry=retry,
            backends_factory=lambda _: self.backends(faults),
        )

    def crash(self, faults: LocalFaults) -> None:
        with pytest.raises(SimulatedCrash):
            self.reconcile(faults)

    def remote(self) -> list[RemoteObject]:
        opened = self.backends()
        try:
            return [o for b in opened.by_kind.values() for o in list_all(b)]
        finally:
            opened.close()

    def remote_keys(self) -> list[str]:
        return sorted(str(o.key) for o in self.remote())

    def ledger(self) -> Ledger:
        return Ledger(self.settings.ledger_db)

    def owned_ids(self) -> set[str]:
        with self.ledger() as ledger:
            return {e.remote_id for e in ledger.entries()}

    def intents(self) -> list[Intent]:
        with self.ledger() as ledger:
            return ledger.intents()


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    return Workspace(tmp_path)


def interrupted_create(ws: Workspace) -> RemoteObject:
    """alpha/jobs/two is created remotely, then the run dies before the ledger hears of it."""
    ws.write("alpha", job("one"))
    ws.write("beta", job("one"))
    assert ws.reconcile().applied is not None
    ws.write("alpha", job("one") + job("two", "@daily"))
    ws.crash(CrashAfterWrites(1))
    [leftover] = [o for o in ws.remote() if o.key == "alpha/jobs/two"]
    assert leftover.remote_id not in ws.owned_ids()
    assert [(i.key, i.backend) for i in ws.intents()] == [("alpha/jobs/two", "local")]
    return leftover


def test_leftover_is_deleted_on_the_next_run_after_its_file_is_removed(ws: Workspace) -> None:
    leftover = interrupted_create(ws)
    # the embedded scheduler would fire it until a run deals with it
    assert "alpha/jobs/two" in {j.key for j in local_jobs(ws.settings.state_db)()}
    (ws.agents / "alpha.yaml").unlink()
    preview = ws.reconcile(dry_run=True).plan
    [gone] = [
        c for c in preview.actionable if c.remote and c.remote.remote_id == leftover.remote_id
    ]
    assert (gone.op, gone.key, gone.owned) == (Op.DELETE, "alpha/jobs/two", None)
    assert gone.reason.startswith(LEFT)
    assert preview.unmanaged == ()

    outcome = ws.reconcile()
    assert outcome.applied is not None and outcome.applied.ok
    assert ws.remote_keys() == ["beta/jobs/one"]
    assert ws.intents() == []
    assert {j.key for j in local_jobs(ws.settings.state_db)()} == {"beta/jobs/one"}
    assert not ws.reconcile(dry_run=True).plan.has_changes


def test_leftover_is_adopted_while_its_key_is_still_declared(ws: Workspace) -> None:
    leftover = interrupted_create(ws)
    [adopt] = ws.reconcile(dry_run=True).plan.actionable
    assert (adopt.op, adopt.takes_over) == (Op.CREATE, leftover.remote_id)
    assert adopt.notes[-1].startswith(f"takes over {leftover.remote_id}, {LEFT}")

    assert ws.reconcile().applied is not None
    assert ws.remote_keys() == ["alpha/jobs/one", "alpha/jobs/two", "beta/jobs/one"]
    assert leftover.remote_id in ws.owned_ids()  # the same object, now owned: no duplicate
    assert ws.intents() == []
    assert not ws.reconcile(dry_run=True).plan.has_changes


def test_leftover_of_a_renamed_job_is_deleted_and_the_new_name_created(ws: Workspace) -> None:
    leftover = interrupted_create(ws)
    ws.write("alpha", job("one") + job("renamed", "@daily"))
    outcome = ws.reconcile()
    assert outcome.applied is not None and outcome.applied.ok
    assert ws.remote_keys() == ["alpha/jobs/one", "alpha/jobs/renamed", "beta/jobs/one"]
    assert leftover.remote_id not in {o.remote_id for o in ws.remote()}
    assert ws.intents() == []


def test_leftover_of_a_timed_out_create_is_deleted_once_its_file_is_removed(
    ws: Workspace,
) -> None:
    ws.write("beta", job("one"))
    ws.reconcile()
    ws.write("alpha", job("one"))
    failed = ws.reconcile(LocalFaults(commit_then_fail=True), retry=RetryPolicy(attempts=1)).applied
    assert failed is not None and not failed.ok  # landed, then timed out: outcome unknown
    assert "alpha/jobs/one" in ws.remote_keys() and len(ws.intents()) == 1
    (ws.agents / "alpha.yaml").unlink()
    assert ws.reconcile().applied is not None
    assert ws.remote_keys() == ["beta/jobs/one"] and ws.intents() == []


def test_interrupted_replace_leftover_is_deleted_when_the_config_goes_back(ws: Workspace) -> None:
    ws.write("alpha", triggers=trigger("mail", "INBOX"))
    ws.reconcile()
    [inbox] = ws.remote()
    ws.write("alpha", triggers=trigger("mail", "SPAM"))
    ws.crash(CrashAfterWrites(1))  # the new SPAM object exists, the ledger still has INBOX
    assert len(ws.remote()) == 2
    ws.write("alpha", triggers=trigger("mail", "INBOX"))
    [change] = ws.reconcile(dry_run=True).plan.actionable
    assert change.op is Op.DELETE and change.reason.startswith(LEFT)
    ws.reconcile()
    assert ws.remote() == [inbox] and ws.intents() == []


def test_interrupted_replace_is_finished_by_taking_over_its_new_object(ws: Workspace) -> None:
    ws.write("alpha", triggers=trigger("mail", "INBOX"))
    ws.reconcile()
    ws.write("alpha", triggers=trigger("mail", "SPAM"))
    ws.crash(CrashAfterWrites(1))
    [spam] = [o for o in ws.remote() if o.spec["config"] == {"labelIds": "SPAM"}]
    [change] = ws.reconcile(dry_run=True).plan.actionable
    assert (change.op, change.takes_over) == (Op.REPLACE, spam.remote_id)
    ws.reconcile()
    assert ws.remote() == [spam] and ws.owned_ids() == {spam.remote_id}
    assert ws.intents() == []


def test_leftover_is_kept_while_a_file_fails_to_load(ws: Workspace) -> None:
    leftover = interrupted_create(ws)
    ws.write("alpha", job("one"))  # alpha/jobs/two is no longer declared...
    (ws.agents / "beta.yaml").write_text("name: [unclosed\n", encoding="utf-8")  # ...but
    outcome = ws.reconcile()
    [blocked] = outcome.plan.blocked
    assert blocked.remote == leftover and blocked.blocked is not None
    assert "fail to load" in blocked.blocked
    assert leftover.remote_id in {o.remote_id for o in ws.remote()}
    assert len(ws.intents()) == 1  # still ours: the next clean run deletes it
    ws.write("beta", job("one"))
    ws.reconcile()
    assert ws.remote_keys() == ["alpha/jobs/one", "beta/jobs/one"] and ws.intents() == []


def test_unowned_object_with_no_intent_is_untouched(ws: Workspace) -> None:
    ws.write("alpha", job("one"))
    ws.reconcile()
    opened = ws.backends()
    try:  # someone else made an object under one of our keys; nothing announced it
        theirs = opened.by_kind["job"].create(
            "alpha/jobs/two", {"schedule": "@daily", "timezone": "UTC", "enabled": True}
        )
    finally:
        opened.close()
    outcome = ws.reconcile()
    assert theirs in outcome.plan.unmanaged
    assert theirs in ws.remote()


def test_intent_on_another_backend_does_not_claim_a_local_object(ws: Workspace) -> None:
    ws.write("alpha", job("one"))
    ws.reconcile()
    spec = {"schedule": "@daily", "timezone": "UTC", "enabled": True}
    opened = ws.backends()
    try:
        theirs = opened.by_kind["job"].create("alpha/jobs/two", spec)
    finally:
        opened.close()
    with ws.ledger() as ledger:  # an interrupted create of the same key, on Inngest
        ledger.write_intent(
            Intent("alpha/jobs/two", "job", "inngest", spec_hash(spec), spec, "rev")
        )
    outcome = ws.reconcile()
    assert outcome.applied is not None and outcome.applied.ok
    assert theirs in outcome.plan.unmanaged and theirs in ws.remote()
    assert [i.backend for i in ws.intents()] == ["inngest"]  # not this run's to settle
