"""HTTP answers as our error tree, for every adapter that calls a service over plain HTTP.

The executors (the agent platform, Mastra) and the Mastra catalog check meet the same statuses;
one translation keeps "is this worth a retry?" the same answer everywhere: 408/409/425/429 and
5xx retry (after ``Retry-After`` when sent), 401/403 are credentials, 404 a missing object,
other 4xx a request that will never succeed as it is. URLs in messages lose their query string
(it may carry a token).
"""

from __future__ import annotations

import httpx

from planner_operator.backends.ratelimit import parse_retry_after
from planner_operator.core import clock as clock_mod
from planner_operator.errors import AuthError, NotFound, PermanentError, RetryableError

RETRYABLE = frozenset({408, 409, 425, 429})


def raise_for_status(
    response: httpx.Response,
    where: str,
    *,
    method: str = "POST",
    backend: str = "executor",
    detail: str = "",
    clock: clock_mod.Clock = clock_mod.SYSTEM,
) -> None:
    """Raise the error an HTTP error status means (``where``: the redacted URL)."""
    status = response.status_code
    if status < 400:
        return
    what = f"{method} {where} answered {status}{': ' + detail if detail else ''}"
    if status in RETRYABLE or status >= 500:
        pause = parse_retry_after(response.headers, now_wall=clock_mod.epoch(clock))
        raise RetryableError(what, backend=backend, status=status, retry_after=pause)
    if status in (401, 403):
        raise AuthError(what, backend=backend, status=status)
    if status == 404:
        raise NotFound(what, backend=backend, status=status)
    raise PermanentError(what, backend=backend, status=status)


def where(url: str | httpx.URL) -> str:
    """Scheme, host, port and path only: never echo query strings that may carry tokens."""
    parsed = httpx.URL(url)
    port = f":{parsed.port}" if parsed.port else ""
    return f"{parsed.scheme}://{parsed.host}{port}{parsed.path}"
