"""`reconcile` shows the plan before it acts, and applies only what someone approved.

As `terraform apply`: the plan comes first and once; on a terminal the user types `yes`; without
one (CI, a pipe) applying needs `--yes`. Run as real processes (a pipe, and a pseudo-terminal),
since what is at stake is what a person or a CI log sees, in order.
"""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest

from planner_operator.backends.base import list_all
from planner_operator.backends.local import LocalScheduleBackend

JOB = """\
name: Agent
planner:
  jobs:
    - name: daily
      schedule: "0 9 * * *"
      action: {chat: {template: "Hello {date}"}}
"""


@pytest.fixture
def agents(tmp_path: Path) -> Path:
    directory = tmp_path / "agents"
    directory.mkdir()
    (directory / "a.yaml").write_text(JOB, encoding="utf-8")
    return directory


def command(agents: Path, tmp_path: Path, *extra: str) -> list[str]:
    state = ["--state-dir", str(tmp_path / "state")]
    return [
        sys.executable,
        "-m",
        "planner_operator",
        "reconcile",
        "--path",
        str(agents),
        *state,
        *extra,
    ]


def applied(tmp_path: Path) -> int:
    db = tmp_path / "state" / "state.db"
    if not db.exists():
        return 0
    with LocalScheduleBackend(db) as jobs:
        return len(list(list_all(jobs)))


def test_without_a_terminal_applying_needs_yes_and_changes_nothing(
    agents: Path, tmp_path: Path
) -> None:
    done = subprocess.run(command(agents, tmp_path), capture_output=True, text=True, check=False)
    assert done.returncode == 1
    assert "pass --yes (or --auto-approve)" in done.stderr and "Traceback" not in done.stderr
    assert applied(tmp_path) == 0


def test_with_yes_under_a_pipe_the_plan_comes_first_and_once(agents: Path, tmp_path: Path) -> None:
    done = subprocess.run(
        command(agents, tmp_path, "--yes"),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout
    text = done.stdout
    assert text.count("Plan for ") == 1
    assert text.index("Plan for ") < text.index("[1/1] create a/jobs/daily ok")
    assert text.index("[1/1]") < text.index("Apply: 1 change(s) applied, 0 failed.")
    assert applied(tmp_path) == 1


def run_on_a_terminal(argv: list[str], answer: str) -> tuple[int, str]:
    """``argv`` with a pseudo-terminal as stdin/stdout/stderr; types ``answer`` at the prompt."""
    leader, follower = pty.openpty()
    process = subprocess.Popen(argv, stdin=follower, stdout=follower, stderr=follower)
    os.close(follower)
    seen = b""
    typed = False
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        ready, _, _ = select.select([leader], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(leader, 4096)
            except OSError:  # the child closed the terminal
                break
            if not chunk:
                break
            seen += chunk
        if not typed and b"Enter a value:" in seen:
            os.write(leader, answer.encode() + b"\n")
            typed = True
        if process.poll() is not None and not ready:
            break
    code = process.wait(timeout=30)
    os.close(leader)
    return code, seen.decode(errors="replace")


def test_on_a_terminal_anything_but_yes_cancels(agents: Path, tmp_path: Path) -> None:
    code, screen = run_on_a_terminal(command(agents, tmp_path), "y")
    assert code == 1
    assert screen.index("Plan for ") < screen.index("Do you want to apply these 1 change(s)?")
    assert "Apply cancelled: nothing was changed." in screen
    assert applied(tmp_path) == 0


def test_on_a_terminal_yes_applies(agents: Path, tmp_path: Path) -> None:
    code, screen = run_on_a_terminal(command(agents, tmp_path), "yes")
    assert code == 0, screen
    assert "Apply: 1 change(s) applied, 0 failed." in screen
    assert applied(tmp_path) == 1
    again, screen = run_on_a_terminal(command(agents, tmp_path), "never asked")
    assert again == 0 and "Enter a value" not in screen  # nothing to approve
