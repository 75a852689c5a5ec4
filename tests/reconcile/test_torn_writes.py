"""A save caught half-way deletes nothing (issue 17 item 11), in watch mode and ``--path``.

A file cut at a line boundary often still loads, without its last jobs or triggers; before the
fix, 21 of the 146 line-boundary truncations of the example agents (in one directory) planned
deletes or replaces (up to 3, under the mass-delete limit) and applied them, and restoring the
file re-created the triggers with new remote ids. Now a work-tree file is planned only once two
reads a settle time apart agree, and a delete is applied only when a read a settle time later
plans it too.

The unit tests run the watch's own cycle on a :class:`ManualClock` whose ``sleep`` is where the
writer gets to continue, so "the writer paused for longer than the settle time" is exact, and
free. The last test is the real thing: watchfiles, real time, a real torn save.
"""

from __future__ import annotations

import functools
import queue
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from planner_operator.core.clock import ManualClock
from planner_operator.core.settings import Settings
from planner_operator.reconcile import confirm
from planner_operator.reconcile.engine import SourceSpec, reconcile
from planner_operator.reconcile.plan import Change, Op, Plan, PlanOptions
from planner_operator.reconcile.watch import Cycle, run_cycle, watch_files
from planner_operator.state.ledger import Ledger

EXAMPLES = Path(__file__).resolve().parents[2] / "agents"
SETTLE = 0.2  # the watch's default debounce


class WriterClock(ManualClock):
    """A clock whose n-th sleep lets a writer act: ``then[n]`` runs as that sleep begins."""

    def __init__(self) -> None:
        super().__init__()
        self.then: dict[int, Callable[[], object]] = {}

    def sleep(self, seconds: float) -> None:
        action = self.then.pop(len(self.slept), None)
        super().sleep(seconds)
        if action is not None:
            action()


@dataclass
class Tree:
    directory: Path
    settings: Settings

    @property
    def spec(self) -> SourceSpec:
        return SourceSpec(path=self.directory, settle=SETTLE)

    def cycle(self, clock: ManualClock) -> Cycle:
        return run_cycle(self.spec, self.settings, PlanOptions(), "files", clock=clock)

    def owned(self) -> dict[str, str]:
        """Every applied resource and its remote id: a re-create changes the id."""
        with Ledger(self.settings.ledger_db) as ledger:
            return {e.key: e.remote_id for e in ledger.entries(include_retired=False)}


@pytest.fixture
def tree(tmp_path: Path) -> Tree:
    """The example agents, applied to the embedded backend."""
    directory = tmp_path / "agents"
    shutil.copytree(EXAMPLES, directory)
    settings = Settings.resolve(state_dir=tmp_path / "state", env={})
    applied = Tree(directory, settings)
    first = applied.cycle(ManualClock())
    assert first.ok and "create" in first.summary, first
    return applied


def truncations(path: Path) -> Iterator[bytes]:
    """Every line-boundary prefix of the file, from empty to one line short."""
    lines = path.read_bytes().splitlines(keepends=True)
    for n in range(len(lines)):
        yield b"".join(lines[:n])


@pytest.mark.parametrize("example", sorted(p.name for p in EXAMPLES.glob("*.yaml")))
def test_no_line_boundary_truncation_written_mid_watch_deletes_anything(
    tree: Tree, example: str
) -> None:
    path = tree.directory / example
    whole = path.read_bytes()
    before = tree.owned()
    would_delete = 0
    for cut in truncations(path):
        # The writer pauses for longer than the settle time: two reads agree on the cut file,
        # so only the confirmation read, a settle time later, sees the rest of it.
        clock = WriterClock()
        clock.then[1] = lambda: path.write_bytes(whole)
        path.write_bytes(cut)
        cycle = tree.cycle(clock)
        assert tree.owned() == before, (cut.decode()[-200:], cycle)
        assert "delete" not in cycle.summary and "replace" not in cycle.summary, cycle
        would_delete += len(clock.slept) >= 2  # a plan had deletes: it was confirmed
        if path.read_bytes() != whole:  # nothing was planned to delete: no second look
            path.write_bytes(whole)
            if cycle.summary != "no changes":  # an update (a template cut short) went out
                assert tree.cycle(ManualClock()).ok
    assert would_delete, "some cut of the file loaded and planned a delete"


def test_a_writer_still_at_work_during_the_settle_is_waited_for(tree: Tree) -> None:
    path = tree.directory / "sales-agent.yaml"
    whole = path.read_bytes()
    before = tree.owned()
    clock = WriterClock()
    clock.then[0] = lambda: path.write_bytes(whole)  # finishes between the first two reads
    path.write_bytes(whole[: whole.index(b"    - name: deal-stage-changed")])
    cycle = tree.cycle(clock)
    assert cycle.ok and cycle.summary == "no changes", cycle
    assert tree.owned() == before
    assert clock.slept == [SETTLE, SETTLE]  # read, wait, read (differs), wait, read (agrees)


def test_a_real_delete_is_applied_after_the_confirmation_read(tree: Tree) -> None:
    path = tree.directory / "sales-agent.yaml"
    whole = path.read_bytes()
    before = tree.owned()
    path.write_bytes(whole[: whole.index(b"    - name: deal-stage-changed")])  # for good
    clock = WriterClock()
    cycle = tree.cycle(clock)
    assert cycle.ok and "1 delete" in cycle.summary, cycle
    gone = "sales-agent/triggers/deal-stage-changed"
    assert tree.owned() == {k: v for k, v in before.items() if k != gone}
    # settled read (read, wait, read), the confirmation wait, the second settled read
    assert clock.slept == [SETTLE] * 3


def test_a_file_that_never_stops_changing_is_frozen_and_named(tree: Tree) -> None:
    path = tree.directory / "sales-agent.yaml"
    whole = path.read_bytes()
    before = tree.owned()
    clock = WriterClock()
    for n in range(10):  # a new cut at every read
        clock.then[n] = functools.partial(path.write_bytes, whole[: len(whole) - 40 * (n + 1)])
    cycle = tree.cycle(clock)
    assert not cycle.ok and "sales-agent.yaml" in cycle.summary, cycle
    assert tree.owned() == before
    outcome = reconcile(tree.spec, tree.settings, dry_run=True, clock=clock)
    [error] = outcome.plan.load_errors
    assert "kept changing while it was read" in str(error) and error.file.endswith(
        "sales-agent.yaml"
    )


def test_reconcile_path_confirms_deletes_too(tmp_path: Path) -> None:
    """One-shot ``reconcile --path`` reads the work tree the same way (PLANNER_WORKTREE_SETTLE)."""
    from planner_operator.cli import commands

    directory = tmp_path / "agents"
    shutil.copytree(EXAMPLES, directory)
    settings = Settings.resolve(state_dir=tmp_path / "state", env={})
    args = commands.ReconcileArgs(
        source=SourceSpec(path=directory),
        settings=settings,
        dry_run=False,
        check=False,
        detailed_exitcode=False,
        fmt="text",
        options=PlanOptions(),
        yes=True,
    )
    assert commands.reconcile(args) == 0
    path = directory / "sales-agent.yaml"
    whole = path.read_bytes()
    path.write_bytes(whole[: whole.index(b"    - name: deal-stage-changed")])
    started = time.monotonic()
    assert commands.reconcile(args) == 0
    assert time.monotonic() - started >= 3 * 0.2  # two settled reads and the wait between


def change(op: Op, key: str) -> Change:
    return Change(op, key, "trigger", "test")


def test_a_delete_seen_only_in_the_last_plan_is_held() -> None:
    plans = iter(
        [
            Plan((change(Op.DELETE, "a/triggers/x"), change(Op.DELETE, "a/triggers/y"))),
            Plan((change(Op.DELETE, "a/triggers/y"), change(Op.DELETE, "a/triggers/z"))),
        ]
    )
    first = Plan((change(Op.DELETE, "a/triggers/x"),))
    clock = ManualClock()
    held = confirm.confirmed(first, lambda: next(plans), settle=0.5, clock=clock, rounds=2)
    assert [(c.key, c.blocked) for c in held.changes] == [
        ("a/triggers/y", None),  # planned twice in a row: confirmed
        ("a/triggers/z", confirm.HELD),
    ]
    assert held.refusals == (confirm.HELD,) and not held.ok
    assert clock.slept == [0.5, 0.5]


def test_creates_and_updates_are_not_delayed() -> None:
    plan = Plan((change(Op.CREATE, "a/triggers/x"), change(Op.UPDATE, "a/jobs/y")))
    clock = ManualClock()
    assert confirm.confirmed(plan, lambda: pytest.fail("re-planned"), settle=1, clock=clock) == plan
    assert clock.slept == []


def quiet(cycles: queue.Queue[Cycle], *, for_seconds: float = 1.5) -> list[Cycle]:
    """The cycles that come until none has come for ``for_seconds``."""
    seen = []
    while True:
        try:
            seen.append(cycles.get(timeout=for_seconds))
        except queue.Empty:
            return seen


def test_a_torn_save_under_a_real_watch_deletes_nothing(tree: Tree) -> None:
    """watchfiles and real time: the cut file stays on disk longer than the debounce."""
    path = tree.directory / "sales-agent.yaml"
    whole = path.read_bytes()
    before = tree.owned()
    cycles: queue.Queue[Cycle] = queue.Queue()
    stop = threading.Event()
    thread = threading.Thread(
        target=watch_files,
        args=(tree.directory, tree.settings),
        kwargs={"debounce_ms": int(SETTLE * 1000), "stop": stop, "on_cycle": cycles.put},
        daemon=True,
    )
    thread.start()
    try:
        assert cycles.get(timeout=20).summary == "no changes"
        path.write_bytes(whole[: whole.index(b"    - name: deal-stage-changed")])
        time.sleep(SETTLE * 2)  # a writer that pauses past the settle time
        path.write_bytes(whole)
        seen = quiet(cycles)
        assert seen and all("delete" not in c.summary for c in seen), seen
        assert tree.owned() == before
        path.write_bytes(whole[: whole.index(b"    - name: deal-stage-changed")])  # for good
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and "sales-agent/triggers/deal-stage-changed" in (
            tree.owned()
        ):
            seen.append(cycles.get(timeout=20))
        assert "1 delete" in seen[-1].summary, seen
    finally:
        stop.set()
        thread.join(timeout=10)
