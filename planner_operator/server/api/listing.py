"""The list routes' shared parts: paging and filter parameters, 400 answers, page headers.

``GET /api/jobs``, ``/api/triggers``, ``/api/agents`` and the compat ``GET /triggers`` answer a
JSON list, as before paging existed, so a client that reads the body keeps working; the page
around it travels in headers, as GitHub's REST API does: ``X-Next-Cursor`` (the
``next_cursor`` to pass as ``cursor`` for the next page; absent on the last one), ``Link:
<...>; rel="next"`` (the whole next URL) and ``X-Total-Count`` (how many match, over all
pages).

A bad parameter is a 400 naming it (``{"detail": "...", "parameter": "limit"}``), whether
FastAPI's own validation caught it (a ``limit`` that is no number, an unknown ``state``), the
read model did (a cursor from another query) or the name is not a parameter of the route at
all (``stat=error``, which would otherwise quietly list everything): :class:`ListRoute` turns
each into the same answer.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import Depends, Query, Request, Response
from fastapi.dependencies.models import Dependant
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel

from planner_operator.read import paging
from planner_operator.read.states import State
from planner_operator.read.views import Page


class BadParameter(BaseModel):
    detail: str
    parameter: str


_HEADERS = {
    "X-Next-Cursor": {
        "description": "`next_cursor`: pass it as `cursor` for the next page (absent: last).",
        "schema": {"type": "string"},
    },
    "X-Total-Count": {
        "description": "How many match the filters, over all pages.",
        "schema": {"type": "integer"},
    },
    "Link": {"description": 'The next page\'s URL, `rel="next"`.', "schema": {"type": "string"}},
}


def responses(what: str) -> dict[int | str, dict[str, Any]]:
    return {
        200: {"description": f"One page of {what}, in the requested order.", "headers": _HEADERS},
        400: {"model": BadParameter, "description": "A bad parameter; `parameter` names it."},
    }


Limit = Annotated[
    int,
    Query(
        ge=1,
        le=paging.MAX_LIMIT,
        description=f"Page size (1 to {paging.MAX_LIMIT}).",
    ),
]
Cursor = Annotated[
    str | None,
    Query(max_length=600, description="`next_cursor` of the previous page (opaque)."),
]
AgentFilter = Annotated[str | None, Query(max_length=200, description="Only this agent (id).")]
StateFilter = Annotated[State | None, Query(description="Only resources in this state.")]
AgentStateFilter = Annotated[
    State | None, Query(description="Only agents with a job or trigger in this state.")
]
SourceFilter = Annotated[paging.Source | None, Query(description="Only triggers from this source.")]
ToolkitFilter = Annotated[
    str | None, Query(max_length=100, description="Only triggers of this Composio toolkit.")
]
Text = Annotated[
    str | None,
    Query(
        max_length=paging.MAX_QUERY,
        description="Text in the key, name or description (case-insensitive).",
    ),
]
SortBy = Annotated[
    paging.Sort,
    Query(description="`key` (default) or `next_fire` (soonest first; jobs and agents)."),
]


def agent_query(
    q: Text = None,
    state: AgentStateFilter = None,
    sort: SortBy = "key",
    limit: Limit = paging.DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> paging.Query:
    """The agent list's parameters, declared once for every route that pages agents."""
    return paging.Query(state=state, q=q, sort=sort, limit=limit, cursor=cursor)


def job_query(
    agent: AgentFilter = None,
    state: StateFilter = None,
    q: Text = None,
    sort: SortBy = "key",
    limit: Limit = paging.DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> paging.Query:
    """The job list's parameters."""
    return paging.Query(agent=agent, state=state, q=q, sort=sort, limit=limit, cursor=cursor)


def trigger_query(
    agent: AgentFilter = None,
    state: StateFilter = None,
    source: SourceFilter = None,
    toolkit: ToolkitFilter = None,
    q: Text = None,
    sort: SortBy = "key",
    limit: Limit = paging.DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> paging.Query:
    """The trigger list's parameters (``GET /api/triggers`` and the compat ``GET /triggers``)."""
    return paging.Query(
        agent=agent,
        state=state,
        source=source,
        toolkit=toolkit,
        q=q,
        sort=sort,
        limit=limit,
        cursor=cursor,
    )


AgentQuery = Annotated[paging.Query, Depends(agent_query)]
JobQuery = Annotated[paging.Query, Depends(job_query)]
TriggerQuery = Annotated[paging.Query, Depends(trigger_query)]


def paged(page: Page[Any], request: Request, response: Response) -> list[Any]:
    """The page's items as the body; its cursor and total as headers."""
    response.headers["X-Total-Count"] = str(page.total)
    if page.next_cursor is not None:
        response.headers["X-Next-Cursor"] = page.next_cursor
        query = {k: v for k, v in request.query_params.items() if k != "cursor"}
        query["cursor"] = page.next_cursor
        url = request.url.replace(query=urlencode(query))
        response.headers["Link"] = f'<{url.path}?{url.query}>; rel="next"'
    return page.items


def _bad(exc: RequestValidationError) -> JSONResponse:
    errors = exc.errors()
    first = errors[0] if errors else {}
    loc = [str(part) for part in first.get("loc", ())]
    name = loc[-1] if loc and loc[0] == "query" else (loc[-1] if loc else "query")
    message = str(first.get("msg") or "bad parameter")
    detail = message if f"`{name}`" in message else f"`{name}`: {message}"
    return JSONResponse({"detail": detail, "parameter": name}, status_code=400)


def _query_names(dependant: Dependant) -> set[str]:
    """The query parameters of a route and of the dependencies that declare them."""
    names = {p.alias for p in dependant.query_params}
    for sub in dependant.dependencies:
        names |= _query_names(sub)
    return names


class ListRoute(APIRoute):
    """A route whose bad parameters are 400s naming them (see the module docstring)."""

    strict = True  # unknown parameter names are refused too

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        known = _query_names(self.dependant)

        async def route(request: Request) -> Response:
            unknown = sorted(set(request.query_params) - known)
            if unknown and self.strict:  # a typo (`stat=error`) must not quietly answer everything
                name = unknown[0]
                detail = f"`{name}` is not a parameter here: use {', '.join(sorted(known))}"
                return JSONResponse({"detail": detail, "parameter": name}, status_code=400)
            try:
                return await handler(request)
            except RequestValidationError as exc:
                return _bad(exc)

        return route


class CompatListRoute(ListRoute):
    """The Triggers module's routes: bad values are 400s, but names this API does not know are
    ignored, as they always were (an old client may still send its own)."""

    strict = False
