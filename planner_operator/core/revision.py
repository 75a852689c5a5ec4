"""Which version of the desired state a plan describes (kept apart so the planner needs no git)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Revision:
    """What a plan was made from: a commit, or the work tree (possibly with local edits)."""

    kind: str  # "git" | "worktree"
    location: str
    sha: str | None = None
    ref: str | None = None
    dirty: bool = False

    def __str__(self) -> str:
        if self.kind == "git" and self.sha:
            ref = f" ({self.ref})" if self.ref and self.ref != self.sha else ""
            return f"{self.sha[:12]}{ref}"
        base = f"work tree {self.location}"
        if self.sha:
            base += f" at {self.sha[:12]}"
        return base + (" (dirty)" if self.dirty else "")

    @property
    def id(self) -> str:
        """Short, stored in the ledger per applied resource."""
        if self.kind == "git" and self.sha:
            return self.sha
        return f"worktree:{self.sha or '-'}{'+dirty' if self.dirty else ''}"
