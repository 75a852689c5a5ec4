"""Executors that call the agent platform over HTTP (configured by environment).

Chat: ``POST {PLANNER_PLATFORM_URL}/api/workforce/{agentId}/chat`` (path shape overridable with
``PLANNER_CHAT_PATH``; ``PLANNER_CHAT_URL`` overrides the whole URL and may contain
``{agentId}``) with ``{agent, agentId, message, newThread, context}``; the answer names the new
thread (``thread_id``, ``threadId`` or ``id``). Workflows: ``PLANNER_WORKFLOW_URL`` receives
``POST {workflow, input, context}``.

Every request carries the run key as ``Idempotency-Key`` (for a webhook, the delivery id), so a
retried fire never starts a second thread. Errors become our types at this boundary: 408/409/
425/429/5xx and connection failures are retryable (with Retry-After), a timeout is an unknown
outcome (retried with the same key), 401/403 an auth error, 404 not found, other 4xx permanent.
URLs in messages lose their query string (it may carry tokens).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

import httpx

from planner_operator.backends.http import raise_for_status
from planner_operator.backends.http import where as where_of
from planner_operator.core import clock as clock_mod
from planner_operator.core import variables
from planner_operator.errors import PermanentError, RetryableError, UnknownOutcome

CHAT_PATH = variables.CHAT_PATH_DEFAULT


class HttpExecutor:
    """Both executor Protocols over HTTP; either URL may be unset (that call then fails)."""

    sink = "platform"

    def __init__(
        self,
        *,
        chat_url: str | None = None,
        workflow_url: str | None = None,
        token: str | None = None,
        timeout: float = 30.0,
        client: httpx.Client | None = None,
        platform_url: str | None = None,
        chat_path: str = CHAT_PATH,
        clock: clock_mod.Clock = clock_mod.SYSTEM,
    ) -> None:
        self.clock = clock  # turns an HTTP-date Retry-After into a delay
        if not chat_url and platform_url:
            chat_url = platform_url.rstrip("/") + "/" + chat_path.lstrip("/")
        self.chat_url = chat_url
        self.workflow_url = workflow_url
        headers = {"authorization": f"Bearer {token}"} if token else {}
        self._client = client or httpx.Client(
            timeout=httpx.Timeout(timeout, connect=min(5.0, timeout)), headers=headers
        )

    def close(self) -> None:
        self._client.close()

    def chat_url_for(self, agent: str) -> str | None:
        if not self.chat_url:
            return None
        return self.chat_url.replace("{agentId}", quote(agent, safe=""))

    def start_thread(self, *, agent: str, message: str, context: Mapping[str, Any]) -> str:
        url = self.chat_url_for(agent)
        if not url:
            raise PermanentError(
                "no chat endpoint: set PLANNER_PLATFORM_URL or PLANNER_CHAT_URL", backend="chat"
            )
        body = self.post(
            url,
            {
                "agent": agent,
                "agentId": agent,
                "message": message,
                "newThread": True,
                "context": dict(context),
            },
            key=_run_key(context),
        )
        thread = _thread_id(body)
        if thread is None:
            raise PermanentError(
                f"POST {where_of(url)} answered without a thread id", backend="chat"
            )
        return thread

    def run(self, *, workflow: str, input: Mapping[str, Any], context: Mapping[str, Any]) -> Any:
        if not self.workflow_url:
            raise PermanentError("PLANNER_WORKFLOW_URL is not set", backend="workflow")
        return self.post(
            self.workflow_url,
            {"workflow": workflow, "input": dict(input), "context": dict(context)},
            key=_run_key(context),
        )

    def post(self, url: str, payload: Any, *, key: str, shown: str | None = None) -> Any:
        """POST JSON with an idempotency key; returns the JSON answer (or ``{"status": n}``).

        ``shown`` replaces the URL in error messages when its path carries a secret.
        """
        headers = {"idempotency-key": key} if key else {}
        where = shown or where_of(url)
        try:
            response = self._client.post(url, json=payload, headers=headers)
        except httpx.TimeoutException as exc:
            raise UnknownOutcome(f"POST {where} timed out", backend="executor") from exc
        except httpx.HTTPError as exc:
            raise RetryableError(
                f"POST {where} failed: {type(exc).__name__}", backend="executor"
            ) from exc
        raise_for_status(response, where, clock=self.clock)
        try:
            return response.json()
        except ValueError:
            return {"status": response.status_code}


def _run_key(context: Mapping[str, Any]) -> str:
    return str(context.get("run_key") or "")


def _thread_id(body: Any) -> str | None:
    if not isinstance(body, Mapping):
        return None
    for name in ("thread_id", "threadId", "id"):
        value = body.get(name)
        if isinstance(value, str) and value:
            return value
    thread = body.get("thread")
    if isinstance(thread, Mapping) and isinstance(thread.get("id"), str):
        return str(thread["id"])
    return None
