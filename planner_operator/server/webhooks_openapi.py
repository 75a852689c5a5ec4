"""The webhook receivers in the OpenAPI document.

The two ingress routes are plain Starlette routes (no FastAPI models on the hot path), so
FastAPI cannot describe them. They are still part of the server's contract: senders and the
schemathesis suite need their headers, bodies and every answer (202 stored, 200 duplicate, the
4xx refusals, 503 retry later). This module adds them to the generated document once.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

_ACK = {
    "type": "object",
    "properties": {
        "id": {"type": "string", "description": "The delivery id (the idempotency key)."},
        "status": {"type": "string", "enum": ["accepted", "duplicate"]},
    },
    "required": ["id", "status"],
}
_REFUSED = {
    "type": "object",
    "properties": {"error": {"type": "string", "description": "Why it was refused."}},
    "required": ["error"],
}


def _answer(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _header(name: str, description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "header",
        "required": False,  # missing ones are answered 400, which the document lists
        "schema": {"type": "string"},
        "description": description,
    }


def _responses() -> dict[str, Any]:
    return {
        "202": _answer("Verified and committed to the durable inbox; runs later.", _ACK),
        "200": _answer("A delivery id already stored: acknowledged again, not run again.", _ACK),
        "400": _answer("Missing or garbled headers, or a body that is not JSON.", _REFUSED),
        "401": _answer("Bad or stale signature.", _REFUSED),
        "404": _answer("No such trigger, or Composio webhooks are not configured.", _REFUSED),
        "413": _answer("Body over the cap (PLANNER_WEBHOOK_MAX_BODY).", _REFUSED),
        "415": _answer("Content type is not application/json.", _REFUSED),
        "503": _answer("Secret not configured or inbox unavailable: retry later.", _REFUSED),
    }


_STANDARD = [
    _header("webhook-id", "Delivery id (Standard Webhooks); the dedupe key."),
    _header("webhook-timestamp", "Integer seconds; within 300 s of now."),
    _header("webhook-signature", "Space-separated `v1,<base64>` HMAC-SHA256 signatures."),
]


def paths() -> dict[str, Any]:
    body = {
        "required": True,
        "content": {"application/json": {"schema": {"type": "object"}}},
    }
    composio = {
        "post": {
            "tags": ["webhooks"],
            "summary": "Receive a Composio webhook delivery",
            "description": "Signed with the project's webhook secret (V1, V2 or V3 payloads). "
            "Verified on the raw bytes, stored, then acknowledged; a worker runs it.",
            "operationId": "webhook_composio",
            "parameters": [
                *_STANDARD,
                _header("x-composio-webhook-version", "Payload version hint: V1, V2 or V3."),
            ],
            "requestBody": body,
            "responses": _responses(),
        }
    }
    generic = {
        "post": {
            "tags": ["webhooks"],
            "summary": "Receive a signed webhook for a generic WEBHOOK trigger",
            "description": "Standard Webhooks or GitHub-style `X-Hub-Signature-256`, per the "
            "trigger's `webhook.scheme`; the secret comes from its `secret_env`.",
            "operationId": "webhook_generic",
            "parameters": [
                {"name": "agent", "in": "path", "required": True, "schema": {"type": "string"}},
                {"name": "trigger", "in": "path", "required": True, "schema": {"type": "string"}},
                *_STANDARD,
                _header("x-hub-signature-256", "GitHub scheme: sha256=<hex HMAC of the body>."),
                _header("x-github-delivery", "GitHub scheme: the delivery id."),
                _header("x-github-event", "GitHub scheme: the event name."),
            ],
            "requestBody": body,
            "responses": _responses(),
        }
    }
    return {"/webhooks/composio": composio, "/webhooks/{agent}/{trigger}": generic}


def install(app: FastAPI) -> None:
    original = app.openapi

    def openapi() -> dict[str, Any]:
        schema = original()
        for path, item in paths().items():
            schema.setdefault("paths", {}).setdefault(path, item)
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
