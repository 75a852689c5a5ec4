"""Mastra's HTTP API, the calls the operator makes (Mastra 1.x, ``@mastra/server`` routes).

Shapes, as a Mastra 1.x server answers them (checked against ``@mastra/core`` 1.71 served by
``@mastra/hono``, the project in ``tests/mastra/``):

- ``GET /agents`` → ``{<agent id>: {"id", "name", ...}}``; ``GET /workflows`` →
  ``{<registration key>: {"name": <workflow id>, "inputSchema": "<superjson text>", ...}}``
  where the schema text is ``{"json": <JSON Schema>}``. Either the key or the id addresses a
  workflow in the routes below.
- ``POST /memory/threads?agentId=`` with ``{threadId, resourceId, title, metadata}`` creates a
  thread (or overwrites one with that id); ``GET /memory/threads/{id}?agentId=`` reads it (404
  ``{"error": "Thread not found"}``); ``GET …/messages`` lists ``{"messages": [...]}``.
- ``POST /agents/{id}/generate`` with ``{messages, memory: {thread, resource}}`` (1.x: the 0.x
  top-level ``threadId`` is silently ignored) → ``{"text", "finishReason", "usage", ...}``.
- ``POST /workflows/{id}/create-run?runId=`` → ``{"runId"}`` (the run is ``pending``);
  ``POST /workflows/{id}/start-async?runId=`` with ``{inputData}`` runs it to the end and answers
  ``{"status", "result" | "error", ...}``, or 400 ``{"error": "Invalid input data: …"}``; ``GET
  /workflows/{id}/runs/{runId}`` → the stored run (``status``: ``pending``, ``running``,
  ``success``, ``failed``, ``suspended``, ``waiting``, ``canceled``), 404 when there is none.
  (``/start`` answers 200 even for invalid input and leaves the run ``pending``, so it is not
  used.)
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx

from planner_operator.backends import http
from planner_operator.core import clock as clock_mod
from planner_operator.errors import NotFound, PermanentError, RetryableError, UnknownOutcome

BACKEND = "mastra"


@dataclass(frozen=True)
class Workflow:
    """One workflow Mastra serves: its registration key, its id, its input schema if known."""

    key: str
    id: str
    input_schema: Mapping[str, Any] | None


class MastraClient:
    """A thin client: each method is one request, errors already in our error tree."""

    def __init__(
        self,
        base_url: str,
        *,
        token: str | None = None,
        timeout: float = 30.0,
        client: httpx.Client | None = None,
        clock: clock_mod.Clock = clock_mod.SYSTEM,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.clock = clock
        headers = {"authorization": f"Bearer {token}"} if token else {}
        self._client = client or httpx.Client(
            timeout=httpx.Timeout(timeout, connect=min(5.0, timeout)), headers=headers
        )

    def close(self) -> None:
        self._client.close()

    # -- catalog -----------------------------------------------------------------------------

    def agents(self) -> dict[str, str]:
        """Agent id → name."""
        body = self._get("/agents")
        return {
            str(k): str(v.get("name") or k) if isinstance(v, Mapping) else str(k)
            for k, v in _mapping(body).items()
        }

    def workflows(self) -> list[Workflow]:
        out = []
        for key, raw in _mapping(self._get("/workflows")).items():
            info = _mapping(raw)
            out.append(
                Workflow(str(key), str(info.get("name") or key), _schema(info.get("inputSchema")))
            )
        return out

    # -- memory and agents -------------------------------------------------------------------

    def thread(self, thread_id: str, *, agent: str) -> Mapping[str, Any] | None:
        try:
            return _mapping(self._get(f"/memory/threads/{_seg(thread_id)}", agentId=agent))
        except NotFound:
            return None

    def create_thread(
        self,
        *,
        agent: str,
        thread_id: str,
        resource_id: str,
        title: str,
        metadata: Mapping[str, Any],
    ) -> Mapping[str, Any]:
        body = {
            "threadId": thread_id,
            "resourceId": resource_id,
            "title": title,
            "metadata": dict(metadata),
        }
        return _mapping(self._post("/memory/threads", body, agentId=agent))

    def messages(self, thread_id: str, *, agent: str) -> list[Mapping[str, Any]]:
        body = _mapping(self._get(f"/memory/threads/{_seg(thread_id)}/messages", agentId=agent))
        return [m for m in body.get("messages") or [] if isinstance(m, Mapping)]

    def generate(
        self, *, agent: str, message: str, thread_id: str, resource_id: str
    ) -> Mapping[str, Any]:
        body = {
            "messages": [{"role": "user", "content": message}],
            "memory": {"thread": thread_id, "resource": resource_id},
        }
        return _mapping(self._post(f"/agents/{_seg(agent)}/generate", body))

    # -- workflows ---------------------------------------------------------------------------

    def workflow_run(self, workflow: str, run_id: str) -> Mapping[str, Any] | None:
        try:
            return _mapping(self._get(f"/workflows/{_seg(workflow)}/runs/{_seg(run_id)}"))
        except NotFound as exc:
            if "run" in str(exc).lower():
                return None
            raise

    def create_run(self, workflow: str, run_id: str) -> None:
        self._post(f"/workflows/{_seg(workflow)}/create-run", {}, runId=run_id)

    def start_async(
        self, workflow: str, run_id: str, input: Mapping[str, Any], *, wait: float
    ) -> Mapping[str, Any]:
        """Run to the end, waiting at most ``wait`` seconds (then ``UnknownOutcome``)."""
        return _mapping(
            self._post(
                f"/workflows/{_seg(workflow)}/start-async",
                {"inputData": dict(input)},
                runId=run_id,
                timeout=wait,
            )
        )

    # -- transport ---------------------------------------------------------------------------

    def _get(self, path: str, **params: str) -> Any:
        return self._send("GET", path, None, params, None)

    def _post(self, path: str, body: Any, *, timeout: float | None = None, **params: str) -> Any:
        return self._send("POST", path, body, params, timeout)

    def _send(
        self,
        method: str,
        path: str,
        body: Any,
        params: Mapping[str, str],
        timeout: float | None,
    ) -> Any:
        url = self.base_url + path
        shown = http.where(url)
        extra: dict[str, Any] = {} if timeout is None else {"timeout": timeout}
        try:
            response = self._client.request(
                method, url, params=dict(params) or None, json=body, **extra
            )
        except httpx.TimeoutException as exc:
            if method == "GET":
                raise RetryableError(f"GET {shown} timed out", backend=BACKEND) from exc
            raise UnknownOutcome(f"{method} {shown} timed out", backend=BACKEND) from exc
        except httpx.HTTPError as exc:
            raise RetryableError(
                f"{method} {shown} failed: {type(exc).__name__} (is the Mastra server at "
                f"{http.where(self.base_url)} running?)",
                backend=BACKEND,
            ) from exc
        http.raise_for_status(
            response,
            shown,
            method=method,
            backend=BACKEND,
            detail=_error_text(response),
            clock=self.clock,
        )
        try:
            return response.json()
        except ValueError as exc:
            raise PermanentError(
                f"{method} {shown} answered {response.status_code} without JSON", backend=BACKEND
            ) from exc


def _seg(value: str) -> str:
    return quote(value, safe="")


def _mapping(body: Any) -> Mapping[str, Any]:
    return body if isinstance(body, Mapping) else {}


def _schema(raw: Any) -> Mapping[str, Any] | None:
    """Mastra sends schemas as superjson text: ``{"json": <JSON Schema>}``.

    The schema zod publishes is that of the parsed value, so a field with a default is listed
    as required although input may leave it out (Mastra fills it in): such fields are taken
    out of ``required`` here, or valid input would be refused.
    """
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError:
            return None
    if isinstance(raw, Mapping):
        inner = raw.get("json", raw)
        return _defaults_optional(inner) if isinstance(inner, Mapping) else None
    return None


def _defaults_optional(schema: Any) -> Any:
    if isinstance(schema, list):
        return [_defaults_optional(s) for s in schema]
    if not isinstance(schema, Mapping):
        return schema
    out = {k: _defaults_optional(v) for k, v in schema.items()}
    props = out.get("properties")
    required = out.get("required")
    if isinstance(props, Mapping) and isinstance(required, list):
        out["required"] = [
            name
            for name in required
            if not (isinstance(props.get(name), Mapping) and "default" in props[name])
        ]
    return out


def _error_text(response: httpx.Response) -> str:
    """Mastra's ``{"error": "..."}`` (one line, bounded), when an error status has one."""
    if response.status_code < 400:
        return ""
    try:
        body = response.json()
    except ValueError:
        return ""
    text = body.get("error") if isinstance(body, Mapping) else None
    if not isinstance(text, str):
        return ""
    return " ".join(text.split())[:300]
