"""How large a request body each route accepts: one table, enforced before the body is read.

Starlette reads a whole body into memory when a route asks for it and sets no limit of its own
(encode/starlette#2155), so twenty concurrent 50 MB bodies to a trigger test once took the server
to 4.77 GB of memory and about 3 GB of inbox on disk. Every route now has a cap: the app-wide
:data:`DEFAULT` for anything not in :func:`caps` (forms, run-now, the 409 answers of the
Triggers-module writes, and any route added later), and the table's own caps for the routes that
take real payloads. A declared ``Content-Length`` over the cap is answered 413 before a byte is
read; a chunked body is cut off at the cap. Starlette and FastAPI count (``max_body_size`` on
the app and on each route); this module only decides the numbers, which each route declares
with :func:`cap`, and says them in the OpenAPI document (each operation's 413).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI

from planner_operator.core import variables

KIB = 1024
MIB = 1024 * KIB
DEFAULT = 64 * KIB  # every route not named below
GIT_HOOK = 4 * MIB  # `run`'s /hooks/git: a GitHub push event lists at most 2,048 commits
PLAN = 16 * MIB  # POST /api/plan: a repository's agent files (each at most 1 MiB, the loader's cap)
INNGEST = 32 * MIB  # Inngest's own limit on a run's memoized step state, which it sends us
# The webhook receivers count their own body against PLANNER_WEBHOOK_MAX_BODY, before and while
# reading, so that a 413 is in their JSON shape and their metrics; the framework's count is
# lifted for their routes (a framework cap would replace their answer with its own).
RECEIVER = 2**62


def caps(env: Mapping[str, str]) -> dict[str, int]:
    """``{route path template: bytes}`` for the routes that take more than :data:`DEFAULT`.

    A test event (``/test``) or a workflow's input may be as large as a real delivery, so they
    share the webhook cap. The receivers enforce theirs themselves (see :data:`RECEIVER`).
    """
    event = variables.WEBHOOK_MAX_BODY.read(env)
    return {
        "/api/triggers/{agent}/{trigger}/test": event,
        "/triggers/{agent}/{trigger}/test": event,
        "/workflows/{workflow_id}/run": event,
        "/webhooks/composio": event,
        "/webhooks/{agent}/{trigger}": event,
        "/hooks/git": GIT_HOOK,
        "/api/plan": PLAN,
        "/api/inngest": INNGEST,  # the SDK's default serve path; see cap() for another one
    }


def cap(env: Mapping[str, str], path: str) -> int:
    """The cap of the route at ``path`` (its full path template), for its declaration
    (``max_body_size=bodylimit.cap(env, "/api/...")``) and its OpenAPI 413 alike."""
    return caps(env).get(path, DEFAULT)


def document(app: FastAPI, env: Mapping[str, str], *, inngest_path: str | None = None) -> None:
    """Say each write operation's cap in its OpenAPI 413 answer."""
    table = caps(env)
    if inngest_path is not None:
        table[inngest_path] = INNGEST
    original = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = original()
            for path, operations in schema.get("paths", {}).items():
                for method, operation in operations.items():
                    if method.upper() in ("POST", "PUT", "PATCH", "DELETE"):
                        limit = table.get(path, DEFAULT)
                        operation.setdefault("responses", {}).setdefault(
                            "413",
                            {
                                "description": f"The request body is over {limit} bytes.",
                                "content": {"text/plain": {"schema": {"type": "string"}}},
                            },
                        )
        assert app.openapi_schema is not None
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
