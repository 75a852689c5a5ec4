"""Where an edit goes and what a save does there, decided once at start from flags and env.

``run --path DIR`` edits the work tree (the watcher applies the new file); ``run --repo URL``
edits the remote: a branch and a pull request by default, so a save from the dashboard is
reviewed like any other change, or a commit to the watched branch (``PLANNER_EDIT_MODE=
commit``) for a one-person setup. ``off`` keeps the API read-only. A mode that cannot work
with the source (``commit`` on a work tree) is refused at start, not at the first save.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from planner_operator.core import variables
from planner_operator.edit import forge as forge_mod
from planner_operator.edit.gitops import Author
from planner_operator.errors import SourceError
from planner_operator.reconcile import plan as plan_mod

Mode = Literal["pr", "commit", "worktree", "off"]


@dataclass(frozen=True)
class Target:
    """The agent source the operator follows: a directory, or a branch of a git remote."""

    path: Path | None = None
    repo: str | None = None
    branch: str = "main"
    subdir: str = "agents"
    # the watcher's plan options (--allow-mass-delete...), so a save previews the plan it gets
    options: plan_mod.PlanOptions = field(default_factory=plan_mod.PlanOptions)

    def __post_init__(self) -> None:
        if (self.path is None) == (self.repo is None):
            raise SourceError("an edit target is a directory (--path) or a remote (--repo)")

    @property
    def default_mode(self) -> Mode:
        return "pr" if self.repo is not None else "worktree"


@dataclass(frozen=True)
class Config:
    mode: Mode
    author: Author
    forge: forge_mod.Forge | None = None  # pr mode: where pull requests are opened

    @classmethod
    def from_env(cls, target: Target, env: Mapping[str, str]) -> Config:
        """The mode for ``target`` (``PLANNER_EDIT_MODE`` or the target's default), checked."""
        chosen = variables.EDIT_MODE.read(env)
        mode: Mode = target.default_mode
        if chosen in ("pr", "commit", "worktree", "off"):
            mode = chosen  # type: ignore[assignment]  # narrowed by the membership test
        if target.repo is not None and mode == "worktree":
            raise SourceError(
                "PLANNER_EDIT_MODE=worktree needs `run --path DIR`; "
                "with --repo use `pr` or `commit`"
            )
        if target.path is not None and mode in ("pr", "commit"):
            raise SourceError(
                f"PLANNER_EDIT_MODE={mode} needs `run --repo URL`; with --path edits are written "
                "to the work tree (`worktree`), or refused (`off`)"
            )
        author = Author.parse(variables.EDIT_AUTHOR.read(env))
        forge = forge_mod.GitHub.from_env(env) if mode == "pr" else None
        return cls(mode, author, forge)
