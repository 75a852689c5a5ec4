"""`planner-operator serve`: one FastAPI app for the Inngest endpoint and the status API.

Everything a request needs hangs off ``Runtime`` (stores, executors, the Inngest mount), built
once at startup from settings and environment, so tests build the same app with their own
settings and a fake Inngest.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI
from starlette.routing import Route

from planner_operator.backends import select
from planner_operator.backends.inngest.backend import JobTable
from planner_operator.backends.inngest.sdk import InngestConfig
from planner_operator.core.settings import Settings
from planner_operator.read.views import Reader
from planner_operator.runtime.executors import select as executor_select
from planner_operator.runtime.executors.base import Executors
from planner_operator.runtime.jobrun import InngestJobHandler, JobRunner
from planner_operator.server import auth, metrics, webhooks, webhooks_openapi
from planner_operator.server.api import compat
from planner_operator.server.api import operations as api_operations
from planner_operator.server.api import status as api_status
from planner_operator.server.dashboard import router as dashboard_router
from planner_operator.server.inngest_mount import InngestMount
from planner_operator.state.runs import RunStore


@dataclass
class Runtime:
    settings: Settings
    runs: RunStore
    executors: Executors
    inngest: InngestMount | None = None
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    webhooks: webhooks.Webhooks | None = None  # ingress, durable inbox and worker
    env: Mapping[str, str] = field(default_factory=dict)
    reader: Reader = field(init=False)  # the status API's and dashboard's read model
    operations: api_operations.Operations = field(init=False)  # run now, trigger tests


def build_runtime(
    settings: Settings, env: Mapping[str, str], *, executors: Executors | None = None
) -> Runtime:
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    runs = RunStore(settings.state_dir / "runs.db")
    executors = executors or executor_select.from_env(settings, env)
    runtime = Runtime(settings, runs, executors, env=env)
    runtime.reader = Reader(settings, env=env)
    runtime.operations = api_operations.Operations(runtime)
    if select.schedule_backend_name(env) == "inngest":
        config = InngestConfig.from_env(env)  # refuses production mode without a signing key
        handler = InngestJobHandler(JobRunner(runs, executors))
        runtime.inngest = InngestMount(config, JobTable(settings.state_db), handler)
    return runtime


def create_app(
    settings: Settings,
    env: Mapping[str, str] | None = None,
    *,
    reload_interval: float = 2.0,
    executors: Executors | None = None,
    worker: bool | None = None,
    bind_host: str = "127.0.0.1",
) -> FastAPI:
    """The serve app. ``executors`` replaces the environment's (tests, benchmarks); ``worker``
    False leaves the inbox to ``planner-operator worker`` processes (default: env
    ``PLANNER_WORKER``, on). ``bind_host`` is where the server listens: off loopback, reads
    need the API token too (``api/auth.py``). Raises ``AuthError`` when an applied trigger's
    webhook secret is missing or empty, or ``PLANNER_API_TOKEN`` is set but empty."""
    env = os.environ if env is None else env
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    token = auth.load_token(settings, env)  # refuse to start before anything else runs
    runtime = build_runtime(settings, env, executors=executors)
    runtime.webhooks = webhooks.Webhooks(
        settings=settings, env=env, runs=runtime.runs, executors=runtime.executors, worker=worker
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if runtime.inngest is not None:
            await runtime.inngest.refresh(force=True)
            runtime.tasks.append(asyncio.create_task(runtime.inngest.watch(reload_interval)))
        if runtime.webhooks is not None:
            await runtime.webhooks.start()
        yield
        if runtime.webhooks is not None:
            await runtime.webhooks.stop()
        await runtime.operations.drain(10.0)  # run-now and trigger tests still executing
        for task in runtime.tasks:
            task.cancel()

    app = FastAPI(title="planner-operator", version="0.1.0", lifespan=lifespan)
    app.state.runtime = runtime
    exempt: list[str] = []
    if runtime.inngest is not None:
        path = runtime.inngest.config.serve_path
        app.router.routes.append(Route(path, runtime.inngest.app, methods=["GET", "POST", "PUT"]))
        exempt.append(path)  # the Inngest SDK checks its own signing key
    auth.install(app, auth.Guard.create(token, bind_host=bind_host, exempt=exempt))
    webhooks_openapi.install(app)  # the Starlette ingress routes, described for senders
    app.include_router(webhooks.router(runtime))
    app.include_router(api_status.router(runtime))
    app.include_router(compat.router(runtime, env))  # /triggers, /workflows (Triggers module)
    app.include_router(metrics.router(settings))  # GET /metrics
    app.include_router(dashboard_router())  # /planner/: the dashboard (last: its 404 page)

    @app.get("/healthz")
    def healthz() -> dict[str, Any]:
        """Liveness plus the Inngest sync state, for load balancers and humans. Open to anyone
        (no token), so no error text: sync errors are in the log."""
        inngest = dict(runtime.inngest.status()) if runtime.inngest else None
        if inngest is not None:
            inngest.pop("last_sync_error", None)
        return {"ok": True, "inngest": inngest}

    return app
