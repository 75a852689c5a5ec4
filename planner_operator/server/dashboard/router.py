"""The dashboard's routes: server-rendered pages over the same read model as the JSON API.

Pages read through the ``Reader`` and act through the ``Operations``, exactly what the
API calls, so what a person sees is what a script gets. Every page is plain HTML with one local
stylesheet: the operator often runs on machines without internet access, so nothing comes from
a CDN and there is no front-end build. Autoescaping is on for every template, because rendered
messages and event payloads come from outside and end up on these pages.

Who may press a button is decided by the auth middleware (``api/auth.py``), not here; pages only
ask whether the visitor is logged in, to offer a button or a login link.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
from collections.abc import Callable, Mapping
from datetime import datetime
from importlib import resources
from typing import TYPE_CHECKING, Any, TypeVar, get_args
from urllib.parse import urlencode

import jinja2
from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from planner_operator.core import clock as clock_mod
from planner_operator.errors import InvalidRequest, NotFoundError, PlannerError
from planner_operator.read import paging
from planner_operator.read.states import STATES as RESOURCE_STATES
from planner_operator.read.states import State
from planner_operator.read.views import Page, RunStatus
from planner_operator.server import auth
from planner_operator.server.dashboard import display, editing

if TYPE_CHECKING:
    from planner_operator.read.views import Reader
    from planner_operator.server.api.operations import Operations

BASE = "/planner"
AGENTS_PAGE = 50  # agents listed per Planner page
PLANNER_PAGE = 25  # jobs and triggers listed on the Planner page (each agent's page has all)
AGENT_PAGE = 100  # jobs and triggers per page on an agent's page
FEW_AGENTS = 10  # up to this many agents, all of whose resources fit the Planner page: no overview
T = TypeVar("T")
_PACKAGE = resources.files("planner_operator.server.dashboard")
_CSS = (_PACKAGE / "static" / "planner.css").read_bytes()
_CSS_VERSION = hashlib.sha256(_CSS).hexdigest()[:12]
STATUSES: tuple[str, ...] = get_args(RunStatus)
FLASH = {  # fixed texts only: a query parameter never puts words on the page
    ("run", True): "Run started. This page refreshes itself until the run has finished.",
    ("test", True): "Test event sent. This page refreshes itself until the run has finished.",
    ("run", False): "Run started; it has already finished (its outcome is below).",
    ("test", False): "Test event sent; its run has already finished (its outcome is below).",
}

_env = jinja2.Environment(
    loader=jinja2.PackageLoader("planner_operator.server.dashboard", "templates"),
    autoescape=jinja2.select_autoescape(["html"], default=True),
    trim_blocks=True,
    lstrip_blocks=True,
)
_env.filters.update(display.FILTERS)


def render(
    request: Request,
    template: str,
    context: Mapping[str, Any],
    *,
    now: datetime,
    status_code: int = 200,
    refresh: int | None = None,
    edit_mode: str | None = None,
) -> HTMLResponse:
    """One template with what every page needs (login state, the time, where we are).

    ``now`` is the app clock's: "in 3 h" and "5 min ago" are measured from it. The edit
    dialogs (and their script) are on a page only for a visitor who may save and a server
    whose ``edit_mode`` writes: everyone else gets the read-only page, unchanged."""
    authenticated = _authenticated(request)
    page = _env.get_template(template).render(
        base=BASE,
        css_version=_CSS_VERSION,
        js_version=editing.SCRIPT_VERSION,
        now=now,
        now_text=display.utc(now.isoformat()),
        request_path=request.url.path,
        authenticated=authenticated,
        editable=editing.editable(authenticated, edit_mode),
        edit_mode=edit_mode,
        refresh=refresh,
        **context,
    )
    return HTMLResponse(page, status_code=status_code, headers={"Cache-Control": "no-store"})


def _authenticated(request: Request) -> bool:
    """Logged in; an app without the auth middleware (a bare test app) guards nothing."""
    if getattr(request.app.state, "auth", None) is None:
        return True
    return auth.is_authenticated(request)


def not_found(request: Request, message: str, *, now: datetime) -> HTMLResponse:
    return render(
        request,
        "error.html",
        {"title": "Not found", "message": message},
        now=now,
        status_code=404,
    )


def router(
    reader: Reader,
    operations: Operations,
    *,
    repo_url: str | None = None,
    clock: clock_mod.Clock | None = None,
    edit_mode: str | None = None,
) -> APIRouter:
    """The dashboard routes for ``create_app``: the same reader and operations as the API, and
    the same clock (default: the reader's).

    ``repo_url`` (``PLANNER_REPO_WEB_URL``) is where the agent files can be read on the web;
    each job and trigger links to its file there. ``edit_mode`` is the editor's
    ``PLANNER_EDIT_MODE`` (None: this server follows no source, its pages are read-only).
    """
    routes = APIRouter(include_in_schema=False)
    source = repo_url.rstrip("/") if repo_url else None
    clock = clock or reader.clock

    @routes.get("/")
    def home() -> RedirectResponse:
        return RedirectResponse(f"{BASE}/", status_code=307)

    @routes.get(BASE)
    def planner_bare() -> RedirectResponse:
        return RedirectResponse(f"{BASE}/", status_code=307)

    @routes.get(f"{BASE}/static/planner.css")
    def stylesheet() -> Response:
        return Response(
            _CSS, media_type="text/css", headers={"Cache-Control": "public, max-age=86400"}
        )

    editing.install(routes, BASE)

    @routes.get(f"{BASE}/")
    def planner(
        request: Request,
        q: str = "",
        state: str = "",
        agents: str = "",
        jobs: str = "",
        triggers: str = "",
    ) -> HTMLResponse:
        now = clock.now()
        filters = {
            "q": q.strip()[: paging.MAX_QUERY],
            "state": state if state in RESOURCE_STATES else "",
        }
        index = reader.index()  # once: every part of the page shows the same generation
        listed = _page(
            functools.partial(reader.agent_page, index=index),
            paging.Query(
                q=filters["q"] or None,
                state=_state(filters["state"]),
                limit=AGENTS_PAGE,
                cursor=agents or None,
            ),
        )
        job_page = _page(
            functools.partial(reader.job_page, index=index),
            paging.Query(limit=PLANNER_PAGE, cursor=jobs or None),
        )
        trigger_page = _page(
            functools.partial(reader.trigger_page, index=index),
            paging.Query(limit=PLANNER_PAGE, cursor=triggers or None),
        )
        shown = {*(j.agent for j in job_page.items), *(t.agent for t in trigger_page.items)}
        last = reader.reconcile()
        current = {**filters, "agents": agents, "jobs": jobs, "triggers": triggers}
        # a few agents whose every job and trigger is in the tables below need no overview
        # (their next fire and trouble are in the summary strip): on a phone it is scrolling
        overview = any(current.values()) or (
            job_page.next_cursor is not None
            or trigger_page.next_cursor is not None
            or listed.total > FEW_AGENTS
        )
        return render(
            request,
            "planner.html",
            {
                "tab": "planner",
                "agent": None,
                "agent_list": listed,
                "overview": overview,
                "agent_names": {a.id: a.name for a in index.agents if a.id in shown},
                "filters": filters,
                "states": RESOURCE_STATES,
                "jobs": job_page.items,
                "job_page": job_page,
                "triggers": trigger_page.items,
                "trigger_page": trigger_page,
                "reconcile": last,
                "broken": display.broken_files(last.load_errors),
                "repo_url": source,
                "summary": display.overview(index, reader.fires, last, now=now),
                "query": _query(current),
                "inbox": reader.inbox(),
                "edit_data": editing.start_data(edit_mode, reader.agents()[: editing.MAX_AGENTS]),
            },
            now=now,
            refresh=_refresh_if_running([*job_page.items, *trigger_page.items]),
            edit_mode=edit_mode,
        )

    @routes.get(f"{BASE}/agents/{{agent}}")
    def agent_page(
        request: Request, agent: str, jobs: str = "", triggers: str = ""
    ) -> HTMLResponse:
        found = next(iter(reader.agent_page(paging.Query(agent=agent, limit=1)).items), None)
        if found is None:
            return not_found(
                request,
                f"There is no agent `{agent}` in the applied configuration.",
                now=clock.now(),
            )
        job_page = _page(
            reader.job_page, paging.Query(agent=agent, limit=AGENT_PAGE, cursor=jobs or None)
        )
        trigger_page = _page(
            reader.trigger_page,
            paging.Query(agent=agent, limit=AGENT_PAGE, cursor=triggers or None),
        )
        return render(
            request,
            "agent.html",
            {
                "tab": "planner",
                "agent": found,
                "agent_names": {found.id: found.name},
                "jobs": job_page.items,
                "job_page": job_page,
                "triggers": trigger_page.items,
                "trigger_page": trigger_page,
                "broken": display.broken_files(reader.reconcile().load_errors),
                "repo_url": source,
                "query": _query({"jobs": jobs, "triggers": triggers}),
                "edit_data": editing.start_data(edit_mode, [found]),
            },
            now=clock.now(),
            refresh=_refresh_if_running([*job_page.items, *trigger_page.items]),
            edit_mode=edit_mode,
        )

    @routes.get(f"{BASE}/runs")
    def runs_page(
        request: Request,
        agent: str = "",
        status: str = "",
        job: str = "",
        trigger: str = "",
        before: str = "",
    ) -> HTMLResponse:
        filters = {
            "agent": agent,
            "status": status if status in STATUSES else "",
            "job": job,
            "trigger": trigger,
        }
        cursor = int(before) if before.isdigit() else None
        try:
            page = reader.runs(
                agent=filters["agent"] or None,
                job=filters["job"] or None,
                trigger=filters["trigger"] or None,
                status=filters["status"] or None,
                limit=50,
                before=cursor,
            )
        except InvalidRequest as exc:
            return _failed(
                request, exc, "Cannot list these runs", back=f"{BASE}/runs", now=clock.now()
            )

        def query(**changes: Any) -> str:
            values = {**filters, "before": cursor, **changes}
            return urlencode({k: v for k, v in values.items() if v})

        running = cursor is None and any(r.status == "running" for r in page.items)
        return render(
            request,
            "runs.html",
            {
                "tab": "runs",
                "page": page,
                "filters": filters,
                "before": cursor,
                "statuses": STATUSES,
                "agents": reader.agents(),
                "query": query,
            },
            now=clock.now(),
            refresh=5 if running else None,
        )

    @routes.get(f"{BASE}/runs/{{run_id}}")
    def run_page(request: Request, run_id: str, flash: str = "") -> HTMLResponse:
        if not run_id.isdigit():
            return not_found(request, f"`{run_id}` is not a run number.", now=clock.now())
        try:
            run = reader.run(int(run_id))
        except NotFoundError:
            return not_found(
                request, f"There is no run #{run_id} in the run history.", now=clock.now()
            )
        return render(
            request,
            "run.html",
            {"tab": "runs", "run": run, "flash": FLASH.get((flash, run.status == "running"))},
            now=clock.now(),
            refresh=2 if run.status == "running" else 10 if run.status == "waiting" else None,
        )

    @routes.post(f"{BASE}/jobs/{{agent}}/{{name}}/run")
    async def run_now(request: Request, agent: str, name: str) -> Response:
        try:
            run = await operations.run_job(agent, name)
        except PlannerError as exc:
            return _failed(request, exc, f"Could not run {agent}/{name}", now=clock.now())
        return RedirectResponse(f"{BASE}/runs/{run.id}?flash=run", status_code=303)

    @routes.post(f"{BASE}/triggers/{{agent}}/{{name}}/test")
    async def test_trigger(request: Request, agent: str, name: str) -> Response:
        try:
            run = await operations.test_trigger(agent, name)
        except PlannerError as exc:
            return _failed(
                request, exc, f"Could not send a test event to {agent}/{name}", now=clock.now()
            )
        return RedirectResponse(f"{BASE}/runs/{run.id}?flash=test", status_code=303)

    @routes.get(auth.LOGIN_PATH)
    def login_form(request: Request, next: str = "") -> HTMLResponse:
        return _login_page(request, next, now=clock.now())

    @routes.post(auth.LOGIN_PATH)
    def login(request: Request, token: str = Form(""), next: str = Form("")) -> Response:
        failure = _login_page(
            request, next, now=clock.now(), error="That token is not valid.", status_code=401
        )
        return auth.login_response(request, token, auth.safe_redirect(next), failure=failure)

    @routes.post(auth.LOGOUT_PATH)
    def logout(request: Request) -> Response:
        return auth.logout_response(request, f"{BASE}/")

    @routes.get(f"{BASE}/{{rest:path}}")
    def unknown(request: Request, rest: str) -> HTMLResponse:
        return not_found(
            request, f"The dashboard has no page at {request.url.path}.", now=clock.now()
        )

    return routes


def _login_page(
    request: Request,
    next_path: str,
    *,
    now: datetime,
    error: str | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    where = auth.token_location(request) if getattr(request.app.state, "auth", None) else None
    return render(
        request,
        "login.html",
        {"tab": "login", "next": auth.safe_redirect(next_path), "error": error, "where": where},
        now=now,
        status_code=status_code,
    )


def _failed(
    request: Request, exc: PlannerError, title: str, *, now: datetime, back: str = f"{BASE}/"
) -> HTMLResponse:
    """A request that could not be served as asked: say why on a page, with the way back."""
    status = (
        404 if isinstance(exc, NotFoundError) else 422 if isinstance(exc, InvalidRequest) else 409
    )
    return render(
        request,
        "error.html",
        {
            "title": title,
            "message": str(exc),
            "back": back,
            "back_text": "Back to the Planner" if back == f"{BASE}/" else "Back",
        },
        now=now,
        status_code=status,
    )


def _page(read: Callable[[paging.Query], Page[T]], query: paging.Query) -> Page[T]:
    """A page of a list; a cursor that no longer fits (an old bookmark, an edited link)
    shows the first page instead of an error: on a page, starting over is the answer."""
    try:
        return read(query)
    except InvalidRequest:
        return read(dataclasses.replace(query, cursor=None))


def _state(value: str) -> State | None:
    return next((s for s in RESOURCE_STATES if s == value), None)


def _query(current: Mapping[str, str]) -> Callable[..., str]:
    """``query(jobs=cursor)``: this page's URL query with some parameters changed."""

    def query(**changes: str | None) -> str:
        values = {**current, **changes}
        return urlencode({k: v for k, v in values.items() if v})

    return query


def _refresh_if_running(items: list[Any]) -> int | None:
    """Refresh while a last run is still going, so its outcome appears without a reload."""
    running = any(i.last_run is not None and i.last_run.status == "running" for i in items)
    return 5 if running else None
