"""Reconcile 1,000 jobs + 1,000 triggers across 200 files on the embedded backend.

Measures each phase (load, read actual, plan, apply) for a full reconcile from empty state and
for a no-op reconcile of the same files, once with the state in SQLite files and once in
PostgreSQL (``bench.pg``: the ledger, the apply lock and the embedded backend's tables all in one
schema, as ``state.open`` lays them out). Target from the issue: no-op under 1 s.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from bench import pg
from planner_operator.backends import local
from planner_operator.backends.select import Backends
from planner_operator.config import desired
from planner_operator.core.settings import Settings
from planner_operator.reconcile import plan, source
from planner_operator.reconcile.apply import Applier
from planner_operator.reconcile.engine import read_actual
from planner_operator.state import open as state_open

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
    backends = embedded(settings)
    try:
        with (
            state_open.ledger(settings) as ledger,
            state_open.apply_lock(settings, timeout=5),
        ):
            actual, t_actual = timed(lambda: read_actual(backends))
            the_plan, t_plan = timed(lambda: plan.plan(wanted, actual, ledger.entries()))
            applier = Applier(backends.by_kind, ledger, revision="bench")
            result, t_apply = timed(lambda: applier.apply(the_plan))
            assert not result.failed
    finally:
        backends.close()
    return Phases(t_load, t_actual, t_plan, t_apply, len(result.items))


def embedded(settings: Settings) -> Backends:
    """The embedded backends, their tables where the rest of the state is (a file, or the
    database: ``select`` keeps them in ``state.db``, the one-machine stand-in for a remote)."""
    where = state_open.backend_state(settings, local.COMPONENT)
    jobs = local.LocalScheduleBackend(where)
    triggers = local.LocalTriggerBackend(where)
    return Backends({"job": jobs, "trigger": triggers}, [jobs, triggers])


def run(database_url: str | None = None) -> dict[str, Phases]:
    """Full then no-op reconcile; on PostgreSQL at ``database_url`` when given."""
    with tempfile.TemporaryDirectory() as tmp:
        agents = Path(tmp) / "agents"
        write_agents(agents)
        at = Settings.at(Path(tmp) / "state")
        settings = Settings(at.state_dir, at.state_db, at.ledger_db, database_url=database_url)
        full = reconcile_once(agents, settings)
        noop = reconcile_once(agents, settings)
    assert full.changes == FILES * (JOBS_PER_FILE + TRIGGERS_PER_FILE)
    assert noop.changes == 0
    return {"full": full, "noop": noop}


@dataclass(frozen=True)
class Engines:
    """One benchmark run on each engine (``postgres`` None without a server)."""

    sqlite: dict[str, Phases]
    postgres: dict[str, Phases] | None = None
    server: str = ""  # which PostgreSQL, for the report


def run_both() -> Engines:
    sqlite = run()
    with pg.cluster() as server:
        if server is None:
            return Engines(sqlite)
        with pg.schema(server) as url:
            return Engines(sqlite, run(url), pg.description(url))


def main() -> None:
    both = run_both()
    for engine, phases in (("sqlite", both.sqlite), ("postgres", both.postgres)):
        for name, p in (phases or {}).items():
            print(
                f"{engine} {name}: load {p.load:.3f} read {p.read_actual:.3f} plan {p.plan:.3f} "
                f"apply {p.apply:.3f} total {p.total:.3f} ({p.changes} changes)"
            )
    print(both.server)


if __name__ == "__main__":
    main()
