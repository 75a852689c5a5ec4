"""The operator process: `serve` plus the embedded scheduler, and for `run` the watcher too.

``create_app`` is the HTTP side (Inngest endpoint, webhooks, APIs). This module adds what a
deployed operator needs around it, in its lifespan so one SIGTERM stops everything in order:
stop taking work (no new watch cycle, no new fires), let the current apply item and running
executor calls finish within a grace period, and leave anything cut off to be re-planned or
re-claimed (leases expire) by the next start.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request, Response

from planner_operator.backends import select
from planner_operator.backends.base import list_all
from planner_operator.backends.local import LocalScheduleBackend
from planner_operator.core import clock as clock_mod
from planner_operator.core import variables
from planner_operator.core.settings import Settings
from planner_operator.edit import target as edit_target
from planner_operator.reconcile import plan as plan_mod
from planner_operator.reconcile.watch import Cycle, GitWatcher, watch_files
from planner_operator.reconcile.watch import record as watch_record
from planner_operator.runtime import waiting
from planner_operator.runtime.jobrun import JobRunner
from planner_operator.runtime.scheduler import Job, Scheduler
from planner_operator.server import bodylimit
from planner_operator.server.app import create_app
from planner_operator.server.runtime import Runtime
from planner_operator.server.signatures import SignatureError, verify_github
from planner_operator.state import sql

log = logging.getLogger("planner_operator.operator")

ENV_GIT_SECRET = variables.GIT_WEBHOOK_SECRET.name


@dataclass(frozen=True)
class WatchSpec:
    path: Path | None = None
    repo: str | None = None
    branch: str = "main"
    interval: float = 30.0
    subdir: str = "agents"
    options: plan_mod.PlanOptions = field(default_factory=plan_mod.PlanOptions)


def local_jobs(where: Path | sql.Database) -> Callable[[], list[Job]]:
    """The jobs applied to the embedded backend, as the scheduler loads them."""

    def load() -> list[Job]:
        with LocalScheduleBackend(where) as backend:
            return [
                Job(o.key, {**o.spec, "enabled": o.state == "active"})
                for o in list_all(backend)
                if o.key
            ]

    return load


def _moved(jobs: LocalScheduleBackend) -> Callable[[], bool]:
    """True when the applied jobs changed since the last call (the first call is True)."""
    last: list[tuple[int, str] | None] = [None]

    def changed() -> bool:
        try:
            now = jobs.version()
        except Exception:  # the state is unavailable: keep the jobs we have, look again
            log.exception("scheduler: cannot read the applied jobs")
            return False
        moved = now != last[0]
        last[0] = now
        return moved

    return changed


def build(
    settings: Settings,
    env: Mapping[str, str] | None = None,
    *,
    watch: WatchSpec | None = None,
    grace: float = 30.0,
    bind_host: str = "127.0.0.1",
    clock: clock_mod.Clock = clock_mod.SYSTEM,
    worker_process: bool = False,
) -> FastAPI:
    """The ``run`` process: the serve app plus the embedded scheduler and the watcher, all on
    ``clock``; ``worker_process`` as in ``create_app`` (the CLI passes
    ``PLANNER_WORKER_PROCESS``)."""
    env = variables.environ(env)
    app = create_app(
        settings,
        env,
        bind_host=bind_host,
        clock=clock,
        edits=_edits(watch),
        worker_process=worker_process,
    )
    runtime: Runtime = app.state.runtime
    stop = threading.Event()
    git_watcher = _git_watcher(settings, watch, stop, clock)
    _add_git_hook(app, git_watcher, env)
    embedded = select.schedule_backend_name(env) == "local"
    original = app.router.lifespan_context

    @contextlib.asynccontextmanager
    async def lifespan(inner: FastAPI) -> AsyncIterator[Any]:
        async with original(inner) as state:
            tasks: list[asyncio.Task[Any]] = []
            scheduler = None
            if embedded:
                settings.state_db.parent.mkdir(parents=True, exist_ok=True)
                where = select.local_state(settings)
                jobs = LocalScheduleBackend(where, clock=clock)  # creates the schema if new
                scheduler = Scheduler(
                    JobRunner(
                        runtime.runs,
                        runtime.executors,
                        clock=clock,
                        policy=waiting.WaitPolicy.from_env(env),
                    ),
                    local_jobs(where),
                    jitter=variables.SCHEDULER_JITTER.read(env),
                )
                tasks.append(asyncio.create_task(scheduler.run_forever(changed=_moved(jobs))))
            watcher_thread = _start_watcher(settings, watch, git_watcher, stop, clock)
            try:
                yield state
            finally:
                stop.set()  # stop taking work
                if git_watcher is not None:
                    git_watcher.wake.set()
                for task in tasks:
                    task.cancel()
                await _drain(scheduler, grace)
                if watcher_thread is not None:
                    await asyncio.to_thread(watcher_thread.join, grace)
                if scheduler is not None:
                    scheduler.close()
                    jobs.close()

    app.router.lifespan_context = lifespan
    return app


async def _drain(scheduler: Scheduler | None, grace: float) -> None:
    """Let running executor calls finish, up to the grace period."""
    if scheduler is None:
        return
    deadline = asyncio.get_running_loop().time() + grace
    while scheduler.running and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.05)
    if scheduler.running:
        log.warning("shutdown: %d run(s) still going after %.0fs", len(scheduler.running), grace)


def _edits(watch: WatchSpec | None) -> edit_target.Target | None:
    """What the API's writes edit: the directory or the branch ``run`` follows."""
    if watch is None:
        return None
    return edit_target.Target(
        path=watch.path,
        repo=watch.repo,
        branch=watch.branch,
        subdir=watch.subdir,
        options=watch.options,
    )


def _git_watcher(
    settings: Settings, watch: WatchSpec | None, stop: threading.Event, clock: clock_mod.Clock
) -> GitWatcher | None:
    if watch is None or watch.repo is None:
        return None
    return GitWatcher(
        watch.repo,
        watch.branch,
        settings,
        watch.options,
        interval=watch.interval,
        subdir=watch.subdir,
        stop=stop,
        clock=clock,
    )


def _start_watcher(
    settings: Settings,
    watch: WatchSpec | None,
    git_watcher: GitWatcher | None,
    stop: threading.Event,
    clock: clock_mod.Clock,
) -> threading.Thread | None:
    if watch is None:
        return None

    def record(cycle: Cycle) -> None:
        watch_record(settings, cycle, clock=clock)

    if git_watcher is not None:

        def loop() -> None:
            for cycle in git_watcher.cycles():
                record(cycle)

    else:
        assert watch.path is not None
        path = watch.path

        def loop() -> None:
            watch_files(path, settings, watch.options, stop=stop, on_cycle=record, clock=clock)

    thread = threading.Thread(target=loop, name="planner-watch", daemon=True)
    thread.start()
    return thread


def _add_git_hook(app: FastAPI, watcher: GitWatcher | None, env: Mapping[str, str]) -> None:
    """``POST /hooks/git``: a GitHub push (HMAC-verified) wakes the poller for a fetch now."""
    secret = variables.GIT_WEBHOOK_SECRET.read(env)

    @app.post("/hooks/git", status_code=202, max_body_size=bodylimit.GIT_HOOK)
    async def git_push(request: Request) -> Response:
        if watcher is None or not secret:
            return Response(
                '{"error": "git push hook not enabled: run with --repo and set '
                f'{ENV_GIT_SECRET}"}}',
                status_code=404,
                media_type="application/json",
            )
        body = await request.body()
        try:
            verify_github(secret, signature=request.headers.get("x-hub-signature-256"), body=body)
        except SignatureError:
            return Response('{"error": "bad signature"}', 401, media_type="application/json")
        event = request.headers.get("x-github-event", "")
        if event == "ping":
            return Response('{"ok": true}', 200, media_type="application/json")
        if event != "push":
            return Response('{"ignored": "not a push"}', 202, media_type="application/json")
        watcher.wake.set()
        return Response('{"fetching": true}', 202, media_type="application/json")
