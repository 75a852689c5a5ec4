"""The Triggers module's writes (``POST /triggers``, ``PUT|PATCH|DELETE /triggers/{agent}/
{trigger}``) as edits of agent files, on a server that follows an agent source.

Each maps onto the same proposal as ``/api/agents/{agent}/triggers/{trigger}`` (``edits.py``),
so a Triggers-module client gets the same diff, plan, commit or pull request, and the same 409
on a stale ``base`` or 422 naming file:line:col. The request bodies are the trigger as in the
agent file (``TriggerCreateRequest`` adds the ``agent`` it belongs to); ``PATCH`` is a JSON
merge patch (RFC 7396) over the trigger as the file has it now.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from planner_operator.config import models
from planner_operator.core import keys
from planner_operator.edit import propose, yamledit
from planner_operator.errors import NotFoundError, PlannerError
from planner_operator.server.api import edits


class TriggerCreateRequest(BaseModel):
    """A new trigger: ``agent`` and ``name``, then the trigger's fields as in the agent file
    (``toolkit``, ``event``, ``connected_account``, ``config``, ``filter``, ``action``...)."""

    model_config = ConfigDict(extra="allow", frozen=True)

    agent: str = Field(pattern=models.SLUG, max_length=63, description="The agent's id.")
    name: str = Field(pattern=models.SLUG, max_length=63, description="The trigger's name.")


class TriggerResponse(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    key: str = Field(description="`<agent>/triggers/<name>`")
    agent: str
    name: str
    change: edits.EditAnswer = Field(description="The edit: diff, plan, commit or PR.")


Fields = Annotated[
    dict[str, Any],
    Body(description="The trigger as in the agent file (PUT: all of it; PATCH: a merge patch)."),
]


def compat_target(
    agent: edits.Name, trigger: edits.Name, dry_run: edits.DryRun = False, base: edits.Base = None
) -> edits.Target:
    """The parameters of ``/triggers/{agent}/{trigger}``: the module's names, ``?base=`` only."""
    return edits.Target(agent, trigger, base, dry_run)


Targeted = Annotated[edits.Target, Depends(compat_target)]


def install(api: APIRouter, editor: propose.Editor) -> None:
    """Add the write routes to the compat router ``api``."""
    path = "/triggers/{agent}/{trigger}"
    answers = edits.ANSWERS | {200: {"model": TriggerResponse}, 202: {"model": TriggerResponse}}

    async def respond(change: propose.Change, response: Response) -> Any:
        result = await edits.execute(editor, change, response)
        if isinstance(result, JSONResponse):
            return result
        key = keys.trigger_key(change.agent, change.name)
        return TriggerResponse(key=key, agent=change.agent, name=change.name, change=result)

    @api.post(
        "/triggers", status_code=202, response_model=TriggerResponse, responses=answers,
        summary="Create a trigger (an edit of the agent file)",
    )  # fmt: skip
    async def create_trigger(
        body: TriggerCreateRequest,
        response: Response,
        dry_run: edits.DryRun = False,
        base: edits.Base = None,
    ) -> Any:
        item = {"name": body.name, **(body.model_extra or {})}
        change = propose.Change(body.agent, "trigger", body.name, "create", item, base, dry_run)
        return await respond(change, response)

    @api.put(
        path, status_code=202, response_model=TriggerResponse, responses=answers,
        summary="Replace a trigger (an edit of the agent file)", operation_id="compat_put_trigger",
    )  # fmt: skip
    async def replace_trigger(body: Fields, response: Response, at: Targeted) -> Any:
        item = {k: v for k, v in body.items() if k != "agent"}
        change = propose.Change(at.agent, "trigger", at.name, "replace", item, at.base, at.dry_run)
        return await respond(change, response)

    @api.patch(
        path, status_code=202, response_model=TriggerResponse, responses=answers,
        summary="Update a trigger: a JSON merge patch (an edit of the agent file)",
        operation_id="compat_patch_trigger",
    )  # fmt: skip
    async def patch_trigger(body: Fields, response: Response, at: Targeted) -> Any:
        try:
            found = await run_in_threadpool(editor.source, at.agent)
            current = yamledit.item(found.text, "trigger", at.name)
        except NotFoundError as exc:
            return edits.refused(404, str(exc), "refused")
        except PlannerError as exc:
            return edits.refused(409, str(exc), "refused")
        if current is None:
            return edits.refused(404, f"no trigger `{at.name}` in {found.file}", "refused")
        item = yamledit.merge_patch(current, body)
        # the merge is made on this read: without a base of the caller's, that is the base
        change = propose.Change(
            at.agent, "trigger", at.name, "replace", item, at.base or found.revision, at.dry_run
        )
        return await respond(change, response)

    @api.delete(
        path, status_code=202, response_model=TriggerResponse, responses=answers,
        summary="Delete a trigger (an edit of the agent file)",
        operation_id="compat_delete_trigger",
    )  # fmt: skip
    async def delete_trigger(response: Response, at: Targeted) -> Any:
        change = propose.Change(at.agent, "trigger", at.name, "delete", None, at.base, at.dry_run)
        return await respond(change, response)
