"""A remote to edit: a bare repository holding the example agents, and a clone to push from."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import git
import pytest

from planner_operator.backends.select import open_backends
from planner_operator.core.clock import ManualClock
from planner_operator.core.settings import Settings
from planner_operator.edit import gitops, propose
from planner_operator.edit.forge import Forge
from planner_operator.edit.target import Config, Mode, Target
from tests.server.api.status_state import MONDAY
from tests.support.git_remote import seeded_remote

AGENTS = Path(__file__).resolve().parents[2] / "agents"
AUTHOR = gitops.Author("Planner Bot", "bot@example.com")


@dataclass
class Remote:
    bare: Path
    work: git.Repo  # a person's clone, to make the commits an edit must not overwrite

    def commit(self, path: str, text: str, message: str) -> str:
        """Push a commit changing ``path`` from the person's clone; its sha."""
        self.work.git.pull("-q", "--rebase", "origin", "main")
        file = Path(self.work.working_dir) / path
        file.write_text(text)
        self.work.index.add([path])
        self.work.index.commit(message)
        self.work.git.push("-q", "origin", "HEAD:main")
        return str(self.work.head.commit.hexsha)

    def show(self, rev: str, path: str) -> str:
        with git.Repo(self.bare) as repo:
            return str(repo.git.show(f"{rev}:{path}"))

    def head(self, branch: str = "main") -> git.Commit:
        with git.Repo(self.bare) as repo:
            return repo.commit(f"refs/heads/{branch}")


@pytest.fixture
def remote(tmp_path: Path) -> Iterator[Remote]:
    bare, work = seeded_remote(tmp_path)
    yield Remote(bare, work)
    work.close()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings.resolve(state_dir=tmp_path / "state", env={})


def editor(
    settings: Settings,
    *,
    path: Path | None = None,
    repo: str | None = None,
    mode: Mode | None = None,
    forge: Forge | None = None,
) -> propose.Editor:
    target = Target(path=path, repo=repo)
    config = Config(mode or target.default_mode, AUTHOR, forge)
    return propose.Editor(
        target,
        config,
        settings,
        backends_factory=lambda s: open_backends(s, env={}),
        clock=ManualClock(MONDAY),
    )


JOB = {
    "schedule": "0 7 * * 1-5",
    "description": "Weekday pipeline check.",
    "action": {"chat": {"template": "Good morning: {weekday} pipeline check."}},
}
