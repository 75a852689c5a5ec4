"""Two appliers on one PostgreSQL database, each from a state directory of its own (slow suite).

As two CI runners would: separate checkouts and state directories, one shared database. The
apply lock is the database's (an advisory lock), so exactly one applies; the other waits for
its ``--lock-timeout`` and fails naming the holder (holder, pid, host). Everything the plan
reads lives in the shared database, so a third, fresh directory plans no changes afterwards.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from planner_operator.core.settings import Settings
from planner_operator.state import open as state_open

ROOT = Path(__file__).resolve().parents[2]
FILES = 300  # an apply long enough to be caught holding the lock

JOB = """\
name: Agent {n}
timezone: Europe/Berlin
planner:
  jobs:
    - name: daily
      schedule: "0 9 * * *"
      action: {{chat: {{template: "Hello {{date}}"}}}}
"""


def reconcile(agents: Path, state: Path, url: str, *args: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PLANNER_", "INNGEST_"))}
    env.update(PYTHONPATH=str(ROOT), PLANNER_DATABASE_URL=url)
    command = [sys.executable, "-m", "planner_operator", "reconcile", "--path", str(agents)]
    return subprocess.Popen(
        [*command, "--state-dir", str(state), *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.slow
def test_two_appliers_on_one_database_exactly_one_applies(tmp_path: Path, pg_url: str) -> None:
    agents = tmp_path / "agents"
    agents.mkdir()
    for n in range(FILES):
        (agents / f"a{n}.yaml").write_text(JOB.format(n=n), encoding="utf-8")
    first = reconcile(agents, tmp_path / "runner-1", pg_url, "--yes")
    settings = Settings.resolve(state_dir=tmp_path / "probe", env={"PLANNER_DATABASE_URL": pg_url})
    probe = state_open.apply_lock(settings)  # only looks: never acquired
    try:
        deadline = time.monotonic() + 120
        while (holder := probe.current()) is None:
            assert first.poll() is None, first.communicate()
            assert time.monotonic() < deadline, "the first applier never took the lock"
            time.sleep(0.02)
    finally:
        probe.close()
    started = time.monotonic()
    second = reconcile(agents, tmp_path / "runner-2", pg_url, "--yes", "--lock-timeout", "1")
    out2, err2 = second.communicate(timeout=120)
    waited = time.monotonic() - started
    out1, err1 = first.communicate(timeout=300)
    assert first.returncode == 0, err1
    assert f"Apply: {FILES} change(s) applied, 0 failed." in out1
    assert second.returncode == 1, (out2, err2)
    assert "another apply holds the lock 'apply'" in err2
    # the holder, as a person deciding what to do needs it: who, which process, where
    assert holder.pid == first.pid and holder.host == socket.gethostname()
    assert f"{holder.holder} (pid {first.pid} on {socket.gethostname()}," in err2
    assert waited >= 1.0, "the second applier waited for its --lock-timeout first"
    assert "Apply:" not in out2  # it applied nothing
    fresh = reconcile(agents, tmp_path / "fresh", pg_url, "--dry-run", "--detailed-exitcode")
    out3, err3 = fresh.communicate(timeout=300)
    assert fresh.returncode == 0 and "No changes." in out3, (out3, err3)
