"""Reconcile continuously: on file changes (watchfiles) and on new commits (git poll).

Each cycle is exactly a one-shot ``reconcile`` (same safety rules: a broken file freezes its own
resources, an empty or broken state prunes nothing), so watch mode adds only *when* to run.
Git mode follows Flux and Argo CD: clone once, fetch on an interval with jitter, reconcile once
per new commit sha, read the tree of the fetched commit (never a checkout); when a fetch fails,
keep the last good revision, do nothing destructive, back off (capped at 5 minutes) and converge
on the first good fetch. A push webhook can wake the poller for an immediate fetch.
"""

from __future__ import annotations

import json
import logging
import random
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import git
import watchfiles

from planner_operator.core import clock as clock_mod
from planner_operator.core.settings import Settings
from planner_operator.errors import PlannerError, SourceError
from planner_operator.reconcile import plan as plan_mod
from planner_operator.reconcile.engine import Outcome, SourceSpec, reconcile

log = logging.getLogger("planner_operator.reconcile.watch")

MAX_BACKOFF = 300.0


@dataclass(frozen=True)
class Cycle:
    """One watch cycle, for logs, status and tests."""

    trigger: str  # "start" | "files" | "commit" | "push"
    revision: str
    summary: str
    ok: bool
    error: str | None = None


def summarize(outcome: Outcome) -> tuple[str, bool]:
    counts = outcome.plan.counts()
    text = ", ".join(f"{n} {op.value}" for op, n in counts.items() if n) or "no changes"
    problems = []
    if outcome.plan.load_errors:
        files = sorted({e.file for e in outcome.plan.load_errors})
        problems.append(f"{len(outcome.plan.load_errors)} load error(s) in {', '.join(files)}")
    if outcome.plan.blocked:
        problems.append(f"{len(outcome.plan.blocked)} change(s) refused")
    if outcome.applied is not None and not outcome.applied.ok:
        problems.append(
            f"{len(outcome.applied.failed) + len(outcome.applied.problems)} apply failure(s)"
        )
    ok = not problems
    return text + ("" if ok else f" ({'; '.join(problems)})"), ok


def applied_lines(outcome: Outcome) -> list[str]:
    """One line per change the apply made: what it did, to which resource, which fields."""
    if outcome.applied is None:
        return []
    lines = []
    for item in outcome.applied.items:
        change = item.change
        fields = sorted({d.path.split(".", 1)[0] for d in change.diff})
        what = f" ({', '.join(fields)})" if fields else ""
        result = "ok" if item.ok else f"FAILED: {item.error}"
        lines.append(f"{change.op.value} {change.key}{what}: {result}")
    return lines


def run_cycle(
    spec: SourceSpec,
    settings: Settings,
    options: plan_mod.PlanOptions,
    trigger: str,
    stop: threading.Event | None = None,
    *,
    clock: clock_mod.Clock = clock_mod.SYSTEM,
) -> Cycle:
    """Reconcile once; never raises for our errors (the watcher must keep going)."""
    try:
        outcome = reconcile(
            spec,
            settings,
            options=options,
            stop=stop.is_set if stop is not None else None,
            clock=clock,
        )
    except PlannerError as exc:
        log.error("watch %s: reconcile failed: %s", trigger, exc)
        return Cycle(trigger, spec.rev if spec.repo else str(spec.path), "", False, str(exc))
    summary, ok = summarize(outcome)
    if outcome.lock_takeover is not None:
        summary += f"; {outcome.lock_takeover}"
    revision = str(outcome.plan.revision) if outcome.plan.revision else "?"
    (log.info if ok else log.warning)("watch %s: %s: %s", trigger, revision, summary)
    for line in applied_lines(outcome):
        log.info("  %s", line)
    for error in outcome.plan.load_errors:
        log.warning("  %s", error)
    return Cycle(trigger, revision, summary, ok)


def watch_files(
    directory: Path,
    settings: Settings,
    options: plan_mod.PlanOptions = plan_mod.PlanOptions(),
    *,
    debounce_ms: int = 200,
    stop: threading.Event | None = None,
    on_cycle: Callable[[Cycle], None] | None = None,
    clock: clock_mod.Clock = clock_mod.SYSTEM,
) -> None:
    """Reconcile at start, then after every debounced batch of changes under ``directory``.

    A file is planned only once it reads the same twice a debounce apart, and a delete only
    once a read a debounce later plans it too (``SourceSpec.settle``): a save caught half-way
    must not delete the jobs and triggers its missing lines hold.
    """
    if not directory.is_dir():
        raise SourceError(f"{directory} is not a directory of agent files")
    spec = SourceSpec(path=directory, settle=debounce_ms / 1000)
    report = on_cycle or (lambda cycle: None)
    report(run_cycle(spec, settings, options, "start", stop, clock=clock))
    for _changes in watchfiles.watch(
        directory,
        debounce=debounce_ms,
        step=50,
        stop_event=stop,
        watch_filter=_agent_files,
        rust_timeout=1000,
        yield_on_timeout=False,
    ):
        report(run_cycle(spec, settings, options, "files", stop, clock=clock))


def _agent_files(change: watchfiles.Change, path: str) -> bool:
    return path.endswith((".yaml", ".yml"))


@dataclass
class GitWatcher:
    """Polls a branch; reconciles each new commit once; survives fetch outages."""

    url: str
    branch: str
    settings: Settings
    options: plan_mod.PlanOptions = field(default_factory=plan_mod.PlanOptions)
    interval: float = 30.0
    subdir: str = "agents"
    jitter: float = 0.1
    wake: threading.Event = field(default_factory=threading.Event)
    stop: threading.Event = field(default_factory=threading.Event)
    last_sha: str | None = None
    last_error: str | None = None
    failures: int = 0
    sleep: Callable[[float], None] | None = None
    clock: clock_mod.Clock = clock_mod.SYSTEM  # what each cycle's reconcile stamps

    def __post_init__(self) -> None:
        self.url = remote_url(self.url)

    @property
    def clone_dir(self) -> Path:
        return self.settings.state_dir / "git" / "repo.git"

    def repo(self) -> git.Repo:
        if (self.clone_dir / "HEAD").exists():
            return git.Repo(self.clone_dir)
        self.clone_dir.parent.mkdir(parents=True, exist_ok=True)
        try:
            return git.Repo.clone_from(self.url, self.clone_dir, bare=True, no_checkout=True)
        except git.GitCommandError as exc:
            raise SourceError(f"cannot clone {safe_url(self.url)}: {git_error_line(exc)}") from exc

    def fetch(self) -> str:
        """Fetch the branch (force-pushes included) and return its sha."""
        refspec = f"+refs/heads/{self.branch}:refs/heads/{self.branch}"
        with self.repo() as repo:  # closed each time: its `git cat-file` helpers go with it
            try:
                repo.git.fetch(self.url, refspec, "--prune")
            except git.GitCommandError as exc:
                raise SourceError(
                    f"fetch of {safe_url(self.url)} failed: {git_error_line(exc)}"
                ) from exc
            try:
                return str(repo.commit(self.branch).hexsha)
            except (git.BadName, ValueError) as exc:
                raise SourceError(
                    f"branch `{self.branch}` not found in {safe_url(self.url)}"
                ) from exc

    def poll_once(self, trigger: str = "commit") -> Cycle | None:
        """One fetch; a reconcile when the sha is new. Returns the cycle (or the failed fetch),
        None when there was nothing new."""
        try:
            sha = self.fetch()
        except SourceError as exc:
            self.failures += 1
            self.last_error = str(exc)
            log.warning("watch: %s; keeping last good revision %s", exc, self.last_sha)
            kept = self.last_sha[:12] if self.last_sha else "none"
            return Cycle("fetch", kept, f"fetch failed; keeping revision {kept}", False, str(exc))
        self.failures = 0
        self.last_error = None
        if sha == self.last_sha:
            return None
        spec = SourceSpec(repo=self.clone_dir, rev=sha, subdir=self.subdir)
        cycle = run_cycle(spec, self.settings, self.options, trigger, self.stop, clock=self.clock)
        self.last_sha = sha  # one reconcile per sha, like Argo CD and Flux
        return cycle

    def delay(self) -> float:
        """Next wait: the interval with jitter, or capped exponential backoff after failures."""
        base = self.interval
        if self.failures:
            base = min(self.interval * (2 ** min(self.failures, 10)), MAX_BACKOFF)
        return base * (1 + random.uniform(-self.jitter, self.jitter))

    def cycles(self) -> Iterator[Cycle]:
        """Poll until ``stop``; a push wake-up fetches at once."""
        trigger = "start"
        while not self.stop.is_set():
            cycle = self.poll_once(trigger)
            if cycle is not None:
                yield cycle
            if self.stop.is_set():  # stopped by the consumer of that cycle: do not sleep first
                return
            woke = self.wake.wait(self.delay()) if self.sleep is None else self._sleep()
            trigger = "push" if woke else "commit"
            self.wake.clear()

    def _sleep(self) -> bool:
        assert self.sleep is not None
        self.sleep(self.delay())
        return self.wake.is_set()


def record(settings: Settings, cycle: Cycle, *, clock: clock_mod.Clock = clock_mod.SYSTEM) -> None:
    """Keep the last cycle and the last failure where ``status`` (another process) reads them."""
    from planner_operator.state import open as state_open

    with state_open.ledger(settings, clock=clock) as ledger:
        ledger.set_meta("watch_last_cycle", json.dumps(cycle.__dict__, sort_keys=True))
        if not cycle.ok:
            ledger.set_meta("watch_last_error", json.dumps(cycle.__dict__, sort_keys=True))


def remote_url(url: str) -> str:
    """A remote as git is handed it: a local path made absolute, since git runs inside the
    operator's bare clone, where a relative path (``run --repo ../agents.git``) means nothing."""
    if "://" in url or (":" in url and not Path(url).exists()):  # URL or scp-like host:path
        return url
    return str(Path(url).resolve())


def safe_url(url: str) -> str:
    """A remote URL without credentials (``https://user:token@host/...``)."""
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        return f"{scheme}://{rest.split('@', 1)[1]}"
    return url


def git_error_line(exc: git.GitCommandError) -> str:
    text = str(exc.stderr or exc).strip().splitlines()
    line = next((t for t in text if t.strip()), "git failed").strip()
    return safe_url(line.removeprefix("stderr: ").strip("' "))
