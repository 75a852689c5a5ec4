"""``reconcile --dry-run --server URL``: plan on a running operator instead of against a database.

The CI runner has the agent files and no database credentials; the operator has the state and
the backends. So the runner reads the revision exactly as a local dry run does
(``SourceSpec.read``), sends the files to the operator's ``POST /api/plan`` with the API token,
and prints the plan the operator rendered. Its answer carries ``ok`` and ``has_changes``, from
which :func:`exit_code` makes the same exit code as a local dry run. Failures to reach or be
understood by the operator are ``PlannerError``s saying what to fix; the token is never shown.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import httpx

from planner_operator.core import variables
from planner_operator.errors import PlannerError, SourceError
from planner_operator.reconcile import plan as plan_mod
from planner_operator.reconcile import source
from planner_operator.server.api import plan as api_plan

TIMEOUT = 300.0  # a plan reads every backend; Composio's request budget may pace it


def exit_code(*, ok: bool, has_changes: bool, detailed: bool) -> int:
    """A dry run's exit code: 1 load errors or refusals, 2 changes (``--detailed-exitcode``)."""
    if not ok:
        return 1
    return 2 if detailed and has_changes else 0


def request(
    snapshot: source.Snapshot, fmt: str, options: plan_mod.PlanOptions
) -> api_plan.PlanRequest:
    """The body for ``snapshot``: each file's text (bytes that are not UTF-8 as surrogate
    escapes, so the operator loads the very bytes read here), oversized files by size."""
    files = {
        f.display: f.data.decode("utf-8", "surrogateescape")
        for f in snapshot.files
        if f.data is not None
    }
    oversized = {f.display: f.size for f in snapshot.files if f.data is None}
    return api_plan.PlanRequest.model_validate(
        {
            "files": files,
            "oversized": oversized,
            "revision": api_plan.RevisionBody.of(snapshot.revision).model_dump(),
            "format": fmt,
            "options": {
                "allow_mass_delete": options.allow_mass_delete,
                "allow_protected_delete": options.allow_protected_delete,
                "allow_empty": options.allow_empty,
                "take_over_subscription": options.take_over_subscription,
            },
            "directory_exists": snapshot.directory_exists,
        }
    )


def plan(
    server: str,
    snapshot: source.Snapshot,
    fmt: str,
    options: plan_mod.PlanOptions,
    env: Mapping[str, str],
    *,
    transport: httpx.BaseTransport | None = None,
    timeout: float = TIMEOUT,
) -> api_plan.PlanAnswer:
    """Ask the operator at ``server`` for the plan of ``snapshot``."""
    base = server.rstrip("/")
    if not base.lower().startswith(("http://", "https://")):
        raise SourceError(f"--server {server!r}: give the operator's http(s):// base URL")
    token = variables.API_TOKEN.read(env)
    if not token:
        raise PlannerError(
            f"--server needs the operator's API token: set {variables.API_TOKEN.name} to the "
            "token `serve` uses (a repository secret in CI)"
        )
    body = json.dumps(request(snapshot, fmt, options).model_dump()).encode("ascii")
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    try:
        with httpx.Client(transport=transport, timeout=timeout) as client:
            answer = client.post(base + api_plan.PATH, content=body, headers=headers)
    except httpx.HTTPError as exc:
        raise PlannerError(f"cannot reach the operator at {base}: {exc}") from exc
    if answer.status_code == 200:
        try:
            return api_plan.PlanAnswer.model_validate_json(answer.content)
        except ValueError as exc:
            raise PlannerError(f"the operator at {base} sent an answer that is not a plan") from exc
    raise PlannerError(_refused(base, answer, len(body)))


def _refused(base: str, answer: httpx.Response, size: int) -> str:
    status = answer.status_code
    detail = _detail(answer)
    if status == 401:
        return (
            f"the operator at {base} refused the API token: set {variables.API_TOKEN.name} to "
            "the token its `serve` uses"
        )
    if status == 413:
        return (
            f"the agent files ({size} bytes as sent) are over the operator's limit for a plan "
            f"({base}{api_plan.PATH}): {detail}"
        )
    if status == 404:
        return f"{base} has no {api_plan.PATH}: is it a planner-operator `serve` of this version?"
    if status == 409:
        return f"the operator at {base} could not plan: {detail}"
    if status == 422:
        return f"the operator at {base} refused the request: {detail}"
    return f"the operator at {base} answered {status}: {detail}"


def _detail(answer: httpx.Response) -> str:
    try:
        found: Any = answer.json().get("detail")
    except (ValueError, AttributeError):
        return answer.text[:300].strip() or answer.reason_phrase
    if isinstance(found, list):  # FastAPI's validation shape: name each field
        return "; ".join(
            f"{'.'.join(str(p) for p in item.get('loc', ()))}: {item.get('msg', '')}"
            for item in found
            if isinstance(item, dict)
        )
    return str(found)
