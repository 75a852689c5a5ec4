"""The Triggers module's REST shape (``/triggers``, ``/workflows``) over the operator.

Clients written for the platform's Triggers module keep working: listing, reading, testing a
trigger and running a workflow; and creating, updating (PUT, or PATCH as a JSON merge patch)
and deleting a trigger, which become edits of the agent file like ``/api/agents/{agent}/
triggers/{trigger}`` (``api/edits.py``: a pull request, a commit or a work-tree write, per
``PLANNER_EDIT_MODE``), since triggers live in agent files in git, where they are reviewed,
planned and applied. A server that follows no agent source (plain ``serve``) answers those
writes 409 naming the file to edit instead, the way Argo CD refuses to edit an application that
git manages. Workflows are code, registered by id (``executors/workflows.py``); their writes
answer 409 naming the agent files that use one and where it is registered.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal
from urllib.parse import urlsplit

from fastapi import APIRouter, Body, HTTPException, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from planner_operator.core import keys, specs, variables
from planner_operator.core.records import OwnedEntry
from planner_operator.read.views import RunSummary, TriggerView
from planner_operator.runtime.executors.workflows import ENTRY_POINT_GROUP, ENV_WORKFLOWS, Registry
from planner_operator.server import bodylimit
from planner_operator.server.api import compat_writes, listing, status
from planner_operator.state import open as state_open

if TYPE_CHECKING:  # app.py includes this router
    from planner_operator.core.settings import Settings
    from planner_operator.edit.propose import Editor
    from planner_operator.read.views import Reader
    from planner_operator.server.api.operations import Operations

ENV_WORKFLOW_URL = variables.WORKFLOW_URL.name
_SLUG = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
_APPLY = (
    "commit and merge it; the operator applies it on its next reconcile "
    "(`planner-operator reconcile`, or at once under `planner-operator run`)"
)
_WHERE_WORKFLOWS = (
    f"workflows are code registered by id: an entry point in group {ENTRY_POINT_GROUP}, "
    f"{ENV_WORKFLOWS}=<id>=<module:function | URL | inngest:event>, or the platform at "
    f"{ENV_WORKFLOW_URL}"
)


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class GitManaged(_Model):
    """The 409 answer to a configuration write: where to make the change instead."""

    detail: str = Field(description="What to edit, and how the change gets applied.")
    file: str | None = Field(description="The agent file to edit (null: none can be named).")
    new_file: bool = Field(description="True when `file` does not exist yet: create it.")
    files: list[str] = Field(description="Every agent file involved (workflows: their users).")
    key: str | None = Field(default=None, description="The resource key, when one exists.")
    registered_in: str | None = Field(
        default=None, description="Workflows: where this id is registered."
    )


class WorkflowUse(_Model):
    key: str
    kind: Literal["job", "trigger"]
    agent: str
    name: str
    file: str


class WorkflowView(_Model):
    id: str
    registered: bool = Field(description="A target is registered for this id on this operator.")
    runs_on: Literal["python", "http", "inngest", "platform", "unregistered"] = Field(
        description="Where a run goes: a local Python function, an HTTP endpoint, an Inngest "
        "event, the agent platform (PLANNER_WORKFLOW_URL), or nowhere yet."
    )
    target: str | None = Field(description="module:function, endpoint (no credentials), event.")
    origin: str | None = Field(description="builtin | entry point <name> | PLANNER_WORKFLOWS")
    used_by: list[WorkflowUse] = Field(description="Applied jobs and triggers that run it.")
    files: list[str] = Field(description="The agent files that reference it.")


_CONFLICT: dict[int | str, dict[str, Any]] = {
    409: {"model": GitManaged, "description": "Configuration lives in git: edit the named file."}
}
_NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"description": "No such trigger/workflow."}}
_RUN: dict[int | str, dict[str, Any]] = {
    200: {"model": RunSummary, "description": "Nothing ran (filter rejected, disabled)."},
    202: {"description": "Started: poll the run at the Location header (/api/runs/{id})."},
    404: {"description": "No such trigger/workflow."},
    409: {"description": "Cannot be done in the operator's current state."},
}
_ANY_JSON: dict[str, Any] = {
    "requestBody": {"content": {"application/json": {"schema": {}}}, "required": False}
}


def display(source: str) -> str:
    """A ledger source path as a user finds it in the repo: relative when under the cwd."""
    path = Path(source)
    if path.is_absolute():
        try:
            return str(path.relative_to(Path.cwd()))
        except ValueError:
            return source
    return source


def router(
    reader: Reader,
    operations: Operations,
    settings: Settings,
    env: Mapping[str, str],
    editor: Editor | None = None,
) -> APIRouter:
    """The compat routes, over the same ``reader`` and ``operations`` as ``api/status.py``;
    trigger writes edit agent files through ``editor`` (None: they answer 409)."""
    registry = Registry.discover(env)
    platform = variables.WORKFLOW_URL.is_set(env)
    api = APIRouter(tags=["compat (Triggers module)"])

    # -- triggers -------------------------------------------------------------------------------

    lists = APIRouter(route_class=listing.CompatListRoute)

    @lists.get(
        "/triggers", response_model=list[TriggerView], responses=listing.responses("triggers")
    )
    def list_triggers(
        request: Request, response: Response, query: listing.TriggerQuery
    ) -> list[TriggerView]:
        """Applied triggers, as in `GET /api/triggers` (same filters and pages)."""
        page = status.answer(lambda: reader.trigger_page(query))
        return listing.paged(page, request, response)

    api.include_router(lists)

    @api.get("/triggers/{agent}/{trigger}", response_model=TriggerView, responses=_NOT_FOUND)
    def get_trigger(agent: str, trigger: str) -> TriggerView:
        return status.answer(lambda: reader.trigger(agent, trigger))

    @api.post(
        "/triggers/{agent}/{trigger}/test",
        response_model=RunSummary,
        status_code=202,
        responses=_RUN,
        max_body_size=bodylimit.cap(env, "/triggers/{agent}/{trigger}/test"),
    )
    async def test_trigger(
        agent: str,
        trigger: str,
        response: Response,
        body: status.EventBody = None,
    ) -> RunSummary:
        """`POST /api/triggers/{agent}/{trigger}/test` under its Triggers-module name: the event
        goes through the filter and the action; 200 when nothing ran (filter, disabled)."""
        return await status.act(lambda: operations.test_trigger(agent, trigger, body), response)

    if editor is not None:
        compat_writes.install(api, editor)
    else:

        @api.post("/triggers", status_code=409, responses=_CONFLICT, openapi_extra=_ANY_JSON)
        async def create_trigger(request: Request) -> JSONResponse:
            """Refused: this server follows no agent source (the answer names the file)."""
            body = await _json_body(request)
            agent = _field(body, "agent", "agent_id", "agentId")
            name = _field(body, "name", "trigger", "slug")
            entries = await run_in_threadpool(_entries, settings)
            return _conflict(_create_answer(entries, agent, name))

        def change_trigger(agent: str, trigger: str, request: Request) -> JSONResponse:
            """Refused: edit the trigger in its agent file (the answer names it)."""
            verb = "remove it from" if request.method == "DELETE" else "edit it in"
            return _conflict(_trigger_answer(_entries(settings), agent, trigger, verb))

        _refusals(api, "/triggers/{agent}/{trigger}", "trigger", change_trigger)

    # -- workflows ------------------------------------------------------------------------------

    def workflows() -> dict[str, WorkflowView]:
        uses: dict[str, list[WorkflowUse]] = {}
        for entry in _entries(settings):
            action = specs.parse(entry.kind, entry.spec).action
            if isinstance(action, specs.WorkflowAction):
                uses.setdefault(action.id, []).append(_use(entry))
        ids = sorted({*registry.ids(), *uses})
        return {wid: _workflow(registry, platform, wid, uses.get(wid, [])) for wid in ids}

    def one(workflow_id: str) -> WorkflowView:
        found = workflows().get(workflow_id)
        if found is None:
            raise HTTPException(
                404, f"no workflow `{workflow_id}` (GET /workflows lists them; {_WHERE_WORKFLOWS})"
            )
        return found

    @api.get("/workflows", response_model=list[WorkflowView])
    def list_workflows() -> list[WorkflowView]:
        """Registered workflows and the ones agent files reference, with their users."""
        return list(workflows().values())

    @api.get("/workflows/{workflow_id}", response_model=WorkflowView, responses=_NOT_FOUND)
    def get_workflow(workflow_id: str) -> WorkflowView:
        return one(workflow_id)

    @api.post(
        "/workflows/{workflow_id}/run",
        response_model=RunSummary,
        status_code=202,
        responses=_RUN,
        max_body_size=bodylimit.cap(env, "/workflows/{workflow_id}/run"),
    )
    async def run_workflow(
        workflow_id: str,
        response: Response,
        body: Annotated[
            dict[str, Any] | None, Body(description="The workflow input; omit it for {}.")
        ] = None,
    ) -> RunSummary:
        """Run a workflow now with the body as its input, as key `workflows/<id>` (origin
        `manual`) in run history; answers with the started run, poll its Location."""
        if (await run_in_threadpool(one, workflow_id)).runs_on == "unregistered":
            raise HTTPException(
                404, f"workflow `{workflow_id}` is not registered: {_WHERE_WORKFLOWS}"
            )
        return await status.act(lambda: operations.run_workflow(workflow_id, body or {}), response)

    @api.post("/workflows", status_code=409, responses=_CONFLICT, openapi_extra=_ANY_JSON)
    async def create_workflow(request: Request) -> JSONResponse:
        """Refused: workflows are registered code, referenced from agent files."""
        body = await _json_body(request)
        wid = _field(body, "id", "workflow_id", "workflowId", "name")
        agent = _field(body, "agent", "agent_id", "agentId")
        file = _agent_file(await run_in_threadpool(_entries, settings), agent)[0]
        files = [file] if file else []
        detail = (
            f"workflows cannot be created over HTTP: {_WHERE_WORKFLOWS}. Then reference it from "
            f"an agent file as `action: {{workflow: {{id: {wid or '<id>'}}}}}`"
            + (f" in {files[0]}" if files else "")
            + f", and {_APPLY}"
        )
        return _conflict(
            GitManaged(detail=detail, file=files[0] if files else None, new_file=False, files=files)
        )

    def change_workflow(workflow_id: str) -> JSONResponse:
        """Refused: change the workflow's code or registration, or the agent files using it."""
        known = workflows().get(workflow_id)
        files = known.files if known else []
        where = _registration(known)
        users = f"agent files that use it: {', '.join(files)}" if files else "no agent file uses it"
        detail = (
            f"workflow `{workflow_id}` is not configured over HTTP: {where}; {users}. "
            f"To stop using it or change its input, edit those files and {_APPLY}"
        )
        return _conflict(
            GitManaged(
                detail=detail,
                file=files[0] if files else None,
                new_file=False,
                files=files,
                registered_in=where,
            )
        )

    _refusals(api, "/workflows/{workflow_id}", "workflow", change_workflow)
    return api


def _refusals(api: APIRouter, path: str, what: str, endpoint: Callable[..., Any]) -> None:
    """PUT, PATCH and DELETE on ``path``, one route each (one operation id per method)."""
    for method, verb in (("PUT", "Replace"), ("PATCH", "Update"), ("DELETE", "Delete")):
        api.add_api_route(
            path,
            endpoint,
            methods=[method],
            status_code=409,
            responses=_CONFLICT,
            openapi_extra=_ANY_JSON if method != "DELETE" else None,
            summary=f"{verb} a {what} (refused: configuration lives in git)",
            operation_id=f"compat_{method.lower()}_{what}",
        )


# -- answers ------------------------------------------------------------------------------------


def _trigger_answer(entries: list[OwnedEntry], agent: str, trigger: str, verb: str) -> GitManaged:
    key = keys.trigger_key(agent, trigger)
    entry = next((e for e in entries if e.key == key and e.kind == "trigger"), None)
    if entry is None or not entry.source:
        file, new = _agent_file(entries, agent)
        where = f"{file} (a new file)" if new else file or "agents/<agent-id>.yaml"
        detail = (
            f"no applied trigger `{key}`, and triggers are not configured over HTTP: declare "
            f"it under `planner.triggers` in {where}, then {_APPLY}"
        )
        return GitManaged(detail=detail, file=file, new_file=new, files=[file] if file else [])
    file = display(entry.source)
    detail = (
        f"trigger `{key}` is declared in git, not over HTTP: {verb} `planner.triggers` "
        f"(name: {trigger}) in {file}, then {_APPLY}"
    )
    return GitManaged(detail=detail, file=file, new_file=False, files=[file], key=key)


def _create_answer(entries: list[OwnedEntry], agent: str | None, name: str | None) -> GitManaged:
    file, new = _agent_file(entries, agent)
    if file is None:
        detail = (
            "triggers are not created over HTTP: add one under `planner.triggers` in the agent's "
            f"file agents/<agent-id>.yaml (send `agent` in the body to get its path), then {_APPLY}"
        )
        return GitManaged(detail=detail, file=None, new_file=False, files=[])
    where = f"{file} (a new file: id, name and planner.triggers)" if new else file
    entry = f"`- name: {name}` " if name else "an entry "
    detail = (
        f"triggers are not created over HTTP: add {entry}under `planner.triggers` in {where}, "
        f"then {_APPLY}"
    )
    return GitManaged(detail=detail, file=file, new_file=new, files=[file])


def _agent_file(entries: list[OwnedEntry], agent: str | None) -> tuple[str | None, bool]:
    """The file that declares ``agent`` (as last applied), else the conventional new
    ``agents/<agent>.yaml``; and whether it is new. None for no agent or not a slug."""
    if not agent or not _SLUG.match(agent):
        return None, False
    for entry in entries:
        if entry.key.startswith(f"{agent}/") and entry.source:
            return display(entry.source), False
    return f"agents/{agent}.yaml", True


def _registration(view: WorkflowView | None) -> str:
    if view is None or not view.registered:
        return f"it is not registered here ({_WHERE_WORKFLOWS})"
    if view.origin == "builtin":
        return (
            f"it is an example shipped with the operator ({view.target}, listed in "
            "planner_operator/runtime/workflows/__init__.py); register your own under the same id "
            "to "
            f"replace it ({_WHERE_WORKFLOWS})"
        )
    if view.origin == ENV_WORKFLOWS:
        return f"it is registered by the environment variable {ENV_WORKFLOWS} ({view.target})"
    return f"it is registered by the {view.origin} in group {ENTRY_POINT_GROUP} ({view.target})"


def _workflow(
    registry: Registry, platform: bool, wid: str, uses: list[WorkflowUse]
) -> WorkflowView:
    target = registry.get(wid)
    runs_on: Any
    if platform and (target is None or target.origin == "builtin"):
        runs_on = "platform"  # as WorkflowRunner.run decides
    else:
        runs_on = target.kind if target else "unregistered"
    shown = None
    if target is not None:
        shown = _endpoint(target.ref) if target.kind == "http" else target.ref
    return WorkflowView(
        id=wid,
        registered=target is not None,
        runs_on=runs_on,
        target=shown,
        origin=target.origin if target else None,
        used_by=uses,
        files=sorted({u.file for u in uses}),
    )


def _endpoint(url: str) -> str:
    """Scheme, host and path only: user info and query strings may hold credentials."""
    parts = urlsplit(url)
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{parts.hostname or ''}{port}{parts.path}"


def _use(entry: OwnedEntry) -> WorkflowUse:
    agent, _, rest = entry.key.partition("/")
    name = rest.partition("/")[2]
    return WorkflowUse(
        key=entry.key, kind=entry.kind, agent=agent, name=name, file=display(entry.source)
    )


def _entries(settings: Settings) -> list[OwnedEntry]:
    if not state_open.exists(settings, "ledger"):
        return []
    with state_open.ledger(settings) as ledger:
        return ledger.entries(include_retired=False)


def _conflict(answer: GitManaged) -> JSONResponse:
    return JSONResponse(answer.model_dump(), status_code=409)


async def _json_body(request: Request) -> Any:
    """The JSON body of a refused write, None when empty or not JSON: the write is refused
    whatever it carries, so the body only helps name the file."""
    raw = await request.body()
    try:
        return json.loads(raw) if raw.strip() else None
    except ValueError:
        return None


def _field(body: Any, *names: str) -> str | None:
    """A slug-like string field of a JSON object body (anything else is ignored)."""
    if not isinstance(body, dict):
        return None
    for name in names:
        value = body.get(name)
        if isinstance(value, str) and _SLUG.match(value):
            return value
    return None
