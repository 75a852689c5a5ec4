"""Composio lifecycle events in words: what ``composio.trigger.disabled`` and
``composio.connected_account.expired`` say, as status, the API and the dashboard show it."""

from __future__ import annotations

from typing import Any

import pytest

from planner_operator.backends.composio import payloads


def event(kind: str, data: dict[str, Any]) -> payloads.Normalized:
    body = {"id": "msg_1", "timestamp": "2026-01-01T00:00:00Z", "type": kind, "metadata": {}}
    return payloads.normalize_composio({**body, "data": data}, "V3")


@pytest.mark.parametrize(
    ("code", "says"),
    [
        ("connection_expired", "connected account expired; reconnect it (Composio re-enables"),
        ("subscription_auth_failure", "reconnect the account"),
        ("subscription_refresh_failure", "once the provider is healthy"),
        ("polling_failure_in_composio_infra", "polling kept failing on its side"),
        ("something_new", "something_new"),  # a code Composio adds later: shown as sent
        ("", "disabled by Composio"),
    ],
)
def test_a_disabled_trigger_says_why_and_what_to_do(code: str, says: str) -> None:
    found = event(payloads.TRIGGER_DISABLED, {"id": "ti_1", "disabled_reason": code})
    assert found.trigger_id == "ti_1"
    assert says in found.lifecycle_reason


def test_an_expired_account_names_itself_and_composios_reason() -> None:
    # data is the connected account (composio 0.29.1 webhook_events.ConnectionExpiredEvent)
    found = event(
        payloads.ACCOUNT_EXPIRED,
        {"id": "ca_1", "status": "EXPIRED", "status_reason": "refresh token revoked"},
    )
    assert found.connected_account_id == "ca_1"
    assert found.lifecycle_reason == (
        "connected account ca_1 expired (refresh token revoked): reconnect it"
    )
    bare = event(payloads.ACCOUNT_EXPIRED, {"id": "ca_2"})
    assert bare.lifecycle_reason == "connected account ca_2 expired: reconnect it"
