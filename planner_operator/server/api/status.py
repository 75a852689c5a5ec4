"""The status API: agents, jobs, triggers and run history as JSON, plus run-now and trigger tests.

Every answer is a read-model type from ``views`` (declared as the response model, so the OpenAPI
document is the contract and schemathesis holds the server to it). Errors are answered, never
raised as 500s: 404 ``{"detail": "..."}`` names what was not found and how to list what exists;
422 uses FastAPI's validation shape (``detail`` is a list naming the field), for bad parameters
and for a trigger test whose body cannot fill the template; 409 when the operator cannot do it
in its current state (the detail says why).

Reads are plain ``def`` routes (SQLite work runs in the threadpool); the two actions are
``async`` and answer 202 with the started run and a ``Location`` of ``/api/runs/{id}``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

from fastapi import APIRouter, Body, HTTPException, Path, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel

from planner_operator.errors import InvalidRequest, NotFoundError, PlannerError, TemplateError
from planner_operator.read.views import (
    AgentView,
    JobView,
    ReconcileView,
    RunDetail,
    RunPage,
    RunStatus,
    RunSummary,
    StatusView,
    TriggerView,
)

if TYPE_CHECKING:
    from planner_operator.read.views import Reader
    from planner_operator.server import bodylimit
from planner_operator.server import bodylimit
from planner_operator.server.api import listing
from planner_operator.server.api.operations import Operations

T = TypeVar("T")
MAX_ID = 2**63 - 1  # SQLite's largest integer: a bigger id is a 422, not an overflow


class Problem(BaseModel):
    detail: str


_404 = {"model": Problem, "description": "Not found; the detail says how to list what exists."}
_409 = {"model": Problem, "description": "Cannot be done in the operator's current state."}
_LOCATION = {"Location": {"description": "The run: /api/runs/{id}", "schema": {"type": "string"}}}
Agent = Annotated[str | None, Query(description="Only this agent (its id).")]
EventBody = Annotated[
    dict[str, Any] | None,
    Body(description="The event payload; omit it for a sample built from the schema."),
]
RowId = Annotated[int, Path(ge=1, le=MAX_ID, description="Run history row id.")]


def _invalid(exc: PlannerError) -> RequestValidationError:
    field = exc.field if isinstance(exc, InvalidRequest) else ""
    loc = ("body",) if field in ("", "body") else ("query", field)
    return RequestValidationError([{"type": "value_error", "loc": loc, "msg": str(exc)}])


def answer(fn: Callable[[], T]) -> T:
    """Our errors as answers: 404 not found, 422 naming the field, 409 for the rest."""
    try:
        return fn()
    except NotFoundError as exc:
        raise HTTPException(404, str(exc)) from None
    except (InvalidRequest, TemplateError) as exc:
        raise _invalid(exc) from None
    except PlannerError as exc:
        raise HTTPException(409, str(exc)) from None


async def act(fn: Callable[[], Awaitable[RunSummary]], response: Response) -> RunSummary:
    """An action's answer: 202 + Location for a started run, 200 when nothing ran."""
    try:
        run = await fn()
    except NotFoundError as exc:
        raise HTTPException(404, str(exc)) from None
    except (InvalidRequest, TemplateError) as exc:
        raise _invalid(exc) from None
    except PlannerError as exc:
        raise HTTPException(409, str(exc)) from None
    response.status_code = 200 if run.status == "skipped" else 202
    response.headers["Location"] = f"/api/runs/{run.id}"
    return run


def router(reader: Reader, operations: Operations) -> APIRouter:
    """The routes for ``create_app``: reads through ``reader``, acts through ``operations``."""
    api = APIRouter(prefix="/api", tags=["status"])

    lists = APIRouter(route_class=listing.ListRoute)  # bad parameters: 400 naming them

    @lists.get(
        "/agents",
        response_model=list[AgentView],
        summary="Agents",
        responses=listing.responses("agents"),
    )
    def agents(request: Request, response: Response, query: listing.AgentQuery) -> list[AgentView]:
        """Agents with applied jobs or triggers: name, file, and how many are in each state;
        a page at a time (`X-Next-Cursor`), by id or by their soonest next fire."""
        return listing.paged(answer(lambda: reader.agent_page(query)), request, response)

    @lists.get(
        "/jobs",
        response_model=list[JobView],
        summary="Scheduled jobs",
        responses=listing.responses("jobs"),
    )
    def jobs(request: Request, response: Response, query: listing.JobQuery) -> list[JobView]:
        """Applied jobs: schedule in words, timezone, state, next 5 fire times (DST noted),
        last run, and the scheduler's fire, missed and overlap-skipped counts; a page at a
        time (`X-Next-Cursor`), by key or soonest next fire first."""
        return listing.paged(answer(lambda: reader.job_page(query)), request, response)

    @lists.get(
        "/triggers",
        response_model=list[TriggerView],
        summary="Event triggers",
        responses=listing.responses("triggers"),
    )
    def triggers(
        request: Request, response: Response, query: listing.TriggerQuery
    ) -> list[TriggerView]:
        """Applied triggers: Composio instance state, why Composio disabled one, filter,
        action, the last event received and the last run; a page at a time
        (`X-Next-Cursor`), by key."""
        return listing.paged(answer(lambda: reader.trigger_page(query)), request, response)

    api.include_router(lists)

    @api.get(
        "/jobs/{agent}/{job}", response_model=JobView, summary="One job", responses={404: _404}
    )
    def job(agent: str, job: str) -> JobView:
        """One applied job, as in the list."""
        return answer(lambda: reader.job(agent, job))

    @api.get(
        "/triggers/{agent}/{trigger}",
        response_model=TriggerView,
        summary="One trigger",
        responses={404: _404},
    )
    def trigger(agent: str, trigger: str) -> TriggerView:
        """One applied trigger, as in the list."""
        return answer(lambda: reader.trigger(agent, trigger))

    @api.get(
        "/triggers/{agent}/{trigger}/sample",
        response_model=dict[str, Any],
        summary="Sample event for a trigger",
        responses={404: _404, 409: _409},
    )
    def sample(agent: str, trigger: str) -> dict[str, Any]:
        """The event a test without a body sends: the trigger type's payload fields, the
        template's placeholders and values meeting the filter, all obviously samples."""
        return answer(lambda: operations.sample_payload(agent, trigger))

    @api.get("/runs", response_model=RunPage, summary="Run history")
    def runs(
        agent: Agent = None,
        job: Annotated[str | None, Query(description="Only this job (needs `agent`).")] = None,
        trigger: Annotated[
            str | None, Query(description="Only this trigger (needs `agent`).")
        ] = None,
        status: Annotated[RunStatus | None, Query(description="Only runs in this status.")] = None,
        limit: Annotated[int, Query(ge=1, le=500, description="Page size.")] = 50,
        before: Annotated[
            int | None, Query(ge=1, le=MAX_ID, description="`next_before` of the previous page.")
        ] = None,
    ) -> RunPage:
        """Runs of jobs, triggers and workflows, newest first, a page at a time."""
        return answer(
            lambda: reader.runs(
                agent=agent, job=job, trigger=trigger, status=status, limit=limit, before=before
            )
        )

    @api.get("/runs/{run_id}", response_model=RunDetail, summary="One run", responses={404: _404})
    def run(run_id: RowId) -> RunDetail:
        """What a run sent (rendered message or workflow input), what came back or the
        error, its timing, and for trigger runs the event and its outcome."""
        return answer(lambda: reader.run(run_id))

    @api.get("/status", response_model=StatusView, summary="Last reconcile and webhook backlog")
    def status() -> StatusView:
        """The webhook backlog (pending deliveries and the age of the oldest, due ones and how
        long they have waited for a worker) beside the last reconcile; as the CLI's ``status``
        and ``/metrics`` show it."""
        return answer(reader.status)

    @api.get("/reconcile", response_model=ReconcileView, summary="Last reconcile")
    def reconcile() -> ReconcileView:
        """The last reconcile (counts, load errors, failures) and the watcher's last cycle."""
        return answer(reader.reconcile)

    @api.post(
        "/jobs/{agent}/{job}/run",
        response_model=RunSummary,
        status_code=202,
        summary="Run a job now",
        responses={202: {"description": "Started.", "headers": _LOCATION}, 404: _404, 409: _409},
    )
    async def run_job(agent: str, job: str, response: Response) -> RunSummary:
        """Run the job once, now, through the normal executor path (origin `manual`; a paused
        job runs too). Answers with the started run; poll its Location for the result."""
        return await act(lambda: operations.run_job(agent, job), response)

    @api.post(
        "/triggers/{agent}/{trigger}/test",
        response_model=RunSummary,
        status_code=202,
        summary="Test a trigger",
        max_body_size=bodylimit.cap(operations.env, "/api/triggers/{agent}/{trigger}/test"),
        responses={
            202: {"description": "The action runs.", "headers": _LOCATION},
            200: {
                "model": RunSummary,
                "description": "Nothing ran: the filter rejected the event (the reason names "
                "the failing conditions) or the trigger is disabled.",
                "headers": _LOCATION,
            },
            400: {"model": Problem, "description": "The body is not JSON."},
            404: _404,
            409: _409,
        },
    )
    async def test_trigger(
        agent: str,
        trigger: str,
        response: Response,
        body: EventBody = None,
    ) -> RunSummary:
        """Fire the trigger's action with an event, through the webhook worker's path:
        filter, template, run history (origin `test`). A body that cannot fill the template
        is refused with 422 and nothing runs."""
        return await act(lambda: operations.test_trigger(agent, trigger, body), response)

    return api
