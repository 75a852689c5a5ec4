"""The webhook subscription as plan data, its secret (stored, never rotated by reconcile),
`composio rotate-secret` with its grace window, the fake's signed deliveries."""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import typer
from typer.testing import CliRunner

from planner_operator.backends.base import SubscriptionState
from planner_operator.backends.composio import backend as composio
from planner_operator.backends.composio import subscription as composio_webhooks
from planner_operator.backends.composio.subscription import EVENTS
from planner_operator.cli import composio as composio_cli
from planner_operator.config.desired import DesiredResource
from planner_operator.core import canonical
from planner_operator.core.clock import ManualClock
from planner_operator.core.settings import Settings
from planner_operator.errors import PlannerError, SourceError, StateError
from tests.fakes.composio_server import FakeComposio, sign

runner = CliRunner()
URL = "https://planner.example.com/webhooks/composio"
_SPEC = {
    "event": "GMAIL_NEW_GMAIL_MESSAGE",
    "connected_account": "ca_123",
    "config": {},
    "action": {"chat": {"template": "hi"}},
}
MAIL = DesiredResource(
    key="a/triggers/mail",
    kind="trigger",
    agent="a",
    name="mail",
    source="agents/a.yaml",
    line=3,
    spec=_SPEC,
    spec_hash=canonical.spec_hash(_SPEC),
)


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


def observe(backend: composio.ComposioTriggerBackend) -> SubscriptionState:
    backend.preflight([MAIL])  # a Composio trigger is declared: the subscription matters
    state = backend.subscription()
    assert state is not None
    return state


def subs(backend: composio.ComposioTriggerBackend) -> object:
    """The generated client's ``webhook_subscriptions`` resource, pointed at the fake."""
    return backend._client.client.webhook_subscriptions


def test_reconcile_creates_the_subscription_and_stores_the_secret_privately(
    fake: FakeComposio, settings: Settings, backend: composio.ComposioTriggerBackend
) -> None:
    planned = observe(backend)
    assert (planned.remote, planned.url, planned.problems) == (None, URL, ())
    umask = os.umask(0)  # even a umask that leaves everything open gives 0600
    try:
        assert backend.apply_subscription(planned) == []
    finally:
        os.umask(umask)
    sub = fake.subscription
    assert sub is not None and sub["webhook_url"] == URL
    assert sub["version"] == "V3" and sub["enabled_events"] == list(EVENTS)
    assert stat.S_IMODE((settings.state_dir / "secrets.db").stat().st_mode) == 0o600
    assert composio_webhooks.accepted_secrets(settings, {}) == (sub["secret"],)

    before = writes(fake)  # converged: the next plan reads only, and plans nothing
    again = observe(backend)
    assert again.matches and again.owned and again.secret == "stored"
    assert backend.apply_subscription(again) == [] and writes(fake) == before


def test_a_stale_own_subscription_is_corrected_and_its_secret_never_rotated(
    fake: FakeComposio, settings: Settings, backend: composio.ComposioTriggerBackend
) -> None:
    made = subs(backend).create(  # type: ignore[attr-defined]
        webhook_url=URL, enabled_events=["composio.trigger.message"], version="V1"
    )
    planned = observe(backend)
    assert planned.owned and not planned.matches  # it points here: ours to correct
    assert planned.secret == "fetch"  # the types' behaviour: the read carries the secret
    assert backend.apply_subscription(planned) == []
    assert fake.subscription is not None and fake.subscription["version"] == "V3"
    assert fake.subscription["secret"] == made.secret  # stored as it is, not rotated
    assert composio_webhooks.accepted_secrets(settings, {}) == (made.secret,)
    assert fake.count("POST", "rotate_secret") == 0


def test_another_apps_subscription_is_changed_only_as_planned(
    fake: FakeComposio, settings: Settings, backend: composio.ComposioTriggerBackend
) -> None:
    subs(backend).create(  # type: ignore[attr-defined]
        webhook_url="https://crm.example.com/hooks", enabled_events=EVENTS[:1], version="V2"
    )
    planned = observe(backend)
    assert not planned.owned and planned.remote is not None
    assert planned.remote.url == "https://crm.example.com/hooks"
    before = writes(fake)
    # (the engine calls apply only for an actionable change: --take-over-subscription)
    fake.subscription["version"] = "V1"  # type: ignore[index]  # ...and it moved meanwhile
    [problem] = backend.apply_subscription(planned)
    assert "changed since the plan" in problem and writes(fake) == before
    taken = observe(backend)
    assert backend.apply_subscription(taken) == []
    assert fake.subscription["webhook_url"] == URL  # type: ignore[index]
    moved = composio_webhooks.WebhookSettings.from_env(
        settings, {"PLANNER_PUBLIC_URL": "https://new.example.com"}
    )
    backend._webhooks = moved  # this operator moved: what it wrote is still its own
    assert observe(backend).owned


def test_without_a_stored_secret_reconcile_names_rotate_secret_and_rotates_nothing(
    settings: Settings,
) -> None:
    """The docs' behaviour: Composio returns the secret only on create and rotate."""
    with FakeComposio(secret_on_read=False) as fake, composio.from_env(settings, fake.env()) as be:
        subs(be).create(webhook_url=URL, enabled_events=list(EVENTS), version="V3")  # type: ignore[attr-defined]
        planned = observe(be)
        assert planned.matches and planned.secret == "missing"
        [problem] = planned.problems
        assert "planner-operator composio rotate-secret" in problem
        assert be.apply_subscription(planned) == []  # the plan said it; apply adds nothing
        assert fake.count("POST", "rotate_secret") == 0
        assert composio_webhooks.accepted_secrets(settings, {}) == ()


def test_an_env_secret_is_checked_against_composios_and_never_rotated_away(
    fake: FakeComposio, settings: Settings
) -> None:
    env = fake.env(COMPOSIO_WEBHOOK_SECRET="whsec_from_env")
    with composio.from_env(settings, env) as backend:
        subs(backend).create(webhook_url=URL, enabled_events=list(EVENTS), version="V3")  # type: ignore[attr-defined]
        planned = observe(backend)
        assert planned.secret == "env"
        [problem] = planned.problems
        assert "COMPOSIO_WEBHOOK_SECRET is not the subscription's signing secret" in problem
        assert "whsec_from_env" not in problem and fake.subscription["secret"] not in problem  # type: ignore[index]
    assert fake.count("POST", "rotate_secret") == 0
    assert composio_webhooks.accepted_secrets(settings, {"COMPOSIO_WEBHOOK_SECRET": "x"}) == ("x",)


def test_the_public_url_must_be_https_and_its_absence_is_named(settings: Settings) -> None:
    with pytest.raises(SourceError, match="HTTPS URLs only"):
        composio_webhooks.WebhookSettings.from_env(
            settings, {"PLANNER_PUBLIC_URL": "http://planner.example.com"}
        )
    with pytest.raises(PlannerError, match="not a URL"):
        composio_webhooks.WebhookSettings.from_env(settings, {"PLANNER_PUBLIC_URL": "planner"})
    with FakeComposio() as fake:
        env = {k: v for k, v in fake.env().items() if k != "PLANNER_PUBLIC_URL"}
        with composio.from_env(settings, env) as backend:
            planned = observe(backend)
    assert planned.url is None and "PLANNER_PUBLIC_URL is not set" in planned.problems[0]


def test_the_old_secret_file_is_imported_once_and_refused_when_others_can_read_it(
    settings: Settings,
) -> None:
    legacy = settings.composio_secret_file
    legacy.parent.mkdir(parents=True)
    legacy.write_text("whsec_legacy\n")
    legacy.chmod(0o644)
    with pytest.raises(StateError, match="chmod 600") as err:
        composio_webhooks.accepted_secrets(settings, {})
    assert "whsec_legacy" not in str(err.value)
    legacy.chmod(0o600)
    assert composio_webhooks.accepted_secrets(settings, {}) == ("whsec_legacy",)


# -- rotate-secret -----------------------------------------------------------------------------


def cli() -> typer.Typer:
    """The sub-app mounted the way cli.py mounts it."""
    root = typer.Typer()
    root.command("version")(lambda: None)  # a second command keeps `composio` a group
    root.add_typer(composio_cli.app, name="composio")
    return root


def test_rotate_secret_keeps_the_old_one_accepted_and_never_prints_either(
    fake: FakeComposio,
    settings: Settings,
    backend: composio.ComposioTriggerBackend,
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
    backend.apply_subscription(observe(backend))
    [old] = composio_webhooks.accepted_secrets(settings, {})
    result = runner.invoke(cli(), ["composio", "rotate-secret", "--grace-hours", "2", *state])
    assert result.exit_code == 0, result.stderr
    new = fake.subscription["secret"]  # type: ignore[index]
    assert composio_webhooks.accepted_secrets(settings, {}) == (new, old)  # both, for 2 h
    assert "restart" not in result.stdout.lower() and "2 more hour(s)" in result.stdout
    assert str(settings.state_dir / "secrets.db") in result.stdout
    for secret in (old, new):
        assert secret not in result.stdout + result.stderr + caplog.text
    later = ManualClock(datetime.now(UTC) + timedelta(hours=2, seconds=1))
    assert composio_webhooks.accepted_secrets(settings, {}, clock=later) == (new,)

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
    backend.apply_subscription(observe(backend))
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
        secret=composio_webhooks.accepted_secrets(settings, {})[0],
        signature=request.headers["webhook-signature"],
        timestamp=request.headers["webhook-timestamp"],
    )
    assert verified["version"] == "V3"  # a str Enum
    assert verified["raw_payload"]["metadata"]["trigger_id"] == made.remote_id
    assert verified["raw_payload"]["data"]["subject"] == "Q3 pipeline review"
    assert request.headers["x-composio-webhook-version"] == "V3"
