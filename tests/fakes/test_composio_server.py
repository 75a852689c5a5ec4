"""The fake Composio API answers only in shapes the generated client declares.

Every route of the fake is called over HTTP and its JSON validated against the model
``composio_client`` (2.0.0rc19, the SDK's generated client) parses it into, with one rule
stricter than the models: no field they do not declare (they allow extras, which is how a field
only the fake sends, like ``disabled_reason`` once, goes unnoticed). A new route without a model
here fails :func:`test_every_route_answers_in_the_generated_shapes`.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator
from typing import Any

import httpx
import pydantic
import pytest
from composio_client import _models as cm
from composio_client._generated import pydantic_gen as gen

from tests.fakes.composio_server import API_KEY, FakeComposio

MODELS: dict[tuple[str, str], type[pydantic.BaseModel]] = {
    ("GET", "triggers_types"): cm.TriggersTypeListResponse,
    ("GET", "triggers_types/(?P<slug>[^/]+)"): cm.TriggersTypeRetrieveResponse,
    ("POST", "trigger_instances/(?P<slug>[^/]+)/upsert"): cm.TriggerInstanceUpsertResponse,
    ("GET", "trigger_instances/active"): cm.TriggerInstanceListActiveResponse,
    ("PATCH", "trigger_instances/manage/(?P<id>[^/]+)"): cm.ManageUpdateResponse,
    ("DELETE", "trigger_instances/manage/(?P<id>[^/]+)"): cm.ManageDeleteResponse,
    ("GET", "connected_accounts"): cm.ConnectedAccountListResponse,
    ("GET", "connected_accounts/(?P<id>[^/]+)"): cm.ConnectedAccountRetrieveResponse,
    ("GET", "webhook_subscriptions"): cm.WebhookSubscriptionListResponse,
    ("POST", "webhook_subscriptions"): cm.WebhookSubscriptionCreateResponse,
    ("GET", "webhook_subscriptions/event_types"): cm.WebhookSubscriptionListEventTypesResponse,
    (
        "POST",
        "webhook_subscriptions/(?P<id>[^/]+)/rotate_secret",
    ): cm.WebhookSubscriptionRotateSecretResponse,
    ("GET", "webhook_subscriptions/(?P<id>[^/]+)"): cm.WebhookSubscriptionRetrieveResponse,
    ("PATCH", "webhook_subscriptions/(?P<id>[^/]+)"): cm.WebhookSubscriptionUpdateResponse,
    ("DELETE", "webhook_subscriptions/(?P<id>[^/]+)"): cm.WebhookSubscriptionDeleteResponse,
}


@pytest.fixture
def fake() -> Iterator[FakeComposio]:
    with FakeComposio(budget_per_minute=1_000_000) as server:
        yield server


def undeclared(value: Any, path: str = "") -> list[str]:
    """Fields present in the data that no model along the way declares."""
    if isinstance(value, pydantic.RootModel):
        return undeclared(value.root, path)
    if isinstance(value, pydantic.BaseModel):
        out = [f"{path}{name}" for name in value.model_extra or {}]
        for name, field_value in value.__dict__.items():  # not getattr: deprecated fields warn
            out += undeclared(field_value, f"{path}{name}.")
        return out
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in undeclared(v, f"{path}{i}.")]
    return []


def route_of(fake: FakeComposio, method: str, path: str) -> tuple[str, str]:
    for route_method, pattern, _ in fake._routes:
        if route_method == method and pattern.match(path):
            return method, pattern.pattern.removeprefix("^/api/v3\\.1/").removesuffix("$")
    raise AssertionError(f"no route for {method} {path}")


class Recorder:
    """An HTTP client for the fake that checks every successful answer against its model."""

    def __init__(self, fake: FakeComposio) -> None:
        self.fake = fake
        self.seen: set[tuple[str, str]] = set()
        self.http = httpx.Client(
            base_url=fake.base_url + "/api/v3.1/", headers={"x-api-key": API_KEY}
        )

    def __call__(self, method: str, path: str, **kwargs: Any) -> Any:
        answer = self.http.request(method, path, **kwargs)
        assert answer.is_success, answer.text
        assert re.fullmatch(r"req_[0-9a-f]{16}", answer.headers["x-request-id"])
        route = route_of(self.fake, method, "/api/v3.1/" + path)
        model = MODELS[route]
        parsed = model.model_validate(answer.json())
        assert undeclared(parsed) == [], f"{method} {path}: not in {model.__name__}"
        self.seen.add(route)
        return answer.json()


@pytest.fixture
def call(fake: FakeComposio) -> Iterator[Recorder]:
    recorder = Recorder(fake)
    with recorder.http:
        yield recorder


def test_every_route_answers_in_the_generated_shapes(fake: FakeComposio, call: Recorder) -> None:
    call("GET", "triggers_types", params={"toolkit_slugs": "gmail", "limit": 1})
    call("GET", "triggers_types/GMAIL_NEW_GMAIL_MESSAGE")
    body = {"connected_account_id": "ca_123", "trigger_config": {}, "toolkit_versions": "latest"}
    made = call("POST", "trigger_instances/GMAIL_NEW_GMAIL_MESSAGE/upsert", json=body)
    by_user = {"user_id": "eng", "trigger_config": {}}
    call("POST", "trigger_instances/SLACK_RECEIVE_MESSAGE/upsert", json=by_user)
    fake.expire_account("ca_slack_eng")  # disabled instances carry disabled_at
    listed = call("GET", "trigger_instances/active", params={"show_disabled": "true"})
    assert len(listed["items"]) == 2 and all("disabled_reason" not in i for i in listed["items"])
    call("PATCH", f"trigger_instances/manage/{made['trigger_id']}", json={"status": "disable"})
    call("GET", "connected_accounts/ca_123")
    call("GET", "connected_accounts/ca_slack_eng")  # the EXPIRED variant of ``state``
    call("GET", "connected_accounts", params={"user_ids": "user-1", "toolkit_slugs": "gmail"})
    sub_body = {
        "webhook_url": "https://a.example/hook",
        "enabled_events": ["composio.trigger.message"],
    }
    sub = call("POST", "webhook_subscriptions", json=sub_body)
    call("GET", "webhook_subscriptions")
    call("GET", f"webhook_subscriptions/{sub['id']}")
    call("PATCH", f"webhook_subscriptions/{sub['id']}", json={"version": "V3"})
    call("POST", f"webhook_subscriptions/{sub['id']}/rotate_secret")
    call("GET", "webhook_subscriptions/event_types")
    call("DELETE", f"webhook_subscriptions/{sub['id']}")
    call("DELETE", f"trigger_instances/manage/{made['trigger_id']}")
    routes = {
        (m, p.pattern.removeprefix("^/api/v3\\.1/").removesuffix("$")) for m, p, _ in fake._routes
    }
    assert call.seen == set(MODELS) == routes


def test_errors_carry_the_envelope_the_client_reads_and_the_request_id_header(
    fake: FakeComposio,
) -> None:
    with httpx.Client(base_url=fake.base_url, headers={"x-api-key": API_KEY}) as http:
        answer = http.get("/api/v3.1/connected_accounts/ca_nope")
        refused = http.post(
            "/api/v3.1/webhook_subscriptions",
            json={
                "webhook_url": "http://a.example/hook",
                "enabled_events": ["composio.trigger.message"],
            },
        )
    assert answer.status_code == 404
    error = gen.Error.model_validate(answer.json())
    assert undeclared(error) == []
    assert error.error.slug == "ConnectedAccount_NotFound" and error.error.suggested_fix
    assert error.error.request_id == answer.headers["x-request-id"]
    assert refused.status_code == 400 and "HTTPS" in refused.json()["error"]["message"]


def test_subscription_reads_follow_the_docs_when_asked(fake: FakeComposio) -> None:
    """Docs: the secret only on create and rotate; the generated types: on every answer."""
    fake.secret_on_read = False
    with httpx.Client(base_url=fake.base_url, headers={"x-api-key": API_KEY}) as http:
        made = http.post(
            "/api/v3.1/webhook_subscriptions",
            json={
                "webhook_url": "https://a.example/hook",
                "enabled_events": ["composio.trigger.message"],
            },
        ).json()
        listed = http.get("/api/v3.1/webhook_subscriptions").json()
        rotated = http.post(f"/api/v3.1/webhook_subscriptions/{made['id']}/rotate_secret").json()
    assert made["secret"] and "secret" not in listed["items"][0]
    assert rotated["secret"] != made["secret"]


def test_cursors_are_base64_of_page_and_limit(fake: FakeComposio) -> None:
    with httpx.Client(base_url=fake.base_url, headers={"x-api-key": API_KEY}) as http:
        first = http.get("/api/v3.1/triggers_types", params={"limit": 2}).json()
        second = http.get(
            "/api/v3.1/triggers_types", params={"limit": 2, "cursor": first["next_cursor"]}
        ).json()
    assert base64.b64decode(first["next_cursor"]).decode() == "2:2"
    assert second["current_page"] == 2
    assert {t["slug"] for t in first["items"]}.isdisjoint(t["slug"] for t in second["items"])
