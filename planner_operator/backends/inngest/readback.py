"""What Inngest actually has for our app: ``GET /v1/apps/{app}/functions``, and what is wrong.

The read-back is the truth a sync is checked against (its ``modified`` flag is not: a server
restart has left crons unscheduled behind ``modified: false``), and the only place the URL
Inngest calls is visible: each function's steps carry it (``registered_urls``). A function
registered at another URL than the serve URL is drift, whoever synced it: every invocation
would go to the wrong place. No SDK here: the REST API is plain HTTP.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx

from planner_operator.backends.inngest import sdk
from planner_operator.backends.inngest.sdk import InngestConfig
from planner_operator.core import specs
from planner_operator.errors import AuthError, BackendError, RetryableError
from planner_operator.state.served import ServedJob


def read_functions(config: InngestConfig, *, timeout: float = 30.0) -> list[dict[str, Any]]:
    """``GET /v1/apps/{app}/functions``: what Inngest actually has for our app."""
    url = f"{config.api_base_url}/v1/apps/{config.app_id}/functions"
    try:
        response = httpx.get(url, headers=config.rest_headers(), timeout=timeout)
    except httpx.HTTPError as exc:
        raise RetryableError(f"reading functions failed: {exc}", backend="inngest") from exc
    if response.status_code == 404:
        return []  # the app was never synced
    if response.status_code in (401, 403):
        raise AuthError("Inngest rejected the signing key", backend="inngest", status=401)
    if response.status_code == 429 or response.status_code >= 500:
        raise RetryableError(
            f"reading functions answered {response.status_code}",
            backend="inngest",
            status=response.status_code,
        )
    if response.status_code >= 400:
        raise BackendError(f"reading functions answered {response.status_code}", backend="inngest")
    try:
        body = response.json()
    except ValueError:  # e.g. a proxy's error page while Inngest is down
        raise RetryableError(
            f"reading functions answered {response.status_code} without JSON "
            f"({response.headers.get('content-type') or 'no content type'})",
            backend="inngest",
            status=response.status_code,
        ) from None
    items = body.get("data", body.get("functions", [])) if isinstance(body, dict) else body
    return [f for f in items if isinstance(f, dict)] if isinstance(items, list) else []


def crons_of(function: Mapping[str, Any]) -> list[str]:
    """Cron strings of a listed function (the server nests them in ``config.triggers``)."""
    config = function.get("config")
    nested = config.get("triggers") if isinstance(config, Mapping) else None
    triggers = function.get("triggers") or nested or []
    return [str(t["cron"]) for t in triggers if isinstance(t, Mapping) and t.get("cron")]


def short_id(config: InngestConfig, function: Mapping[str, Any]) -> str:
    """Our fn id from a listed function (server ids and slugs are ``{app}-{fn_id}``)."""
    fn_config = function.get("config")
    slug = fn_config.get("slug") if isinstance(fn_config, Mapping) else None
    full = str(function.get("id") or slug or "")
    prefix = f"{config.app_id}-"
    return full[len(prefix) :] if full.startswith(prefix) else full


def registered_urls(function: Mapping[str, Any]) -> list[str]:
    """Where Inngest calls a listed function: each step's ``uri`` in the server's own function
    format (``config.steps``, an array: inngest/inngest ``pkg/inngest/function_step.go``
    ``Step.URI``), or ``runtime.url`` in the SDK's register shape (a map of steps)."""
    config = function.get("config")
    steps = config.get("steps") if isinstance(config, Mapping) else function.get("steps")
    items = steps.values() if isinstance(steps, Mapping) else steps or []
    out: list[str] = []
    for step in items:
        if not isinstance(step, Mapping):
            continue
        runtime = step.get("runtime")
        url = step.get("uri") or (runtime.get("url") if isinstance(runtime, Mapping) else None)
        if isinstance(url, str) and url:
            out.append(url)
    return out


def app_url(step_url: str) -> str:
    """A step URL without its query (``?fnId=..&stepId=..``): the app URL it was synced with."""
    parts = urlsplit(step_url)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))


def url_problem(config: InngestConfig, function: Mapping[str, Any]) -> str | None:
    """Why Inngest would call this function somewhere other than the serving app, or None."""
    urls = sorted({app_url(u) for u in registered_urls(function)})
    if not urls:
        return "registered without a step URL (Inngest cannot call it)"
    wrong = [u for u in urls if u.rstrip("/") != config.serve_url.rstrip("/")]
    if not wrong:
        return None
    return (
        f"registered at {', '.join(wrong)}, not at the serve URL {config.serve_url} "
        "(INNGEST_SERVE_ORIGIN + INNGEST_SERVE_PATH): Inngest calls the wrong URL"
    )


def problems(
    config: InngestConfig, jobs: Sequence[ServedJob], listed: Mapping[str, Mapping[str, Any]]
) -> list[str]:
    """What is wrong with the app as listed (remote id -> function) for the applied ``jobs``:
    an enabled job's function missing or without its exact cron, or any of the app's functions
    registered at another URL than the serve URL."""
    out: list[str] = []
    for job in jobs:
        if not specs.enabled(job.spec):
            continue
        rid = f"{config.app_id}-{sdk.function_id(job.key)}"
        cron = sdk.cron_of(job.spec)
        have = listed.get(rid)
        if have is None:
            out.append(f"inngest: function {rid} is missing after sync")
        elif cron not in crons_of(have):
            got = ", ".join(crons_of(have)) or "no cron"
            out.append(f"inngest: function {rid} has {got}, expected {cron!r}")
    wrong: dict[str, list[str]] = {}
    for rid, function in sorted(listed.items()):
        problem = url_problem(config, function)
        if problem is not None:
            wrong.setdefault(problem, []).append(rid)
    for problem, rids in wrong.items():
        which = rids[0] if len(rids) == 1 else f"{len(rids)} functions"
        out.append(f"inngest: app {config.app_id} ({which}) {problem}")
    return out
