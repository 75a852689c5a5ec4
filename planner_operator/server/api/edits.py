"""Create, change and delete jobs, triggers and agents over HTTP, as changes to the agent files.

Git stays the source of truth: a write here never touches the operator's state. It becomes an
edit of the agent's file (``edit/propose.py``), checked against the revision the caller read
(``?base=`` or ``If-Match``), validated and planned like any file, and then written to the work
tree, committed, or proposed as a pull request, per ``PLANNER_EDIT_MODE``. The answer is 202
with the proposed change (the file diff, the plan, the commit or pull request), 200 for a
``?dry_run=1`` preview, 409 when the file changed since ``base`` (naming the newer revision) or
the edit cannot be made, 404 for an unknown agent or item, and 422 naming file:line:col when
the edited file would not validate. Writes need the API token (or the dashboard's session and
its same-origin check): ``server/auth.py`` guards every route.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, Header, Path, Query, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from planner_operator.config import models
from planner_operator.edit import propose, yamledit
from planner_operator.errors import (
    EditConflict,
    EditError,
    EditInvalid,
    InvalidRequest,
    NotFoundError,
    PlannerError,
)

Kind = Literal["job", "trigger"]
READ_ONLY = (
    "this server follows no agent source, so it cannot edit one: start it with "
    "`planner-operator run --path DIR` or `run --repo URL` (PLANNER_EDIT_MODE says what a save "
    "does), or edit the agent file in git"
)


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PullRequestView(_Model):
    number: int
    url: str = Field(description="The pull request's page.")
    branch: str


class EditAnswer(_Model):
    """A proposed change: what was (or, for a dry run, would be) written, and its plan."""

    mode: Literal["pr", "commit", "worktree", "off"] = Field(description="PLANNER_EDIT_MODE.")
    status: Literal["preview", "written", "committed", "proposed"] = Field(
        description="preview: dry run, nothing written; written: the work-tree file; "
        "committed: on the watched branch; proposed: a branch and pull request."
    )
    file: str = Field(description="The agent file, as the operator reads it.")
    base_revision: str = Field(description="The revision the edit was checked against.")
    revision: str = Field(description="The revision to make the next edit against.")
    diff: str = Field(description="Unified diff of the file.")
    summary: str = Field(description="The plan's one-line summary.")
    plan: dict[str, Any] = Field(description="The plan, as `reconcile --format json` prints it.")
    plan_markdown: str = Field(description="The plan as a pull-request comment shows it.")
    detail: str
    commit: str | None = None
    branch: str | None = None
    pull_request: PullRequestView | None = None


class EditRefused(_Model):
    detail: str
    reason: Literal["conflict", "refused", "read-only"]
    file: str | None = None
    base_revision: str | None = None
    current_revision: str | None = Field(
        default=None, description="Conflicts: the newer revision to reload at."
    )


class SourceView(_Model):
    agent: str
    file: str
    revision: str = Field(description="Send it back as `?base=` with the edit.")
    text: str
    content: dict[str, Any] = Field(
        description="The file as JSON (what an edit dialog pre-fills its form from)."
    )
    mode: Literal["pr", "commit", "worktree", "off"]


class AgentBody(_Model):
    """A new agent file: what goes above `planner:` (jobs and triggers are added one by one)."""

    id: str = Field(pattern=models.SLUG, max_length=63, description="The agent id and file stem.")
    name: str = Field(min_length=1)
    description: str | None = None
    timezone: str | None = Field(default=None, description="IANA name; default UTC.")
    variables: dict[str, str | int | float | bool] | None = None


Name = Annotated[str, Path(pattern=models.SLUG, max_length=63)]
Item = Annotated[
    dict[str, Any],
    Body(description="The whole job or trigger as in the agent file (`name` defaults to the "
         "path's; a different one renames it)."),
]  # fmt: skip
DryRun = Annotated[bool, Query(description="Only preview: validate and plan, write nothing.")]
Base = Annotated[
    str | None,
    Query(alias="base", max_length=200, description="The revision the edit was made against "
          "(from GET .../source or the last answer); a newer file is a 409. Or send If-Match."),
]  # fmt: skip
IfMatch = Annotated[
    str | None, Header(max_length=200, description="The base revision, as `?base=` takes it.")
]


@dataclass(frozen=True)
class Target:
    """Which item an edit route names, the revision it was made against, and whether to write."""

    agent: str
    name: str
    base: str | None
    dry_run: bool


def target(
    agent: Name,
    name: Name,
    dry_run: DryRun = False,
    base_rev: Base = None,
    if_match: IfMatch = None,
) -> Target:
    """The parameters every item route takes, declared once (``?base=`` or ``If-Match``)."""
    base = base_rev or (if_match.strip().strip('"') if if_match else None)
    return Target(agent, name, base, dry_run)


Targeted = Annotated[Target, Depends(target)]

ANSWERS: dict[int | str, dict[str, Any]] = {
    200: {"model": EditAnswer, "description": "Dry run: the change that would be made."},
    202: {"model": EditAnswer, "description": "The change, written / committed / proposed."},
    404: {"model": EditRefused, "description": "No such agent, job or trigger."},
    409: {"model": EditRefused, "description": "The file changed since `base`, or refused."},
}


REFUSALS: dict[int | str, dict[str, Any]] = {k: v for k, v in ANSWERS.items() if k in (404, 409)}


def router(editor: propose.Editor | None) -> APIRouter:
    """The edit routes over ``editor`` (None: a server with no agent source answers 409)."""
    api = APIRouter(prefix="/api", tags=["edits"])

    async def run(change: propose.Change, response: Response) -> EditAnswer | JSONResponse:
        return await execute(editor, change, response)

    @api.get(
        "/agents/{agent}/source", response_model=SourceView, responses=REFUSALS,
        summary="An agent's file, to edit",
    )  # fmt: skip
    async def source(agent: Name) -> SourceView | JSONResponse:
        """The agent's file and the revision to edit it against (what an edit dialog opens)."""
        if editor is None:
            return refused(409, READ_ONLY, "read-only")
        try:
            found = await run_in_threadpool(editor.source, agent)
        except NotFoundError as exc:
            return refused(404, str(exc), "refused")
        except PlannerError as exc:
            return refused(409, str(exc), "refused")
        return SourceView(
            agent=found.agent,
            file=found.file,
            revision=found.revision,
            text=found.text,
            content=yamledit.document(found.text),
            mode=editor.mode,
        )

    @api.post(
        "/agents", status_code=202, response_model=EditAnswer, responses=ANSWERS,
        summary="Create an agent file",
    )  # fmt: skip
    async def create_agent(
        body: AgentBody, response: Response, dry_run: DryRun = False
    ) -> EditAnswer | JSONResponse:
        """A new agent file `agents/<id>.yaml` with no jobs or triggers yet; 409 when the id
        is taken. Add jobs and triggers with the routes below."""
        item = body.model_dump(exclude_none=True, exclude={"id"})
        change = propose.Change(body.id, "agent", body.id, "create", item, dry_run=dry_run)
        return await run(change, response)

    def add(kind: Kind) -> None:
        path = f"/agents/{{agent}}/{kind}s/{{name}}"

        async def create(item: Item, response: Response, at: Targeted) -> EditAnswer | JSONResponse:
            """Add the item to the agent's file; 409 when one of that name exists."""
            _same_name(item, at.name, renames=False)
            change = propose.Change(at.agent, kind, at.name, "create", item, at.base, at.dry_run)
            return await run(change, response)

        async def replace(
            item: Item, response: Response, at: Targeted
        ) -> EditAnswer | JSONResponse:
            """Replace the item with the body (fields left out take their defaults); a body
            `name` that differs renames it, which the plan shows as delete + create."""
            _same_name(item, at.name, renames=True)
            change = propose.Change(at.agent, kind, at.name, "replace", item, at.base, at.dry_run)
            return await run(change, response)

        async def delete(response: Response, at: Targeted) -> EditAnswer | JSONResponse:
            """Remove the item from the agent's file (pausing is a PUT with `enabled: false`)."""
            change = propose.Change(at.agent, kind, at.name, "delete", None, at.base, at.dry_run)
            return await run(change, response)

        for method, endpoint, verb in (
            ("POST", create, "Add"),
            ("PUT", replace, "Replace"),
            ("DELETE", delete, "Delete"),
        ):
            api.add_api_route(
                path,
                endpoint,
                methods=[method],
                status_code=202,
                response_model=EditAnswer,
                responses=ANSWERS,
                summary=f"{verb} a {kind} (an edit of the agent file)",
                operation_id=f"edit_{method.lower()}_{kind}",
            )

    add("job")
    add("trigger")
    return api


async def execute(
    editor: propose.Editor | None, change: propose.Change, response: Response
) -> EditAnswer | JSONResponse:
    """Propose ``change``: the answer, or the refusal as a JSON response (409, 404) or a 422."""
    if editor is None:
        return refused(409, READ_ONLY, "read-only")
    try:
        proposal = await run_in_threadpool(editor.propose, change)
    except EditConflict as exc:
        return refused(409, str(exc), "conflict", exc.file, exc.base, exc.current)
    except EditInvalid as exc:
        raise _invalid(exc) from None
    except NotFoundError as exc:
        return refused(404, str(exc), "refused")
    except InvalidRequest as exc:
        raise RequestValidationError(
            [{"type": "value_error", "loc": ("body",), "msg": str(exc)}]
        ) from None
    except (EditError, PlannerError) as exc:
        return refused(409, str(exc), "refused")
    response.status_code = 200 if change.dry_run else 202
    return answer(proposal)


def answer(proposal: propose.Proposal) -> EditAnswer:
    pull = proposal.pull_request
    return EditAnswer(
        mode=proposal.mode,
        status=proposal.status,
        file=proposal.file,
        base_revision=proposal.base_revision,
        revision=proposal.revision,
        diff=proposal.diff,
        summary=proposal.summary,
        plan=proposal.plan_json(),
        plan_markdown=proposal.markdown,
        detail=proposal.detail,
        commit=proposal.commit,
        branch=proposal.branch,
        pull_request=PullRequestView(number=pull.number, url=pull.url, branch=pull.head)
        if pull
        else None,
    )


def _same_name(item: dict[str, Any], name: str, *, renames: bool) -> None:
    given = item.get("name", name)
    if given != name and not renames:
        raise RequestValidationError(
            [
                {
                    "type": "value_error",
                    "loc": ("body", "name"),
                    "msg": f"`name` is {given!r} but the path says {name!r}: leave `name` out "
                    "or make them equal",
                }
            ]
        )


def refused(
    status: int,
    detail: str,
    reason: Literal["conflict", "refused", "read-only"],
    file: str | None = None,
    base: str | None = None,
    current: str | None = None,
) -> JSONResponse:
    body = EditRefused(
        detail=detail, reason=reason, file=file, base_revision=base, current_revision=current
    )
    return JSONResponse(body.model_dump(), status_code=status)


def _invalid(exc: EditInvalid) -> RequestValidationError:
    """FastAPI's 422 shape, one entry per file error: ``loc`` is the field, ``msg`` says
    file:line:col, and the position and hint are their own keys."""
    errors = [
        {
            "type": "config_error",
            "loc": ("body", *[p for p in e.path.split(".") if p]),
            "msg": str(e),
            "file": e.file,
            "line": e.position.line,
            "col": e.position.col,
            "hint": e.hint,
        }
        for e in exc.errors
    ] or [{"type": "config_error", "loc": ("body",), "msg": str(exc)}]
    return RequestValidationError(errors)
