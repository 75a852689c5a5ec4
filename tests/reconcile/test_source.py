"""Reading desired state from the work tree and from git revisions."""

from __future__ import annotations

import os
from pathlib import Path

import git

from planner_operator.reconcile import source

JOB = 'name: A\nplanner:\n  jobs:\n    - name: daily\n      schedule: "0 9 * * *"\n'


def git_children() -> list[str]:
    """Command lines of this process's live ``git`` children (Linux /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == os.getpid() and cmdline.startswith("git"):
            found.append(cmdline)
    return found


def test_reads_leave_no_git_helper_running(tmp_path: Path) -> None:
    repo = git.Repo.init(tmp_path / "repo")
    (tmp_path / "repo" / "agents").mkdir()
    (tmp_path / "repo" / "agents" / "a.yaml").write_text(JOB)
    repo.index.add(["agents/a.yaml"])
    repo.index.commit("add a")
    repo.close()
    snapshot = source.read_git(tmp_path / "repo", "HEAD", "agents")
    assert [f.display for f in snapshot.files] == ["agents/a.yaml"]
    worktree = source.read_worktree(tmp_path / "repo" / "agents")
    assert worktree.revision.sha == snapshot.revision.sha and not worktree.revision.dirty
    assert git_children() == []  # `git cat-file --batch` helpers closed, not left to the GC
