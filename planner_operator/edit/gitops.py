"""The git side of an edit: fetch the watched branch, read a file at a revision, make a commit
that changes one file, push it. No work tree, no checkout.

The operator follows a remote (``run --repo URL``) from a bare clone, as the watcher does, so
an edit cannot be made by editing files and running ``git commit``. Instead the commit is built
from objects: the new file becomes a blob, a temporary index is read from the parent's tree,
the blob replaces the one path, and ``write-tree`` + ``commit-tree`` make the commit. Nothing
the user has checked out anywhere is touched, and two edits at once cannot see each other's
half-written state (each has its own index file).
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import git

from planner_operator.errors import EditConflict, SourceError
from planner_operator.reconcile import watch


@dataclass(frozen=True)
class Author:
    """Who commits; from ``PLANNER_EDIT_AUTHOR`` (``Name <email>``)."""

    name: str
    email: str

    @classmethod
    def parse(cls, text: str) -> Author:
        name, _, rest = text.partition("<")
        email = rest.rstrip().removesuffix(">").strip()
        if not name.strip() or not email or "@" not in email:
            raise SourceError(
                f"PLANNER_EDIT_AUTHOR={text!r} is not `Name <email>`, "
                "e.g. `Planner Bot <planner@example.com>`"
            )
        return cls(name.strip(), email)


@dataclass(frozen=True)
class Pushed:
    sha: str
    branch: str


class Remote:
    """A bare clone of ``url`` at ``clone_dir``, for reading and committing one branch."""

    def __init__(self, url: str, clone_dir: Path) -> None:
        self.url = watch.remote_url(url)
        self.clone_dir = clone_dir

    def _repo(self) -> git.Repo:
        if (self.clone_dir / "HEAD").exists():
            return git.Repo(self.clone_dir)
        self.clone_dir.parent.mkdir(parents=True, exist_ok=True)
        try:
            return git.Repo.init(self.clone_dir, bare=True)
        except git.GitCommandError as exc:
            raise SourceError(
                f"cannot create {self.clone_dir}: {watch.git_error_line(exc)}"
            ) from exc

    def fetch(self, branch: str) -> str:
        """The branch's current sha on the remote (fetched into ``refs/heads/<branch>``)."""
        with self._repo() as repo:
            try:
                repo.git.fetch(self.url, f"+refs/heads/{branch}:refs/heads/{branch}")
                return str(repo.commit(f"refs/heads/{branch}").hexsha)
            except git.GitCommandError as exc:
                raise SourceError(
                    f"cannot fetch branch `{branch}` of {watch.safe_url(self.url)}: "
                    f"{watch.git_error_line(exc)}"
                ) from exc

    def has(self, rev: str) -> bool:
        with self._repo() as repo:
            try:
                repo.commit(rev)
            except (git.BadName, ValueError, git.GitCommandError):
                return False
            return True

    def read(self, rev: str, path: str) -> bytes | None:
        """The file at ``path`` in commit ``rev``; None when the commit has no such file."""
        with self._repo() as repo:
            try:
                blob = repo.commit(rev).tree / path
            except KeyError:
                return None
            data: bytes = blob.data_stream.read()
            return data

    def files(self, rev: str, subdir: str) -> list[tuple[str, bytes]]:
        """Every ``.yaml``/``.yml`` file directly in ``subdir`` at ``rev`` (path, bytes)."""
        with self._repo() as repo:
            try:
                tree = repo.commit(rev).tree / subdir if subdir not in ("", ".") else None
            except KeyError:
                return []
            tree = tree if tree is not None else repo.commit(rev).tree
            return [
                (b.path, b.data_stream.read())
                for b in sorted(tree.blobs, key=lambda b: b.path)
                if b.name.endswith((".yaml", ".yml"))
            ]

    def last_change(self, rev: str, path: str) -> str:
        """The newest commit at or before ``rev`` that changed ``path`` (for a conflict's
        message: the revision that made the user's base stale)."""
        with self._repo() as repo:
            try:
                return str(repo.git.log("-1", "--format=%H", rev, "--", path)).strip() or rev
            except git.GitCommandError:
                return rev

    def commit(self, parent: str, path: str, data: bytes, message: str, author: Author) -> str:
        """A commit on top of ``parent`` whose tree differs from it in ``path`` only."""
        env = {
            "GIT_AUTHOR_NAME": author.name,
            "GIT_AUTHOR_EMAIL": author.email,
            "GIT_COMMITTER_NAME": author.name,
            "GIT_COMMITTER_EMAIL": author.email,
        }
        with self._repo() as repo, tempfile.TemporaryDirectory() as scratch:
            source = Path(scratch) / "new"
            source.write_bytes(data)
            index = {"GIT_INDEX_FILE": str(Path(scratch) / "index")}
            run = repo.git
            try:
                blob = run.hash_object("-w", str(source)).strip()
                run.read_tree(parent, env=index)
                run.update_index("--add", "--cacheinfo", f"100644,{blob},{path}", env=index)
                tree = run.write_tree(env=index).strip()
                with run.custom_environment(**env):
                    sha = run.commit_tree(tree, "-p", parent, "-m", message).strip()
            except git.GitCommandError as exc:
                raise SourceError(f"cannot commit the edit: {watch.git_error_line(exc)}") from exc
            return str(sha)

    def push(self, sha: str, branch: str, *, file: str, base: str, force: bool = False) -> Pushed:
        """Push ``sha`` to ``branch``; a rejected (non-fast-forward) push is a conflict: the
        branch moved after the edit was checked against it. ``force`` only for the edit's own
        branch (a retried save replaces its earlier commit of the same change)."""
        refspec = f"{'+' if force else ''}{sha}:refs/heads/{branch}"
        with self._repo() as repo:
            try:
                repo.git.push(self.url, refspec)
            except git.GitCommandError as exc:
                text = str(exc.stderr or exc)
                if "non-fast-forward" in text or "fetch first" in text or "rejected" in text:
                    current = self._current(branch)
                    raise EditConflict(
                        f"branch `{branch}` moved while the edit was being saved (now at "
                        f"{current[:12]}): reload and save again",
                        file=file,
                        base=base,
                        current=current,
                    ) from None
                raise SourceError(
                    f"cannot push to {watch.safe_url(self.url)} ({branch}): "
                    f"{watch.git_error_line(exc)}"
                ) from exc
        return Pushed(sha, branch)

    def _current(self, branch: str) -> str:
        try:
            return self.fetch(branch)
        except SourceError:
            return "unknown"


def write_atomically(path: Path, data: bytes) -> None:
    """Write ``path`` so a reader (the watcher) sees the old file or the new one, never half:
    a temporary file in the same directory (not ending in .yaml, so the watcher ignores it),
    flushed to disk, then renamed over the old one. The old file's mode is kept."""
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = path.stat().st_mode & 0o777 if path.exists() else 0o644
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
