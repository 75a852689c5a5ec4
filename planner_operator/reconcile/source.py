"""Where desired state comes from: a directory in the work tree, or a git revision.

Reading a revision goes straight to the commit's tree with gitpython: no checkout, so the
operator can plan any revision (a PR head, main) without touching the user's work tree, and the
plan records exactly which commit it describes.

A work tree has no commits to wait for: an editor or ``cp`` may be half-way through writing a
file when it is read, and a file cut at a line boundary often still loads, with its last jobs or
triggers missing (issue 17 item 11: 21 of the 146 line-boundary truncations of the examples
planned deletes under the mass-delete limit). :func:`read_worktree_settled` therefore reads the
files until two reads a settle time apart agree; a file that keeps changing is a load error
(frozen, like any broken file) rather than a plan. Deletes get a second look in the engine.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from planner_operator.config import loader, semantic
from planner_operator.core import clock as clock_mod
from planner_operator.core.revision import Revision
from planner_operator.errors import ConfigError, SourceError
from planner_operator.reconcile import parsecache

SUFFIXES = (".yaml", ".yml")
SETTLE_READS = 5  # reads of a work tree before a file still changing is given up on


@dataclass(frozen=True)
class SourceFile:
    display: str
    data: bytes | None  # None when over the size limit (not read)
    size: int
    unsettled: float | None = None  # seconds it was watched and kept changing (not loaded)

    @property
    def cacheable(self) -> bool:
        """Whether its load depends on its name and bytes alone (``parsecache``)."""
        return self.data is not None and self.unsettled is None


@dataclass(frozen=True)
class Snapshot:
    revision: Revision
    files: tuple[SourceFile, ...]
    directory_exists: bool = True


@dataclass(frozen=True)
class Received:
    """A snapshot read somewhere else: the files ``reconcile --dry-run --server`` sent, planned
    by the operator exactly as if it had read them itself."""

    snapshot: Snapshot
    settle: float = 0.0
    settles: bool = False  # a sent snapshot is only ever planned, never re-read

    def read(self, clock: clock_mod.Clock = clock_mod.SYSTEM) -> Snapshot:
        return self.snapshot  # already read: nothing to settle


def received_file(display: str, data: bytes | None, size: int) -> SourceFile:
    """A sent file as the local readers make one: over the size limit it is not kept (the
    loader reports it), whatever the sender claimed."""
    if data is not None:
        size = len(data)
    return SourceFile(display, None if size > loader.MAX_FILE_BYTES else data, size)


def read_worktree(directory: Path) -> Snapshot:
    """Every agent file directly in ``directory`` (sorted), and the git state around it."""
    if directory.is_file():
        raise SourceError(f"{directory} is a file; --path takes the directory of agent files")
    exists = directory.is_dir()
    files = _read_files(directory) if exists else ()
    sha, dirty = _worktree_git_state(directory)
    revision = Revision("worktree", str(directory), sha=sha, dirty=dirty)
    return Snapshot(revision, files, directory_exists=exists)


def read_worktree_settled(
    directory: Path,
    *,
    settle: float,
    clock: clock_mod.Clock = clock_mod.SYSTEM,
    reads: int = SETTLE_READS,
) -> Snapshot:
    """:func:`read_worktree`, once every file read the same bytes twice ``settle`` s apart.

    Up to ``reads`` reads; a file whose bytes still differ between the last two is marked
    ``unsettled`` (a load error: its resources stay as applied), and the next change event of
    a watch plans it again. A file that vanished between the last two reads is simply absent:
    the deletes that plans are confirmed by the engine before they are applied.
    """
    snapshot = read_worktree(directory)
    if settle <= 0 or not snapshot.directory_exists:
        return snapshot
    files = snapshot.files
    for _ in range(max(reads, 2) - 1):
        clock.sleep(settle)
        again = _read_files(directory) if directory.is_dir() else ()
        if again == files:
            return snapshot if again == snapshot.files else replace(snapshot, files=again)
        files, previous = again, {f.display: f for f in files}
    waited = settle * (max(reads, 2) - 1)
    marked = tuple(
        f if previous.get(f.display) == f else replace(f, unsettled=waited) for f in files
    )
    return replace(snapshot, files=marked)


def read_paths(paths: Sequence[Path]) -> tuple[SourceFile, ...]:
    """Files and directories named on a command line (``validate a.yaml agents/``).

    A file named twice (``validate agents agents/x.yaml``) is read once: otherwise it would be
    compared with itself and reported as a duplicate agent id.
    """
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found.extend(_agent_files(path))
        elif path.exists():
            found.append(path)
        else:
            raise SourceError(f"{path}: no such file or directory")
    seen: set[Path] = set()
    out: list[SourceFile] = []
    for path in found:
        real = path.resolve()
        if real not in seen:
            seen.add(real)
            out.append(_read_disk(path))
    return tuple(out)


def read_git(repo_path: Path, rev: str = "HEAD", subdir: str = "agents") -> Snapshot:
    """Agent files in ``subdir`` of the tree of commit ``rev``, read from git objects."""
    import git

    try:
        repo = git.Repo(repo_path, search_parent_directories=False)
    except (git.exc.InvalidGitRepositoryError, git.exc.NoSuchPathError) as exc:
        raise SourceError(f"{repo_path} is not a git repository") from exc
    with repo:  # closes its `git cat-file` helpers, which would otherwise outlive the read
        try:
            commit = repo.commit(rev)
        except (git.exc.BadName, ValueError) as exc:
            raise SourceError(
                f"revision `{rev}` not found in {repo_path} (try a branch, tag or commit sha)"
            ) from exc
        revision = Revision("git", str(repo_path), sha=commit.hexsha, ref=rev)
        try:
            tree = commit.tree / subdir if subdir not in ("", ".") else commit.tree
        except KeyError:
            return Snapshot(revision, (), directory_exists=False)
        files: list[SourceFile] = []
        for blob in sorted(tree.blobs, key=lambda b: b.path):
            if not blob.name.endswith(SUFFIXES):
                continue
            size = int(blob.size)
            data = None if size > loader.MAX_FILE_BYTES else blob.data_stream.read()
            files.append(SourceFile(blob.path, data, size))
    return Snapshot(revision, tuple(files))


def load(
    files: Iterable[SourceFile], cache: parsecache.FileCache | None = None
) -> list[loader.LoadedFile]:
    """Load and check every file; each one independently (from ``cache`` when it is the same
    as when the cache kept it), then the checks across files over all of them."""
    files = tuple(files)
    checked = [_checked(f) for f in files] if cache is None else cache.checked(files, _checked)
    return semantic.check_across(checked)


def _checked(f: SourceFile) -> loader.LoadedFile:
    """One file loaded and checked on its own: what ``parsecache`` keeps."""
    if f.unsettled is not None:
        return _unsettled(f)
    if f.data is None:
        return semantic.check_one(loader.oversized(f.display, f.size))
    return semantic.check_one(loader.load_bytes(f.data, f.display))


def _unsettled(f: SourceFile) -> loader.LoadedFile:
    error = ConfigError(
        f"file kept changing while it was read ({f.unsettled:.1f} s): not planned until it "
        "reads the same twice",
        file=f.display,
        hint="finish writing it (an editor or copy still at work?); the next change re-plans",
    )
    return loader.failed(f.display, error)


def _read_files(directory: Path) -> tuple[SourceFile, ...]:
    return tuple(_read_disk(p) for p in _agent_files(directory))


def _agent_files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.iterdir() if p.is_file() and p.suffix in SUFFIXES)


def _read_disk(path: Path) -> SourceFile:
    try:
        size = path.stat().st_size
        data = None if size > loader.MAX_FILE_BYTES else path.read_bytes()
    except OSError as exc:
        raise SourceError(f"{path}: cannot read ({exc.strerror})") from exc
    return SourceFile(str(path), data, size)


def _worktree_git_state(directory: Path) -> tuple[str | None, bool]:
    """HEAD sha and whether agent files differ from it; (None, False) outside a repository."""
    import git

    try:
        repo = git.Repo(
            directory if directory.exists() else Path.cwd(), search_parent_directories=True
        )
    except (git.exc.InvalidGitRepositoryError, git.exc.NoSuchPathError):
        return None, False
    try:
        sha = repo.head.commit.hexsha
    except ValueError:  # a repository without commits
        repo.close()
        return None, False
    with repo:  # closes its `git cat-file` helpers
        try:
            root = Path(repo.working_tree_dir or ".").resolve()
            rel = str(directory.resolve().relative_to(root)) if directory.exists() else "."
            dirty = repo.is_dirty(untracked_files=True, path=rel)
        except (ValueError, git.exc.GitCommandError):
            dirty = True
    return sha, dirty
