"""Reconcile 1,000 jobs + 1,000 triggers across 200 files on the embedded backend.

Measures each phase (load, read actual, plan, apply) for a full reconcile from empty state and
for a no-op reconcile of the same files. Target from the issue: no-op under 1 s.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from planner_operator.backends.select import open_backends
from planner_operator.config import desired
from planner_operator.core.settings import Settings
from planner_operator.reconcile import plan, source
from planner_operator.reconcile.apply import Applier
from planner_operator.reconcile.engine import read_actual
from planner_operator.state.ledger import Ledger
from planner_operator.state.lock import ApplyLock

FILES = 200
JOBS_PER_FILE = 5
TRIGGERS_PER_FILE = 5
T = TypeVar("T")


@dataclass(frozen=True)
class Phases:
    load: float
    read_actual: float
    plan: float
    apply: float
    changes: int

    @property
    def total(self) -> float:
        return self.load + self.read_actual + self.plan + self.apply


def write_agents(directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for f in range(FILES):
        jobs = "".join(
            f"    - name: job-{j}\n"
            f'      schedule: "{j} {9 + j} * * 1-5"\n'
            "      timezone: Europe/Berlin\n"
            "      action:\n"
            "        chat:\n"
            '          template: "Daily check {n} for {team} on {date}"\n'
            f"          variables: {{n: {j}}}\n"
            for j in range(JOBS_PER_FILE)
        )
        triggers = "".join(
            f"    - name: trigger-{t}\n"
            "      toolkit: gmail\n"
            "      event: GMAIL_NEW_GMAIL_MESSAGE\n"
            f"      connected_account: ca_{f}\n"
            f"      config: {{labelIds: LABEL_{t}}}\n"
            "      filter: {sender: {contains: recruit}}\n"
            '      action: {chat: {template: "Mail: {subject} from {sender}"}}\n'
            for t in range(TRIGGERS_PER_FILE)
        )
        text = (
            f"name: Agent {f}\nvariables: {{team: team-{f}}}\n"
            f"planner:\n  jobs:\n{jobs}  triggers:\n{triggers}"
        )
        (directory / f"agent-{f:03d}.yaml").write_text(text, encoding="utf-8")


def timed(fn: Callable[[], T]) -> tuple[T, float]:
    start = time.perf_counter()
    value = fn()
    return value, time.perf_counter() - start


def reconcile_once(agents: Path, settings: Settings) -> Phases:
    def load() -> dict[str, desired.DesiredResource]:
        snapshot = source.read_worktree(agents)
        files = source.load(snapshot.files)
        assert not any(f.errors for f in files), [str(e) for f in files for e in f.errors]
        return desired.build(files)

    wanted, t_load = timed(load)
    backends = open_backends(settings)
    try:
        with Ledger(settings.ledger_db) as ledger, ApplyLock(settings.ledger_db, timeout=5):
            actual, t_actual = timed(lambda: read_actual(backends))
            the_plan, t_plan = timed(lambda: plan.plan(wanted, actual, ledger.entries()))
            applier = Applier(backends.by_kind, ledger, revision="bench")
            result, t_apply = timed(lambda: applier.apply(the_plan))
            assert not result.failed
    finally:
        backends.close()
    return Phases(t_load, t_actual, t_plan, t_apply, len(result.items))


def run() -> dict[str, Phases]:
    with tempfile.TemporaryDirectory() as tmp:
        agents = Path(tmp) / "agents"
        write_agents(agents)
        settings = Settings.resolve(state_dir=Path(tmp) / "state", env={})
        full = reconcile_once(agents, settings)
        noop = reconcile_once(agents, settings)
    assert full.changes == FILES * (JOBS_PER_FILE + TRIGGERS_PER_FILE)
    assert noop.changes == 0
    return {"full": full, "noop": noop}
