"""What the fake Composio API answers, one builder per response shape, and where each comes from.

The authority is the generated client the SDK calls, ``composio_client`` 2.0.0rc19
(``composio_client/_generated/pydantic_gen.py``, the models of Composio's v3.1 OpenAPI
document); ``tests/fakes/test_composio_server.py`` validates every answer the fake gives against
those models and fails on any field they do not declare. Per shape:

* Active trigger instance: ``GetV31TriggerInstancesActiveItems`` (snake_case fields plus the
  deprecated camelCase duplicates ``connectedAccountId``, ``triggerName``, ``triggerConfig``,
  ``updatedAt``, ``disabledAt``, and ``deprecated.createdAt``). It has **no** ``disabled_reason``:
  the API does not say why an instance was disabled.
* Connected account: ``GetV31ConnectedAccountsByNanoidResponse`` / ``...ConnectedAccountsItems``
  (``toolkit.slug``, ``auth_config`` {id, auth_scheme, is_composio_managed, is_disabled},
  ``status`` one of INITIALIZING INITIATED ACTIVE FAILED EXPIRED INACTIVE REVOKED,
  ``is_disabled``, ``state`` {authScheme, val{status,...}} in the OAUTH2 variant).
* Trigger type: ``GetV31TriggersTypesBySlugResponse`` / ``GetV31TriggersTypesItems``; the
  config/payload schemas are the real ones in ``composio_trigger_types.json`` (see its
  ``source_notes``).
* Webhook subscription: ``PostV31WebhookSubscriptionsResponse``,
  ``GetV31WebhookSubscriptionsByIdResponse``, ``PatchV31WebhookSubscriptionsByIdResponse`` and
  ``GetV31WebhookSubscriptionsItems`` all mark ``secret`` required, so the fake sends it on every
  answer by default; Composio's docs say it is returned only on create and rotate, which the fake
  does with ``secret_on_read=False`` (the operator has to work with both).
  ``PostV31WebhookSubscriptionsByIdRotateSecretResponse`` is ``{id, secret}``.
* Pages: ``{items, next_cursor, total_pages, current_page, total_items}``. The cursor is, per the
  generated query models' description, "a base64 encoded string of the page and limit": here
  ``base64("<page>:<limit>")`` (the separator is not documented). Page-based, so an item created
  or deleted between two page reads shifts the pages, as on the real API.
* Errors: ``Error`` = ``{"error": {message, code, slug, status, request_id?, suggested_fix?,
  errors?}}``, read by ``composio_client/_exceptions.py`` ``_error_details``; the request id
  is also the ``x-request-id`` header of every answer (``APIStatusError.request_id`` prefers it).
"""

from __future__ import annotations

import base64
import math
import re
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

ACCOUNT_STATUSES = (
    "INITIALIZING",
    "INITIATED",
    "ACTIVE",
    "FAILED",
    "EXPIRED",
    "INACTIVE",
    "REVOKED",
)
_CAMEL = ("connected_account_id", "trigger_name", "trigger_config", "updated_at", "disabled_at")


class ApiError(Exception):
    """An error answer: status, message, Composio's error slug and an optional suggested fix."""

    def __init__(self, status: int, message: str, slug: str, fix: str | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.slug, self.fix = status, message, slug, fix


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def request_id() -> str:
    return f"req_{secrets.token_hex(8)}"


def error_body(err: ApiError, req: str) -> dict[str, Any]:
    inner: dict[str, Any] = {
        "message": err.message,
        "code": err.status * 10,
        "slug": err.slug,
        "status": err.status,
        "request_id": req,
    }
    if err.fix:
        inner["suggested_fix"] = err.fix
    return {"error": inner}


@dataclass
class Account:
    id: str
    user_id: str
    toolkit: str
    status: str = "ACTIVE"
    is_disabled: bool = False
    auth_config_id: str = "ac_fake"
    created_at: str = field(default_factory=now_iso)
    updated_at: str = field(default_factory=now_iso)

    def body(self, *, listed: bool = False) -> dict[str, Any]:
        """``GET /connected_accounts/{id}``; a list item (``listed``) has no ``params``."""
        val: dict[str, Any] = {"status": self.status}
        if self.status in ("ACTIVE", "INACTIVE"):
            val["access_token"] = "fake-access-token"  # the OAUTH2 variant requires one
        return {
            "id": self.id,
            "user_id": self.user_id,
            "status": self.status,
            "status_reason": None,
            "is_disabled": self.is_disabled,
            "toolkit": {"slug": self.toolkit},
            "auth_config": {
                "id": self.auth_config_id,
                "auth_scheme": "OAUTH2",
                "is_composio_managed": True,
                "is_disabled": False,
            },
            "state": {"authScheme": "OAUTH2", "val": val},
            "data": {},
            **({} if listed else {"params": {}}),
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        }


@dataclass
class Instance:
    id: str
    seq: int
    slug: str
    account: Account
    user_id: str
    config: dict[str, Any]
    updated_at: str = field(default_factory=now_iso)
    created_at: str = field(default_factory=now_iso)
    disabled_at: str | None = None

    def item(self) -> dict[str, Any]:
        """The ``/trigger_instances/active`` item, with the API's camelCase duplicates."""
        item: dict[str, Any] = {
            "id": self.id,
            "uuid": f"uuid-{self.id}",
            "connected_account_id": self.account.id,
            "connected_account_uuid": f"uuid-{self.account.id}",
            "trigger_name": self.slug,
            "user_id": self.user_id,
            "trigger_config": self.config,
            "trigger_data": None,
            "version": "00000000_00",
            "state": {},
            "egress_url": None,
            "updated_at": self.updated_at,
            "disabled_at": self.disabled_at,
            "deprecated": {"createdAt": self.created_at},
        }
        for snake in _CAMEL:
            item[re.sub(r"_(\w)", lambda m: m.group(1).upper(), snake)] = item[snake]
        return item


def subscription_body(sub: dict[str, Any], *, with_secret: bool) -> dict[str, Any]:
    keys = ("id", "webhook_url", "version", "enabled_events", "created_at", "updated_at")
    body = {k: sub[k] for k in keys}
    if with_secret:
        body["secret"] = sub["secret"]
    return body


def trigger_type_body(ttype: dict[str, Any]) -> dict[str, Any]:
    keys = ("slug", "name", "description", "instructions", "type", "toolkit", "config")
    return {**{k: ttype[k] for k in keys}, "payload": ttype["payload"], "version": ttype["version"]}


def page(items: list[dict[str, Any]], query: dict[str, list[str]]) -> dict[str, Any]:
    """A page of ``items``; ``limit`` above 50 is refused, the cursor is base64 "page:limit"."""
    limit = int(float((query.get("limit") or ["20"])[0]))
    if not 1 <= limit <= 50:
        raise ApiError(400, "limit must be between 1 and 50", "BadRequest")
    number = 1
    if query.get("cursor") and query["cursor"][0]:
        try:
            text = base64.b64decode(query["cursor"][0], validate=True).decode()
            number = int(text.split(":", 1)[0])
        except ValueError as exc:
            raise ApiError(400, "invalid cursor", "BadRequest", "pass next_cursor as is") from exc
    start = (number - 1) * limit
    more = start + limit < len(items)
    cursor = base64.b64encode(f"{number + 1}:{limit}".encode()).decode() if more else None
    return {
        "items": items[start : start + limit],
        "next_cursor": cursor,
        "total_items": len(items),
        "total_pages": max(1, math.ceil(len(items) / limit)),
        "current_page": number,
    }
