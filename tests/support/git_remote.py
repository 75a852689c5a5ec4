"""A local bare repository standing in for the agents' remote, with a person's clone of it.

The edit tests (API and browser) start from the same history: the example agents committed by
"A Person" and pushed to ``main`` of the bare repository, as a team's repo looks before the
first edit from the dashboard.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import git

AGENTS = Path(__file__).resolve().parents[2] / "agents"


def seeded_remote(root: Path) -> tuple[Path, git.Repo]:
    """``root/remote.git`` holding the example agents on ``main``, and the clone that pushed
    them (``root/person``; the caller closes it)."""
    bare = root / "remote.git"
    git.Repo.init(bare, bare=True, initial_branch="main").close()
    person = git.Repo.init(root / "person", initial_branch="main")
    with person.config_writer() as config:
        config.set_value("user", "name", "A Person")
        config.set_value("user", "email", "person@example.com")
    shutil.copytree(AGENTS, root / "person" / "agents")
    person.index.add([f"agents/{p.name}" for p in AGENTS.glob("*.yaml")])
    person.index.commit("The example agents")
    person.create_remote("origin", str(bare))
    person.git.push("-q", "origin", "HEAD:main")
    return bare, person
