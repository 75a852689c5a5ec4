"""`planner-operator serve`: one FastAPI app for the Inngest endpoint, webhooks, API, dashboard.

The long-lived objects come from ``server.runtime.build``; each router gets only the parts it
uses. ``app.state.runtime`` keeps the runtime for the operator (``server/operator.py``), which
adds the embedded scheduler and the watcher around this app.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping
from typing import Any

from fastapi import FastAPI
from fastapi_offline import FastAPIOffline
from starlette.routing import Route

from planner_operator.backends import select
from planner_operator.core import clock as clock_mod
from planner_operator.core import variables
from planner_operator.core.settings import Settings
from planner_operator.edit import target as edit_target
from planner_operator.runtime.executors.base import Executors
from planner_operator.runtime.executors.workflows import Registry
from planner_operator.server import auth, bodylimit, hosts, metrics, webhooks, webhooks_openapi
from planner_operator.server import runtime as server_runtime
from planner_operator.server.api import compat
from planner_operator.server.api import edits as api_edits
from planner_operator.server.api import forms as api_forms
from planner_operator.server.api import plan as api_plan
from planner_operator.server.api import status as api_status
from planner_operator.server.dashboard import router as dashboard_router


def create_app(
    settings: Settings,
    env: Mapping[str, str] | None = None,
    *,
    reload_interval: float = 2.0,
    executors: Executors | None = None,
    worker: bool | None = None,
    worker_process: bool = False,
    bind_host: str = "127.0.0.1",
    clock: clock_mod.Clock = clock_mod.SYSTEM,
    edits: edit_target.Target | None = None,
) -> FastAPI:
    """The serve app. ``executors`` replaces the environment's (tests, benchmarks); ``worker``
    False leaves the inbox to ``planner-operator worker`` processes (default: env
    ``PLANNER_WORKER``, on); ``worker_process`` makes it a child process (``serve``'s default,
    ``PLANNER_WORKER_PROCESS``). ``bind_host`` is where the server listens: off loopback, reads
    need the API token too (``api/auth.py``). Raises ``AuthError`` when an applied trigger's
    webhook secret is missing or empty, or ``PLANNER_API_TOKEN`` is set but empty. ``clock``
    is the app's one source of time (tests pin the date with ``core.clock.ManualClock``).
    ``edits``: the agent source the API's writes edit (``run`` passes what it watches)."""
    env = variables.environ(env)
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    token = auth.load_token(settings, env)  # refuse to start before anything else runs
    runtime = server_runtime.build(
        settings,
        env,
        executors=executors,
        worker=worker,
        worker_process=worker_process,
        clock=clock,
        edits=edits,
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        tasks: list[asyncio.Task[None]] = []
        if runtime.inngest is not None:
            await runtime.inngest.refresh(force=True)
            tasks.append(asyncio.create_task(runtime.inngest.watch(reload_interval)))
        await runtime.webhooks.start()
        yield
        await runtime.webhooks.stop()
        await runtime.operations.drain(10.0)  # run-now and trigger tests still executing
        for task in tasks:
            task.cancel()

    # /docs with Swagger UI's files served from the package (fastapi-offline), not a CDN
    app = FastAPIOffline(
        title="planner-operator",
        version="0.1.0",
        lifespan=lifespan,
        max_body_size=bodylimit.DEFAULT,  # per route in bodylimit.caps
    )
    app.state.runtime = runtime
    exempt: list[str] = []
    if runtime.inngest is not None:
        path = runtime.inngest.config.serve_path
        methods = ["GET", "POST", "PUT"]
        limit = bodylimit.INNGEST
        app.router.routes.append(
            Route(path, runtime.inngest.app, methods=methods, max_body_size=limit)
        )
        exempt.append(path)  # the Inngest SDK checks its own signing key
    auth.install(app, auth.Guard.create(token, bind_host=bind_host, exempt=exempt, clock=clock))
    webhooks_openapi.install(app)  # the Starlette ingress routes, described for senders
    # the receivers count their own body (bodylimit.RECEIVER)
    app.include_router(webhooks.router(runtime.webhooks), max_body_size=bodylimit.RECEIVER)
    app.include_router(api_status.router(runtime.reader, runtime.operations))
    # POST /api/plan: `reconcile --dry-run --server` (plans sent files; writes nothing)
    app.include_router(api_plan.router(settings, env, clock=clock))
    # POST/PUT/DELETE of agents, jobs and triggers: edits of the agent files (edit/)
    app.include_router(api_edits.router(runtime.editor))
    # GET /api/forms/*: what the dashboard's edit dialogs preview as a person types
    registry = Registry.discover(env)
    app.include_router(
        api_forms.router(
            registry.ids,
            clock=clock,
            public_url=variables.PUBLIC_URL.read(env),
            composio=select.trigger_backend_name(env) == "composio",
        )
    )
    # /triggers, /workflows (the Triggers module's routes)
    app.include_router(
        compat.router(runtime.reader, runtime.operations, settings, env, runtime.editor)
    )
    # GET /metrics
    app.include_router(
        metrics.router(
            settings,
            runtime.reader.resource_states,
            clock=clock,
            resource_series=variables.METRICS_RESOURCE_SERIES.read(env),
        )
    )
    # /planner/: the dashboard (last: its 404 page)
    repo_url = variables.REPO_WEB_URL.read(env)
    app.include_router(
        dashboard_router(
            runtime.reader,
            runtime.operations,
            repo_url=repo_url,
            clock=clock,
            edit_mode=runtime.editor.mode if runtime.editor is not None else None,
        )
    )

    inngest_path = runtime.inngest.config.serve_path if runtime.inngest is not None else None
    bodylimit.document(app, env, inngest_path=inngest_path)
    hosts.install(app, env, bind_host=bind_host)  # outermost: other names never reach a route

    @app.get("/healthz")
    def healthz() -> dict[str, Any]:
        """Liveness plus the Inngest sync state, for load balancers and humans. Open to anyone
        (no token), so no error text: sync errors are in the log."""
        inngest = dict(runtime.inngest.status()) if runtime.inngest else None
        if inngest is not None:
            inngest.pop("last_sync_error", None)
        return {"ok": True, "inngest": inngest}

    return app
