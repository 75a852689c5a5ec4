"""The webhook subscription, its secret, `composio rotate-secret`, the fake's signed deliveries."""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import typer
from typer.testing import CliRunner

from planner_operator.backends.composio import backend as composio
from planner_operator.backends.composio import subscription as composio_webhooks
from planner_operator.backends.composio.subscription import EVENTS, SecretStore
from planner_operator.cli import composio as composio_cli
from planner_operator.core.settings import Settings
from planner_operator.errors import PlannerError, StateError
from tests.fakes.composio_server import FakeComposio, sign

runner = CliRunner()


@pytest.fixture
def fake() -> Iterator[FakeComposio]:
    with FakeComposio() as server:
        yield server


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings.resolve(state_dir=tmp_path / "state", env={})


@pytest.fixture
def backend(fake: FakeComposio, settings: Settings) -> Iterator[composio.ComposioTriggerBackend]:
    with composio.from_env(settings, fake.env()) as made:
        yield made


@pytest.fixture
def subs(backend: composio.ComposioTriggerBackend) -> object:
    """The SDK's ``webhooks.subscriptions`` resource, pointed at the fake."""
    return backend._client.webhooks.subscriptions


def hooks(settings: Settings, **env: str) -> composio_webhooks.WebhookSettings:
    return composio_webhooks.WebhookSettings.from_env(
        settings, {"PLANNER_PUBLIC_URL": "https://planner.example.com/", **env}
    )


def writes(fake: FakeComposio) -> int:
    return sum(1 for s in fake.requests if s.method != "GET")


def test_the_signature_matches_the_reference_worked_example() -> None:
    body = (
        '{"id":"msg_01JH0000000000000000000000","timestamp":"2026-01-01T12:00:00.000Z",'
        '"type":"composio.trigger.message","metadata":{"log_id":"log_abc123",'
        '"trigger_slug":"GMAIL_NEW_GMAIL_MESSAGE","trigger_id":"ti_Hx1kP0aB",'
        '"connected_account_id":"ca_5KdA-e2C4ZMd","auth_config_id":"ac_ZxnpxqOo1nAP",'
        '"user_id":"user-1"},"data":{"message_id":"19a0c0ffee","subject":"hello",'
        '"sender":"alice@example.com"}}'
    )
    signature = sign(
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        "msg_01JH0000000000000000000000",
        1767268800,
        body.encode(),
    )
    assert signature == "MNxDPwG+NQSQE7u5IFCgnxS9TSfljKIiHh/wKzU2JmE="


def test_ensure_creates_the_subscription_and_stores_the_secret_privately(
    fake: FakeComposio, settings: Settings, subs: object
) -> None:
    umask = os.umask(0)  # even a umask that leaves everything open gives 0600
    try:
        done = composio_webhooks.ensure_subscription(subs, hooks(settings))
    finally:
        os.umask(umask)
    assert done.problems == () and "created Composio webhook subscription" in done.actions[0]
    sub = fake.subscription
    assert sub is not None
    assert sub["webhook_url"] == "https://planner.example.com/webhooks/composio"
    assert sub["version"] == "V3" and sub["enabled_events"] == list(EVENTS)
    path = settings.composio_secret_file
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert composio_webhooks.load_secret(settings, {}) == sub["secret"]

    before = writes(fake)  # converged: the next ensure only reads
    again = composio_webhooks.ensure_subscription(subs, hooks(settings))
    assert again.actions == () and writes(fake) == before


def test_ensure_corrects_a_stale_subscription_and_rotates_when_no_secret_is_stored(
    fake: FakeComposio, settings: Settings, subs: object
) -> None:
    subs.set(  # type: ignore[attr-defined]
        webhook_url="https://old.example.com/hook",
        enabled_events=["composio.trigger.message"],
        version="V1",
    )
    first_secret = fake.subscription["secret"] if fake.subscription else ""
    done = composio_webhooks.ensure_subscription(subs, hooks(settings))
    assert [a.split(":")[0] for a in done.actions] == [
        f"updated Composio webhook subscription {fake.subscription['id']}",  # type: ignore[index]
        f"rotated the webhook secret of {fake.subscription['id']}",  # type: ignore[index]
    ]
    assert fake.subscription is not None
    assert (fake.subscription["version"], fake.subscription["enabled_events"]) == (
        "V3",
        list(EVENTS),
    )
    assert fake.subscription["secret"] != first_secret
    assert composio_webhooks.load_secret(settings, {}) == fake.subscription["secret"]


def test_an_env_secret_is_used_and_never_rotated_away(
    fake: FakeComposio, settings: Settings, subs: object
) -> None:
    created = composio_webhooks.ensure_subscription(
        subs, hooks(settings, COMPOSIO_WEBHOOK_SECRET="whsec_from_env")
    )
    assert "COMPOSIO_WEBHOOK_SECRET is set and takes precedence" in created.problems[0]
    assert "whsec_from_env" not in created.problems[0]
    rotations = fake.count("POST", "rotate_secret")
    composio_webhooks.ensure_subscription(subs, hooks(settings, COMPOSIO_WEBHOOK_SECRET="x"))
    assert fake.count("POST", "rotate_secret") == rotations
    assert composio_webhooks.load_secret(settings, {"COMPOSIO_WEBHOOK_SECRET": "x"}) == "x"


def test_without_a_public_url_the_problem_is_named(settings: Settings) -> None:
    no_url = composio_webhooks.WebhookSettings.from_env(settings, {})
    done = composio_webhooks.ensure_subscription(object(), no_url)
    assert "PLANNER_PUBLIC_URL is not set" in done.problems[0]
    with pytest.raises(PlannerError, match="not a URL"):
        composio_webhooks.WebhookSettings.from_env(settings, {"PLANNER_PUBLIC_URL": "planner"})


def test_a_secret_file_others_can_read_is_refused(tmp_path: Path) -> None:
    store = SecretStore(tmp_path / "secret")
    store.save("whsec_abc")
    assert store.load() == "whsec_abc" and store.where == str(tmp_path / "secret")
    (tmp_path / "secret").chmod(0o644)
    with pytest.raises(StateError, match="chmod 600") as err:
        store.load()
    assert "whsec_abc" not in str(err.value)
    with pytest.raises(PlannerError, match="empty"):
        store.save("")
    assert SecretStore(tmp_path / "none").load() is None
    assert "whsec_abc" not in repr(SecretStore(tmp_path, env_secret="whsec_abc"))


# -- rotate-secret -----------------------------------------------------------------------------


def cli() -> typer.Typer:
    """The sub-app mounted the way cli.py mounts it."""
    root = typer.Typer()
    root.command("version")(lambda: None)  # a second command keeps `composio` a group
    root.add_typer(composio_cli.app, name="composio")
    return root


def test_rotate_secret_stores_the_new_secret_and_never_prints_it(
    fake: FakeComposio,
    settings: Settings,
    subs: object,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    for name, value in fake.env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("COMPOSIO_WEBHOOK_SECRET", raising=False)
    state = ["--state-dir", str(settings.state_dir)]
    result = runner.invoke(cli(), ["composio", "rotate-secret", *state])
    assert result.exit_code == 1 and "no webhook subscription yet" in result.stderr

    caplog.set_level(logging.DEBUG)
    composio_webhooks.ensure_subscription(subs, hooks(settings))
    old = composio_webhooks.load_secret(settings, {})
    result = runner.invoke(cli(), ["composio", "rotate-secret", *state])
    assert result.exit_code == 0, result.stderr
    new = composio_webhooks.load_secret(settings, {})
    assert fake.subscription is not None and new == fake.subscription["secret"] != old
    assert str(settings.composio_secret_file) in result.stdout
    for secret in (old, new):
        assert secret and secret not in result.stdout + result.stderr + caplog.text

    monkeypatch.setenv("COMPOSIO_WEBHOOK_SECRET", "whsec_env")
    result = runner.invoke(cli(), ["composio", "rotate-secret", *state])
    assert result.exit_code == 0 and "COMPOSIO_WEBHOOK_SECRET is set" in result.stderr


# -- signed deliveries from the fake -----------------------------------------------------------


def test_fake_deliveries_verify_with_the_sdk_and_the_stored_secret(
    fake: FakeComposio, settings: Settings, backend: composio.ComposioTriggerBackend
) -> None:
    """The fake signs as Composio does: the SDK's own verifier accepts its deliveries."""
    backend.preflight([])
    made = backend.create(
        "a/triggers/mail",
        {"event": "GMAIL_NEW_GMAIL_MESSAGE", "connected_account": "ca_123", "config": {}},
    )
    composio_webhooks.ensure_subscription(backend._client.webhooks.subscriptions, hooks(settings))
    captured: list[httpx.Request] = []

    def receive(request: httpx.Request) -> httpx.Response:
        captured.append(request)
        return httpx.Response(202)

    with httpx.Client(transport=httpx.MockTransport(receive)) as client:
        answer = fake.deliver(
            "https://planner.example.com/webhooks/composio",
            trigger_id=made.remote_id,
            client=client,
        )
    assert answer.status_code == 202
    [request] = captured
    verified = backend._client.triggers.verify_webhook(
        id=request.headers["webhook-id"],
        payload=request.content.decode(),
        secret=composio_webhooks.load_secret(settings, {}),
        signature=request.headers["webhook-signature"],
        timestamp=request.headers["webhook-timestamp"],
    )
    assert verified["version"] == "V3"  # a str Enum
    assert verified["raw_payload"]["metadata"]["trigger_id"] == made.remote_id
    assert verified["raw_payload"]["data"]["subject"] == "Q3 pipeline review"
    assert request.headers["x-composio-webhook-version"] == "V3"
