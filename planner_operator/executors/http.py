"""Executors that call the agent platform over HTTP (configured by environment).

``PLANNER_CHAT_URL`` receives ``POST {agent, message, context}`` and answers ``{thread_id}``;
``PLANNER_WORKFLOW_URL`` receives ``POST {workflow, input, context}``. Each request carries the
run key as ``Idempotency-Key`` so a retried fire never starts a second thread. Errors become our
types: 429/5xx retryable (with Retry-After), a timeout an unknown outcome, other 4xx permanent.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx

from planner_operator.errors import PermanentError, RetryableError, UnknownOutcome


class HttpExecutor:
    def __init__(
        self,
        *,
        chat_url: str | None,
        workflow_url: str | None,
        token: str | None = None,
        timeout: float = 30.0,
        client: httpx.Client | None = None,
    ) -> None:
        self.chat_url = chat_url
        self.workflow_url = workflow_url
        headers = {"authorization": f"Bearer {token}"} if token else {}
        self._client = client or httpx.Client(timeout=timeout, headers=headers)

    def close(self) -> None:
        self._client.close()

    def start_thread(self, *, agent: str, message: str, context: Mapping[str, Any]) -> str:
        if not self.chat_url:
            raise PermanentError("PLANNER_CHAT_URL is not set", backend="chat")
        body = self._post(self.chat_url, {"agent": agent, "message": message, "context": context})
        thread = body.get("thread_id") if isinstance(body, dict) else None
        if not isinstance(thread, str):
            raise PermanentError("chat endpoint answered without a `thread_id`", backend="chat")
        return thread

    def run(self, *, workflow: str, input: Mapping[str, Any], context: Mapping[str, Any]) -> Any:
        if not self.workflow_url:
            raise PermanentError("PLANNER_WORKFLOW_URL is not set", backend="workflow")
        return self._post(
            self.workflow_url, {"workflow": workflow, "input": input, "context": context}
        )

    def _post(self, url: str, payload: Mapping[str, Any]) -> Any:
        context = payload.get("context") or {}
        key = str(context.get("run_key", "")) if isinstance(context, Mapping) else ""
        try:
            response = self._client.post(url, json=payload, headers={"idempotency-key": key})
        except httpx.TimeoutException as exc:
            raise UnknownOutcome(f"POST {_where(url)} timed out", backend="executor") from exc
        except httpx.HTTPError as exc:
            raise RetryableError(f"POST {_where(url)} failed: {exc}", backend="executor") from exc
        if response.status_code == 429 or response.status_code >= 500:
            raise RetryableError(
                f"POST {_where(url)} answered {response.status_code}",
                backend="executor",
                status=response.status_code,
                retry_after=_retry_after(response),
            )
        if response.status_code >= 400:
            raise PermanentError(
                f"POST {_where(url)} answered {response.status_code}",
                backend="executor",
                status=response.status_code,
            )
        try:
            return response.json()
        except ValueError:
            return {"status": response.status_code}


def _where(url: str) -> str:
    """Scheme, host and path only: never echo query strings that may carry tokens."""
    parsed = httpx.URL(url)
    return f"{parsed.scheme}://{parsed.host}{parsed.path}"


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after", "")
    return float(value) if value.replace(".", "", 1).isdigit() else None
