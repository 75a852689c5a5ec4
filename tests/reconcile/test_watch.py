"""Watch mode: file changes and git polling, with broken input and a fetch outage."""

from __future__ import annotations

import json
import queue
import shutil
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import git
import pytest

from planner_operator.core.settings import Settings
from planner_operator.read.status import collect, render_text
from planner_operator.reconcile.engine import SourceSpec
from planner_operator.reconcile.plan import PlanOptions
from planner_operator.reconcile.watch import Cycle, GitWatcher, record, run_cycle, watch_files
from planner_operator.state import db
from planner_operator.state.ledger import Ledger
from planner_operator.state.lock import ApplyLock

JOB = (
    'name: A{n}\nplanner:\n  jobs:\n    - name: daily\n      schedule: "{cron}"\n'
    '      action: {{chat: {{template: "hi"}}}}\n'
)


def agent(n: int, cron: str = "0 9 * * *") -> str:
    return JOB.format(n=n, cron=cron)


def applied(settings: Settings) -> dict[str, str]:
    with Ledger(settings.ledger_db) as ledger:
        return {e.key: str(e.spec["schedule"]) for e in ledger.entries(include_retired=False)}


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings.resolve(state_dir=tmp_path / "state", env={})


def test_file_watch_reconciles_changes_and_freezes_broken_files(
    tmp_path: Path, settings: Settings
) -> None:
    agents = tmp_path / "agents"
    agents.mkdir()
    (agents / "a1.yaml").write_text(agent(1))
    (agents / "a2.yaml").write_text(agent(2))
    cycles: queue.Queue[Cycle] = queue.Queue()
    stop = threading.Event()
    thread = threading.Thread(
        target=watch_files,
        args=(agents, settings),
        kwargs={"debounce_ms": 50, "stop": stop, "on_cycle": cycles.put},
        daemon=True,
    )
    thread.start()
    try:
        first = cycles.get(timeout=20)
        assert first.trigger == "start" and first.ok and "2 create" in first.summary
        (agents / "a1.yaml").write_text(agent(1, "0 10 * * *"))  # edit
        edit = cycles.get(timeout=20)
        assert edit.ok and "1 update" in edit.summary
        (agents / "a2.yaml").write_text("name: [broken\n")  # corrupt
        broken = cycles.get(timeout=20)
        assert not broken.ok and "a2.yaml" in broken.summary
        assert applied(settings) == {"a1/jobs/daily": "0 10 * * *", "a2/jobs/daily": "0 9 * * *"}
        (agents / "a2.yaml").write_text(agent(2, "0 11 * * *"))  # restore with an edit
        restored = cycles.get(timeout=20)
        assert restored.ok and "1 update" in restored.summary
        (agents / "a3.yaml").write_text(agent(3))  # add
        assert "1 create" in cycles.get(timeout=20).summary
        (agents / "a3.yaml").unlink()  # delete
        assert "1 delete" in cycles.get(timeout=20).summary
        assert applied(settings) == {"a1/jobs/daily": "0 10 * * *", "a2/jobs/daily": "0 11 * * *"}
    finally:
        stop.set()
        thread.join(timeout=10)


@pytest.fixture
def remote(tmp_path: Path) -> tuple[git.Repo, Path]:
    bare = tmp_path / "remote.git"
    git.Repo.init(bare, bare=True, initial_branch="main")
    work = git.Repo.clone_from(str(bare), tmp_path / "work")
    with work.config_writer() as cfg:
        cfg.set_value("user", "name", "t").set_value("user", "email", "t@example.com")
    (tmp_path / "work" / "agents").mkdir()
    return work, bare


def push(work: git.Repo, files: dict[str, str], message: str, *, force: bool = False) -> str:
    root = Path(work.working_dir) / "agents"
    for name, text in files.items():
        (root / name).write_text(text)
    work.git.add(A=True)
    sha = str(work.index.commit(message).hexsha)
    work.git.push("origin", "HEAD:main", *(["--force"] if force else []))
    return sha


def test_git_watch_one_reconcile_per_commit_force_push_and_outage(
    remote: tuple[git.Repo, Path], settings: Settings, tmp_path: Path
) -> None:
    work, bare = remote
    first = push(work, {"a1.yaml": agent(1)}, "one")
    watcher = GitWatcher(str(bare), "main", settings, interval=1.0)
    cycle = watcher.poll_once()
    assert cycle is not None and cycle.ok and first[:12] in cycle.revision
    assert watcher.poll_once() is None  # same sha: nothing to do
    second = push(work, {"a1.yaml": agent(1, "0 12 * * *")}, "two")
    cycle = watcher.poll_once()
    assert cycle is not None and second[:12] in cycle.revision and "1 update" in cycle.summary

    # force-push rewrites history back to a new commit on top of the first
    work.git.reset("--hard", first)
    rewritten = push(work, {"a1.yaml": agent(1, "0 7 * * *")}, "rewrite", force=True)
    cycle = watcher.poll_once()
    assert cycle is not None and rewritten[:12] in cycle.revision
    assert applied(settings) == {"a1/jobs/daily": "0 7 * * *"}

    # outage: the remote disappears; keep the last good revision, back off, change nothing
    hidden = tmp_path / "hidden.git"
    shutil.move(str(bare), hidden)
    base_delay = watcher.delay()
    failed = watcher.poll_once()
    assert failed is not None and not failed.ok and failed.trigger == "fetch"
    assert rewritten[:12] in failed.summary and watcher.failures == 1
    assert watcher.last_error is not None and "fetch" in watcher.last_error
    record(settings, failed)
    report = collect(settings, now=datetime.now(UTC))
    assert report.watch_last_error is not None and "fetch" in report.watch_last_error["error"]
    assert "Watch: last error:" in render_text(report)
    assert watcher.poll_once() is not None and watcher.failures == 2
    assert watcher.delay() > base_delay * 2
    assert applied(settings) == {"a1/jobs/daily": "0 7 * * *"}
    for _ in range(12):
        watcher.poll_once()
    assert watcher.delay() <= 300 * 1.1  # capped at 5 minutes (+ jitter)

    # recovery: a commit pushed during the outage is applied on the first good fetch
    shutil.move(str(hidden), bare)
    latest = push(work, {"a1.yaml": agent(1, "0 8 * * *")}, "during outage")
    cycle = watcher.poll_once()
    assert cycle is not None and latest[:12] in cycle.revision and watcher.failures == 0
    assert applied(settings) == {"a1/jobs/daily": "0 8 * * *"}


def test_git_watch_broken_commit_is_not_destructive(
    remote: tuple[git.Repo, Path], settings: Settings
) -> None:
    work, bare = remote
    push(work, {"a1.yaml": agent(1), "a2.yaml": agent(2)}, "two agents")
    watcher = GitWatcher(str(bare), "main", settings)
    assert watcher.poll_once() is not None
    push(work, {"a1.yaml": "planner: [\n", "a2.yaml": agent(2, "0 6 * * *")}, "broken a1")
    cycle = watcher.poll_once()
    assert cycle is not None and not cycle.ok and "a1.yaml" in cycle.summary
    assert applied(settings) == {"a1/jobs/daily": "0 9 * * *", "a2/jobs/daily": "0 6 * * *"}
    # deleting every file at once is an empty desired state: nothing is deleted
    root = Path(work.working_dir) / "agents"
    for f in root.glob("*.yaml"):
        f.unlink()
    work.git.add(A=True)
    work.index.commit("delete all")
    work.git.push("origin", "HEAD:main")
    cycle = watcher.poll_once()
    assert cycle is not None and not cycle.ok and "refused" in cycle.summary
    assert set(applied(settings)) == {"a1/jobs/daily", "a2/jobs/daily"}


def test_push_wakes_the_poller(remote: tuple[git.Repo, Path], settings: Settings) -> None:
    work, bare = remote
    push(work, {"a1.yaml": agent(1)}, "one")
    watcher = GitWatcher(str(bare), "main", settings, interval=3600)
    seen: list[Cycle] = []

    def consume() -> None:
        for cycle in watcher.cycles():
            seen.append(cycle)
            if len(seen) == 2:
                watcher.stop.set()

    thread = threading.Thread(target=consume, daemon=True)
    thread.start()
    while not seen:
        threading.Event().wait(0.05)
    push(work, {"a1.yaml": agent(1, "0 5 * * *")}, "two")
    watcher.wake.set()  # what POST /hooks/git does
    thread.join(timeout=30)
    assert not thread.is_alive()  # stop ends the generator without another interval's sleep
    assert [c.trigger for c in seen] == ["start", "push"]
    with Ledger(settings.ledger_db) as ledger:
        assert json.loads(ledger.get_meta("last_reconcile") or "{}")["counts"]["update"] == 1


def test_each_applied_change_is_logged_with_its_resource_and_fields(
    tmp_path: Path, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    from planner_operator.reconcile import plan as plan_mod
    from planner_operator.reconcile.engine import SourceSpec
    from planner_operator.reconcile.watch import run_cycle

    agents = tmp_path / "agents"
    agents.mkdir()
    (agents / "a1.yaml").write_text(agent(1))
    spec, options = SourceSpec(path=agents), plan_mod.PlanOptions()
    with caplog.at_level("INFO", logger="planner_operator"):
        run_cycle(spec, settings, options, "start")
        (agents / "a1.yaml").write_text(agent(1, "0 10 * * *"))
        run_cycle(spec, settings, options, "change")
    messages = [r.getMessage() for r in caplog.records]
    assert "  create a1/jobs/daily: ok" in messages
    assert "  update a1/jobs/daily (schedule): ok" in messages


def test_a_cycle_that_took_over_a_stale_lock_says_so(tmp_path: Path, settings: Settings) -> None:
    agents = tmp_path / "agents"
    agents.mkdir()
    (agents / "a1.yaml").write_text(agent(1))
    ApplyLock(settings.ledger_db).close()
    conn = db.connect(settings.ledger_db)
    with db.transaction(conn):  # the row an apply killed two hours ago on another host left
        conn.execute(
            "INSERT INTO locks (name, holder, pid, host, started_at, token) "
            "VALUES ('apply', 'ci@runner', 7, 'runner.example', ?, 'left')",
            ((datetime.now(UTC) - timedelta(hours=2)).isoformat(),),
        )
    conn.close()
    cycle = run_cycle(SourceSpec(path=agents), settings, PlanOptions(), "start")
    assert cycle.ok and "1 create" in cycle.summary
    assert "took over the stale apply lock 'apply' held by ci@runner" in cycle.summary
    assert "2 h old" in cycle.summary
