"""Composio's webhook payloads, every version, as one value (the adapter's side of events).

Composio has shipped three webhook payload shapes (V1, V2, V3; a project picks one). The
operator must not care which, so :func:`normalize_composio` turns each shape into one
:class:`Normalized` value, following the SDK's own detection (``composio`` 0.29
``Triggers._parse_webhook_payload``): V3 is a ``composio.*`` envelope with ``metadata``; V2 has
``type`` and ``data`` holding the trigger and connection ids; V1 has ``trigger_name`` and
``payload``. The ``x-composio-webhook-version`` header is a hint, the shape decides.

Pure parsing, no SDK import: the receiver, the worker and explain all read deliveries with it.
Routing and filters are not Composio's and stay in ``runtime.events``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

MESSAGE = "composio.trigger.message"
TRIGGER_DISABLED = "composio.trigger.disabled"
ACCOUNT_EXPIRED = "composio.connected_account.expired"
LIFECYCLE = frozenset({TRIGGER_DISABLED, ACCOUNT_EXPIRED})

Version = Literal["V1", "V2", "V3"]
_V2_META = ("connection_id", "connection_nano_id", "trigger_nano_id", "trigger_id", "user_id")


class PayloadError(ValueError):
    """A body that is JSON but no known payload shape (answered 400)."""


@dataclass(frozen=True)
class Normalized:
    """A Composio delivery in one shape, whatever version it came in."""

    version: Version
    type: str
    data: Mapping[str, Any]
    trigger_id: str | None = None
    trigger_slug: str | None = None
    connected_account_id: str | None = None
    user_id: str | None = None
    log_id: str | None = None
    timestamp: datetime | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def is_lifecycle(self) -> bool:
        return self.type in LIFECYCLE

    @property
    def is_message(self) -> bool:
        return self.type == MESSAGE

    @property
    def lifecycle_reason(self) -> str:
        """What a lifecycle event says, in words a user can act on.

        ``composio.trigger.disabled`` carries ``data.disabled_reason`` as a code (Composio's
        troubleshooting docs list four; an unknown one is shown as sent); the expiry event's
        data is the connected account, with its ``status_reason`` (``composio`` 0.29.1
        ``webhook_events.SingleConnectedAccountDetailedResponse``).
        """
        if self.type == TRIGGER_DISABLED:
            code = str(self.data.get("disabled_reason") or "").strip()
            return DISABLED_REASONS.get(code, code or "disabled by Composio")
        account = self.connected_account_id or "?"
        why = str(self.data.get("status_reason") or "").strip()
        return f"connected account {account} expired{f' ({why})' if why else ''}: reconnect it"


# composio.trigger.disabled's data.disabled_reason codes, per Composio's troubleshooting docs
# (docs.composio.dev/docs/troubleshooting/triggers): each with what to do about it.
DISABLED_REASONS: Mapping[str, str] = {
    "connection_expired": "disabled by Composio: its connected account expired; reconnect it "
    "(Composio re-enables the trigger once the account is ACTIVE again)",
    "subscription_auth_failure": "disabled by Composio: it could not refresh the provider's "
    "webhook subscription with the account's credentials; reconnect the account",
    "subscription_refresh_failure": "disabled by Composio: the provider's webhook subscription "
    "could not be refreshed; reconcile again once the provider is healthy (it re-enables it)",
    "polling_failure_in_composio_infra": "disabled by Composio: polling kept failing on its side; "
    "reconcile again once that is resolved (it re-enables it)",
}


def normalize_composio(body: Any, version_header: str | None = None) -> Normalized:
    """Any Composio payload version as :class:`Normalized`; ``PayloadError`` if none fits."""
    if not isinstance(body, dict):
        raise PayloadError("a Composio payload is a JSON object")
    hint = (version_header or "").strip().upper()
    order: list[Version] = ["V3", "V2", "V1"]
    if hint in order:
        order.remove(hint)
        order.insert(0, hint)
    for version in order:
        parsed = _PARSERS[version](body)
        if parsed is not None:
            return parsed
    raise PayloadError("the body is not a Composio V1, V2 or V3 payload")


def _v3(body: dict[str, Any]) -> Normalized | None:
    kind, meta, data = body.get("type"), body.get("metadata"), body.get("data")
    if not (isinstance(kind, str) and kind.startswith("composio.")):
        return None
    if not isinstance(meta, dict) or not isinstance(data, dict) or "id" not in body:
        return None
    trigger_id = _str(meta.get("trigger_id"))
    account = _str(meta.get("connected_account_id"))
    slug = _str(meta.get("trigger_slug"))
    if kind == TRIGGER_DISABLED:
        trigger_id = _str(data.get("id")) or trigger_id
        slug = _str(data.get("trigger_name")) or slug
    elif kind == ACCOUNT_EXPIRED:
        account = _str(data.get("id")) or account
    return Normalized(
        version="V3",
        type=kind,
        data=data,
        trigger_id=trigger_id,
        trigger_slug=slug,
        connected_account_id=account,
        user_id=_str(meta.get("user_id")),
        log_id=_str(meta.get("log_id")),
        timestamp=_time(body.get("timestamp")),
        extra={"event_id": _str(body.get("id"))},
    )


def _v2(body: dict[str, Any]) -> Normalized | None:
    kind, data = body.get("type"), body.get("data")
    if not isinstance(kind, str) or not isinstance(data, dict):
        return None
    trigger_id = _str(data.get("trigger_nano_id")) or _str(data.get("trigger_id"))
    if trigger_id is None and "connection_id" not in data:
        return None
    return Normalized(
        version="V2",
        type=MESSAGE,
        data={k: v for k, v in data.items() if k not in _V2_META},
        trigger_id=trigger_id,
        trigger_slug=kind.upper(),
        connected_account_id=_str(data.get("connection_nano_id"))
        or _str(data.get("connection_id")),
        user_id=_str(data.get("user_id")),
        log_id=_str(body.get("log_id")),
        timestamp=_time(body.get("timestamp")),
        extra={"trigger_uuid": _str(data.get("trigger_id"))},
    )


def _v1(body: dict[str, Any]) -> Normalized | None:
    payload = body.get("payload")
    if "trigger_name" not in body or "trigger_id" not in body or not isinstance(payload, dict):
        return None
    return Normalized(
        version="V1",
        type=MESSAGE,
        data=payload,
        trigger_id=_str(body.get("trigger_id")),
        trigger_slug=_str(body.get("trigger_name")),
        connected_account_id=_str(body.get("connection_id")),
        log_id=_str(body.get("log_id")),
    )


_PARSERS = {"V3": _v3, "V2": _v2, "V1": _v1}


def _str(value: Any) -> str | None:
    if value is None or isinstance(value, dict | list):
        return None
    text = str(value)
    return text or None


def _time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
