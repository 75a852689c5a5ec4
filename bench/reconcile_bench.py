"""Reconcile 1,000 jobs + 1,000 triggers across 200 files (and ten times that) on the embedded
backend, with the parse cache.

Phases (load, read actual, plan, apply) of a full reconcile from empty state and a cold parse
cache, of a no-op reconcile of the same files (a new cache handle on the same store: what a
new ``planner-operator reconcile`` process or the next watch cycle sees), and of a reconcile
after one file changed. Targets (issue 20): the no-op reconcile costs at most 20% of the cold
load, at 200 and at 2,000 files; after one edit, only that file is parsed.
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
from planner_operator.reconcile import parsecache, plan, source
from planner_operator.reconcile.apply import Applier
from planner_operator.reconcile.engine import read_actual
from planner_operator.state import open as state_open

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
    parsed: int  # files parsed (not taken from the parse cache)
    cpu_load: float = 0.0  # CPU seconds of the load phase, and of the whole run: on a shared
    cpu_total: float = 0.0  # machine these are the cost, wall time is also the neighbours'

    @property
    def total(self) -> float:
        return self.load + self.read_actual + self.plan + self.apply


def agent_text(f: int, variant: int = 0) -> str:
    jobs = "".join(
        f"    - name: job-{j}\n"
        f'      schedule: "{(j + variant) % 60} {9 + j} * * 1-5"\n'
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
    return (
        f"name: Agent {f}\nvariables: {{team: team-{f}}}\n"
        f"planner:\n  jobs:\n{jobs}  triggers:\n{triggers}"
    )


def write_agents(directory: Path, files: int = 200) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for f in range(files):
        (directory / f"agent-{f:04d}.yaml").write_text(agent_text(f), encoding="utf-8")


def timed(fn: Callable[[], T]) -> tuple[T, float]:
    start = time.perf_counter()
    value = fn()
    return value, time.perf_counter() - start


def reconcile_once(agents: Path, settings: Settings, *, cached: bool = True) -> Phases:
    """One reconcile, phase by phase; ``cached`` uses the parse cache in the state."""
    parsed = 0

    def load() -> dict[str, desired.DesiredResource]:
        nonlocal parsed
        snapshot = source.read_worktree(agents)
        if cached:
            with state_open.parse_cache(settings) as store:
                cache = parsecache.FileCache(store)
                files = source.load(snapshot.files, cache)
            parsed = len(cache.parsed)
        else:
            files = source.load(snapshot.files)
            parsed = len(files)
        assert not any(f.errors for f in files), [str(e) for f in files for e in f.errors]
        return desired.build(files)

    cpu = time.process_time()
    wanted, t_load = timed(load)
    cpu_load = time.process_time() - cpu
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
    cpu_total = time.process_time() - cpu
    return Phases(t_load, t_actual, t_plan, t_apply, len(result.items), parsed, cpu_load, cpu_total)


def embedded(settings: Settings) -> Backends:
    """The embedded backends, their tables where the rest of the state is (a file, or the
    database: ``select`` keeps them in ``state.db``, the one-machine stand-in for a remote)."""
    where = state_open.backend_state(settings, local.COMPONENT)
    jobs = local.LocalScheduleBackend(where)
    triggers = local.LocalTriggerBackend(where)
    return Backends({"job": jobs, "trigger": triggers}, [jobs, triggers])


def run(
    files: int = 200, *, keep: Path | None = None, database_url: str | None = None
) -> dict[str, Phases]:
    """Cold load without a cache, full reconcile (cold cache), no-op, one file edited; on
    PostgreSQL at ``database_url`` when given.

    ``keep``: the state directory to leave the applied state in (the memory benchmark's)."""
    with tempfile.TemporaryDirectory() as tmp:
        agents = Path(tmp) / "agents"
        write_agents(agents, files)
        at = Settings.at(keep or Path(tmp) / "state")
        settings = Settings(at.state_dir, at.state_db, at.ledger_db, database_url=database_url)
        snapshot = source.read_worktree(agents)
        cpu = time.process_time()
        _, uncached = timed(lambda: desired.build(source.load(snapshot.files)))
        uncached_cpu = time.process_time() - cpu
        full = reconcile_once(agents, settings)
        noop = reconcile_once(agents, settings)
        (agents / "agent-0000.yaml").write_text(agent_text(0, variant=1), encoding="utf-8")
        edited = reconcile_once(agents, settings)
    assert full.changes == files * (JOBS_PER_FILE + TRIGGERS_PER_FILE)
    assert full.parsed == files and noop.changes == 0 and noop.parsed == 0
    assert edited.parsed == 1 and edited.changes == JOBS_PER_FILE
    return {
        "uncached": Phases(uncached, 0.0, 0.0, 0.0, 0, files, uncached_cpu, uncached_cpu),
        "full": full,
        "noop": noop,
        "edited": edited,
    }


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
            return Engines(sqlite, run(database_url=url), pg.description(url))


def main() -> None:
    both = run_both()
    for engine, phases in (("sqlite", both.sqlite), ("postgres", both.postgres)):
        for name, p in (phases or {}).items():
            print(
                f"{engine} {name}: load {p.load:.3f} read {p.read_actual:.3f} plan {p.plan:.3f} "
                f"apply {p.apply:.3f} total {p.total:.3f} ({p.changes} changes, "
                f"{p.parsed} parsed)"
            )
    print(both.server)


if __name__ == "__main__":
    main()
