"""``POST /api/plan``: plan agent files a client sent against this operator's state; write nothing.

CI without database credentials: ``reconcile --dry-run --server URL`` reads the revision's (or
the work tree's) agent files on the runner and sends them here, and the operator plans them with
the same engine call a local ``reconcile --dry-run`` makes (``reconcile.engine.reconcile`` with
``dry_run=True``: no apply lock, no write) against the shared state and the live backends it is
configured with. The files go through the loader exactly as files read from disk (an oversized
one is refused by size, not read), so ``file:line:col`` errors come back in the plan, rendered in
the format asked for; the client prints the text and derives its exit code from ``ok`` and
``has_changes`` as a local dry run does.

A plan reads the live backends (it may spend the Composio request budget), so it needs the API
token like every write (``server.auth``), and the body is capped (``server.bodylimit.PLAN``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, Literal

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field, field_validator

from planner_operator.backends import select
from planner_operator.core import clock as clock_mod
from planner_operator.core.revision import Revision
from planner_operator.core.settings import Settings
from planner_operator.reconcile import engine, render, source
from planner_operator.reconcile import plan as plan_mod
from planner_operator.server import bodylimit
from planner_operator.server.api import status as api_status

PATH = "/api/plan"
MAX_FILES = 10_000
MAX_PATH = 1024
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class RevisionBody(BaseModel):
    """What the files are: a commit (``git``) or the client's work tree, as the plan names it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["git", "worktree"]
    location: Annotated[str, Field(max_length=MAX_PATH)]
    sha: Annotated[str | None, Field(pattern=r"^[0-9a-f]{7,64}$")] = None
    ref: Annotated[str | None, Field(max_length=MAX_PATH)] = None
    dirty: bool = False

    @classmethod
    def of(cls, revision: Revision) -> RevisionBody:
        return cls(
            kind="git" if revision.kind == "git" else "worktree",
            location=revision.location,
            sha=revision.sha,
            ref=revision.ref,
            dirty=revision.dirty,
        )

    def revision(self) -> Revision:
        return Revision(self.kind, self.location, self.sha, self.ref, self.dirty)


class OptionsBody(BaseModel):
    """The plan's ``--allow-*`` flags (they change what the plan refuses, so the answer too)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    allow_mass_delete: bool = False
    allow_protected_delete: bool = False
    allow_empty: bool = False
    take_over_subscription: bool = False


class PlanRequest(BaseModel):
    """The agent files of one revision (path -> text) and how to render the plan."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    files: Annotated[
        dict[str, str],
        Field(
            max_length=MAX_FILES,
            description="Agent file path (as errors should name it) -> its text. Bytes that are "
            "not UTF-8 travel as surrogate escapes and are restored before loading.",
        ),
    ]
    oversized: Annotated[
        dict[str, Annotated[int, Field(ge=0)]],
        Field(max_length=MAX_FILES, description="Files too large to send: path -> bytes."),
    ] = {}
    revision: RevisionBody
    format: Literal["text", "markdown", "json"] = "text"
    options: OptionsBody = OptionsBody()
    directory_exists: bool = True

    @field_validator("files", "oversized")
    @classmethod
    def _paths(cls, value: dict[str, object]) -> dict[str, object]:
        for path in value:
            if not path or len(path) > MAX_PATH or _CONTROL.search(path):
                raise ValueError(
                    f"file path {path[:80]!r} must be 1-{MAX_PATH} characters without control "
                    "characters"
                )
            if not path.endswith(source.SUFFIXES):
                raise ValueError(f"file path {path[:80]!r} is not an agent file (.yaml or .yml)")
        return value

    def snapshot(self) -> source.Snapshot:
        """The files as the local readers would have made them (see ``source.received_file``)."""
        sent = [source.received_file(p, _bytes(t), 0) for p, t in self.files.items()]
        big = [source.received_file(p, None, n) for p, n in self.oversized.items()]
        files = tuple(sorted((*sent, *big), key=lambda f: f.display))
        return source.Snapshot(self.revision.revision(), files, self.directory_exists)

    def plan_options(self) -> plan_mod.PlanOptions:
        return plan_mod.PlanOptions(**self.options.model_dump())


class PlanAnswer(BaseModel):
    """The rendered plan and what a dry run's exit code is made of."""

    format: Literal["text", "markdown", "json"]
    output: str = Field(description="The plan, rendered as `reconcile --dry-run` prints it.")
    ok: bool = Field(description="False: load errors or refused changes (the CLI exits 1).")
    has_changes: bool = Field(description="True: `--detailed-exitcode` exits 2.")


def _bytes(text: str) -> bytes:
    """The file's bytes: surrogate escapes back to the bytes they stand for; any other lone
    surrogate stays invalid UTF-8, which the loader reports as it would from disk."""
    try:
        return text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogatepass")


def plan(
    request: PlanRequest,
    settings: Settings,
    env: Mapping[str, str],
    *,
    clock: clock_mod.Clock = clock_mod.SYSTEM,
) -> PlanAnswer:
    """Plan ``request``'s files against the state and backends ``settings`` and ``env`` name."""
    outcome = engine.reconcile(
        source.Received(request.snapshot()),
        settings,
        options=request.plan_options(),
        dry_run=True,
        backends_factory=lambda s: select.open_backends(s, env, clock=clock),
        clock=clock,
    )
    text = render.render(outcome.plan, request.format, now=clock.now())
    return PlanAnswer(
        format=request.format, output=text, ok=outcome.plan.ok, has_changes=outcome.plan.has_changes
    )


def router(
    settings: Settings, env: Mapping[str, str], *, clock: clock_mod.Clock = clock_mod.SYSTEM
) -> APIRouter:
    api = APIRouter(prefix="/api", tags=["plan"])

    @api.post(
        "/plan",
        response_model=PlanAnswer,
        summary="Plan agent files (dry run)",
        max_body_size=bodylimit.cap(env, PATH),
        responses={
            409: {
                "model": api_status.Problem,
                "description": "The operator cannot plan now (its state or a backend cannot be "
                "read); the detail says why.",
            }
        },
    )
    def plan_files(body: PlanRequest) -> PlanAnswer:
        """Plan the agent files in the body against this operator's state and backends, as
        `reconcile --dry-run` would with them, and write nothing (no apply lock either). Load
        errors are part of the plan (`ok` false), not an error answer."""
        return api_status.answer(lambda: plan(body, settings, env, clock=clock))

    return api
