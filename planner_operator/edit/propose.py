"""One save from the API: check the revision, edit the file, validate, plan, then write it.

The order is the point. The edit is made against the revision the dialog was opened at, so a
file that changed since is refused (``EditConflict`` naming the newer revision) before
anything else: no silent overwrite, and the user's form stays filled. The edited text is then
loaded and checked by the same loader as every other file (``EditInvalid`` with file:line:col
errors), and planned against the live state with ``reconcile.engine.make_plan``, exactly what
``reconcile --dry-run`` does, so the diff and the plan shown before a save are the ones a
reviewer will see. Only then, unless it is a dry run, is anything written: the work tree file
(atomically), a commit on the watched branch, or a branch and a pull request whose body is the
markdown plan.
"""

from __future__ import annotations

import difflib
import hashlib
import threading
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

from planner_operator.config import desired as desired_mod
from planner_operator.config.loader import LoadedFile
from planner_operator.core import clock as clock_mod
from planner_operator.core.revision import Revision
from planner_operator.core.settings import Settings
from planner_operator.edit import gitops, yamledit
from planner_operator.edit.forge import PullRequest
from planner_operator.edit.target import Config, Mode, Target
from planner_operator.errors import EditConflict, EditError, EditInvalid, NotFoundError
from planner_operator.reconcile import engine, render, source
from planner_operator.reconcile import plan as plan_mod
from planner_operator.reconcile.render import jsonout, text

Kind = Literal["job", "trigger", "agent"]
Status = Literal["preview", "written", "committed", "proposed"]
_VERB = {"create": "Add", "replace": "Change", "delete": "Remove"}


@dataclass(frozen=True)
class Change:
    """What the caller asks for; ``base`` is the revision the edit was made against."""

    agent: str
    kind: Kind
    name: str  # the job's or trigger's name; the agent id for kind "agent"
    op: yamledit.Op
    item: Mapping[str, Any] | None = None
    base: str | None = None
    dry_run: bool = False


@dataclass(frozen=True)
class Source:
    """One agent file as the dialog opens it: the text and the revision to edit against."""

    agent: str
    file: str
    revision: str
    text: str
    exists: bool


@dataclass(frozen=True)
class Proposal:
    mode: Mode
    status: Status
    file: str
    base_revision: str  # what the edit was checked against
    revision: str  # the revision to make the next edit against
    diff: str
    plan: plan_mod.Plan
    markdown: str
    summary: str
    detail: str
    commit: str | None = None
    branch: str | None = None
    pull_request: PullRequest | None = None

    def plan_json(self) -> dict[str, Any]:
        return jsonout.plan_to_dict(self.plan)


@dataclass(frozen=True)
class _Snapshot:
    revision: Revision
    head: str  # the revision token edits are checked against (a sha, or the files' digest)
    files: tuple[tuple[str, bytes], ...]


class Editor:
    """Edits of the agent files of one ``Target``; one save at a time per process."""

    def __init__(
        self,
        target: Target,
        config: Config,
        settings: Settings,
        *,
        backends_factory: engine.BackendFactory | None = None,
        options: plan_mod.PlanOptions | None = None,
        clock: clock_mod.Clock = clock_mod.SYSTEM,
    ) -> None:
        self.target = target
        self.config = config
        self.settings = settings
        self.backends_factory = backends_factory
        self.options = options if options is not None else target.options
        self.clock = clock
        self._lock = threading.Lock()
        self._remote = (
            gitops.Remote(target.repo, settings.state_dir / "git" / "edit.git")
            if target.repo is not None
            else None
        )

    @property
    def mode(self) -> Mode:
        return self.config.mode

    def source(self, agent: str) -> Source:
        """The agent's file and the revision a dialog edits it against."""
        with self._lock:
            snap = self._read()
            file, data = self._locate(snap, agent)
        if data is None:
            raise NotFoundError(f"no agent `{agent}` (GET /api/agents lists them)")
        return Source(agent, file, self._revision_of(snap, data), data.decode("utf-8"), True)

    def propose(self, change: Change) -> Proposal:
        if self.mode == "off":
            raise EditError(
                "edits over the API are off (PLANNER_EDIT_MODE=off): edit the agent file in git"
            )
        with self._lock:
            snap = self._read()
            file, old = self._locate(snap, change.agent)
            base = self._check(snap, change, file, old)
            new = self._edit(change, old).encode("utf-8")
            files = _replaced(snap.files, file, new)
            loaded = self._validate(files, file)
            plan = self._plan(snap, files, loaded)
            proposal = Proposal(
                mode=self.mode,
                status="preview",
                file=file,
                base_revision=base,
                revision=snap.head,
                diff=_diff(file, old or b"", new),
                plan=plan,
                markdown=render.render(plan, "markdown", now=self.clock.now()),
                summary=text.summary_line(plan),
                detail="dry run: nothing was written",
            )
            if change.dry_run:
                return proposal
            return self._write(snap, change, proposal, old, new)

    # -- the steps ------------------------------------------------------------------------------

    def _read(self) -> _Snapshot:
        if self._remote is not None:
            head = self._remote.fetch(self.target.branch)
            files = tuple(self._remote.files(head, self.target.subdir))
            revision = Revision("git", self.target.repo or "", sha=head, ref=self.target.branch)
            return _Snapshot(revision, head, files)
        assert self.target.path is not None
        found = source.read_worktree(self.target.path)
        files = tuple((f.display, f.data or b"") for f in found.files)
        return _Snapshot(found.revision, "", files)

    def _locate(self, snap: _Snapshot, agent: str) -> tuple[str, bytes | None]:
        """The file declaring ``agent`` (by id, else by file stem), or where a new one goes."""
        loaded = source.load(source.SourceFile(name, data, len(data)) for name, data in snap.files)
        for entry, (name, data) in zip(loaded, snap.files, strict=True):
            if entry.agent_id == agent:
                return name, data
        return self._new_path(agent), None

    def _new_path(self, agent: str) -> str:
        if self.target.path is not None:
            return str(self.target.path / f"{agent}.yaml")
        subdir = self.target.subdir.strip("/")
        return f"{subdir}/{agent}.yaml" if subdir not in ("", ".") else f"{agent}.yaml"

    def _revision_of(self, snap: _Snapshot, data: bytes | None) -> str:
        """A git source edits against the branch's commit; a work tree against the file's
        digest (there is no commit for a file on disk)."""
        if self._remote is not None:
            return snap.head
        return file_revision(data)

    def _check(self, snap: _Snapshot, change: Change, file: str, old: bytes | None) -> str:
        """The base revision, after making sure ``file`` is unchanged since it."""
        current = self._revision_of(snap, old)
        if change.kind == "agent":
            if old is not None:
                raise EditError(f"agent `{change.agent}` already exists ({file}): edit its jobs")
            return current
        if old is None:
            raise NotFoundError(
                f"no agent `{change.agent}`: create it first (POST /api/agents), or check the id"
            )
        if change.base is None or change.base == current:
            return current
        if self._remote is not None and self._remote.has(change.base):
            if self._remote.read(change.base, file) == old:
                return change.base  # the branch moved, this file did not: no conflict
            newer = self._remote.last_change(snap.head, file)
            raise EditConflict(
                f"{file} changed since revision {change.base[:12]}: the newer revision is "
                f"{newer[:12]} (branch {self.target.branch} is at {snap.head[:12]}); reload the "
                "file and make the edit again",
                file=file,
                base=change.base,
                current=current,
            )
        raise EditConflict(
            f"{file} changed since the edit was opened (revision {change.base[:19]}; it is now "
            f"{current[:19]}): reload the file and make the edit again",
            file=file,
            base=change.base,
            current=current,
        )

    def _edit(self, change: Change, old: bytes | None) -> str:
        if change.kind == "agent":
            assert change.item is not None
            return yamledit.new_agent({"id": change.agent, **change.item})
        assert old is not None
        try:
            before = old.decode("utf-8")
        except UnicodeDecodeError:
            raise EditError("the file is not UTF-8 text: fix it in git first") from None
        edit = yamledit.Edit(change.kind, change.name, change.op, change.item)
        return yamledit.apply(before, edit)

    def _validate(self, files: tuple[tuple[str, bytes], ...], file: str) -> list[LoadedFile]:
        loaded = source.load(source.SourceFile(name, data, len(data)) for name, data in files)
        mine = next(f for f in loaded if f.file == file)
        if mine.errors or mine.agent is None:
            errors = mine.errors
            lines = "; ".join(str(e) for e in errors[:3])
            raise EditInvalid(f"the edited file does not validate: {lines}", errors)
        return loaded

    def _plan(
        self, snap: _Snapshot, files: tuple[tuple[str, bytes], ...], loaded: list[LoadedFile]
    ) -> plan_mod.Plan:
        """``reconcile --dry-run`` of the edited files: the same read, preflight and planner."""
        sources = tuple(source.SourceFile(n, d, len(d)) for n, d in files)
        snapshot = source.Snapshot(snap.revision, sources)
        wanted = engine.Desired(snapshot, tuple(loaded), desired_mod.build(loaded))
        with engine.session(self.settings, self.backends_factory, clock=self.clock) as (
            backends,
            ledger,
        ):
            return engine.make_plan(wanted, backends, ledger, self.options)

    def _write(
        self, snap: _Snapshot, change: Change, proposal: Proposal, old: bytes | None, new: bytes
    ) -> Proposal:
        if self.mode == "worktree":
            path = Path(proposal.file)
            on_disk = path.read_bytes() if path.exists() else None
            if on_disk != old:  # changed while this save was being checked
                raise EditConflict(
                    f"{proposal.file} changed while the edit was being saved: reload and retry",
                    file=proposal.file,
                    base=proposal.base_revision,
                    current=file_revision(on_disk),
                )
            gitops.write_atomically(path, new)
            return replace(
                proposal,
                status="written",
                revision=file_revision(new),
                detail=f"wrote {proposal.file}; the watcher applies it",
            )
        assert self._remote is not None
        message = _message(change, proposal)
        sha = self._remote.commit(snap.head, proposal.file, new, message, self.config.author)
        if self.mode == "commit":
            self._remote.push(sha, self.target.branch, file=proposal.file, base=snap.head)
            detail = f"committed {sha[:12]} to {self.target.branch}; the watcher applies it"
            return replace(proposal, status="committed", revision=sha, commit=sha, detail=detail)
        branch = _branch(change, snap.head, proposal.file, new)
        self._remote.push(sha, branch, file=proposal.file, base=snap.head, force=True)
        pull = None
        if self.config.forge is None:
            detail = (
                f"pushed branch {branch}; open a pull request into {self.target.branch} "
                "(set PLANNER_FORGE_REPO and PLANNER_FORGE_TOKEN to have it opened)"
            )
        else:
            forge = self.config.forge
            pull = forge.find_open(head=branch, base=self.target.branch) or forge.open(
                head=branch, base=self.target.branch, title=message.splitlines()[0],
                body=_pr_body(proposal),
            )  # fmt: skip
            detail = f"opened pull request #{pull.number}: {pull.url}"
        return replace(
            proposal, status="proposed", commit=sha, branch=branch, pull_request=pull, detail=detail
        )


def file_revision(data: bytes | None) -> str:
    """A work-tree file's revision: the digest of its bytes (``none`` for no file)."""
    if data is None:
        return "none"
    return "sha256:" + hashlib.sha256(data).hexdigest()[:32]


def _replaced(
    files: tuple[tuple[str, bytes], ...], file: str, data: bytes
) -> tuple[tuple[str, bytes], ...]:
    kept = tuple((n, d) for n, d in files if n != file)
    return tuple(sorted((*kept, (file, data))))


def _diff(file: str, old: bytes, new: bytes) -> str:
    before = old.decode("utf-8", "replace").splitlines(keepends=True)
    after = new.decode("utf-8", "replace").splitlines(keepends=True)
    start = f"a/{file}" if old else "/dev/null"
    return "".join(difflib.unified_diff(before, after, start, f"b/{file}"))


def _what(change: Change) -> str:
    if change.kind == "agent":
        return f"agent {change.agent}"
    return f"{change.kind} {change.agent}/{change.name}"


def _message(change: Change, proposal: Proposal) -> str:
    return (
        f"{_VERB[change.op]} {_what(change)}\n\n"
        f"Proposed through the planner-operator API against {proposal.base_revision[:12]}.\n"
        f"{proposal.summary}\n"
    )


def _branch(change: Change, head: str, file: str, new: bytes) -> str:
    """``planner/<agent>/<name>-<short id>``: the id is a digest of the base and the new file,
    so a retried save reuses its branch (and its pull request) instead of opening another."""
    short = hashlib.sha256(f"{head}\0{file}\0".encode() + new).hexdigest()[:8]
    return f"planner/{change.agent}/{change.name}-{short}"


def _pr_body(proposal: Proposal) -> str:
    return (
        f"{proposal.markdown}\n\n<details><summary>Change to {proposal.file}</summary>\n\n"
        f"```diff\n{proposal.diff}```\n\n</details>\n"
    )
