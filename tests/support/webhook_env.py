"""Shared pieces for the webhook tests: a ledger with applied triggers, signed requests, and an
executor that records every call (so a test can say "nothing ran")."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from planner_operator.core import canonical
from planner_operator.core.records import OwnedEntry
from planner_operator.core.settings import Settings
from planner_operator.runtime.executors.base import Executors
from planner_operator.server import signatures
from planner_operator.server.app import create_app
from planner_operator.state import open as state_open
from planner_operator.state.inbox import Inbox
from tests.support import canaries
from tests.support.builders import trigger_spec

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"  # the Composio worked example's secret
STANDARD_SECRET = canaries.DEPLOY_WEBHOOK_SECRET  # a leak of it into test output fails the test
GITHUB_SECRET = "It's a Secret to Everybody"
MAIL_KEY = "job-application-agent/triggers/recruiter-email"
MAIL_ID = "ti_Hx1kP0aB"
DEPLOY_KEY = "engineering-agent/triggers/deploy-hook"
GITHUB_KEY = "engineering-agent/triggers/gh-push"
ENV = {
    "COMPOSIO_WEBHOOK_SECRET": SECRET,
    "DEPLOY_WEBHOOK_SECRET": STANDARD_SECRET,
    "GH_WEBHOOK_SECRET": GITHUB_SECRET,
    "PLANNER_WORKER_POLL": "0.05",
}


def mail_spec(**extra: Any) -> dict[str, Any]:
    return trigger_spec(
        action={
            "chat": {
                "template": "New email from {sender}: {subject}. Draft a reply.",
                "variables": {},
            }
        },
        **extra,
    )


def webhook_spec(env: str, scheme: str, action: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "webhook": {"secret_env": env, "scheme": scheme},
        "enabled": True,
        "protect": False,
        "action": dict(action),
    }


def apply_triggers(
    settings: Settings, specs: Mapping[tuple[str, str, str], Mapping[str, Any]]
) -> None:
    """Record triggers in the ledger as an apply would: {(key, backend, remote_id): spec}."""
    with state_open.ledger(settings) as ledger:
        for (key, backend, remote_id), spec in specs.items():
            ledger.record(
                OwnedEntry(
                    key=key,
                    kind="trigger",
                    backend=backend,
                    remote_id=remote_id,
                    spec_hash=canonical.spec_hash(spec),  # as an apply records it
                    spec=dict(spec),
                    applied_at=datetime.now(UTC),
                )
            )


def default_triggers() -> dict[tuple[str, str, str], Mapping[str, Any]]:
    return {
        (MAIL_KEY, "composio", MAIL_ID): mail_spec(),
        (DEPLOY_KEY, "local", "trg_deploy"): webhook_spec(
            "DEPLOY_WEBHOOK_SECRET",
            "standard",
            {"chat": {"template": "Deploy of {service} {version}", "variables": {}}},
        ),
        (GITHUB_KEY, "local", "trg_gh"): webhook_spec(
            "GH_WEBHOOK_SECRET",
            "github",
            {"workflow": {"id": "post-deploy-checks", "input": {}}},
        ),
    }


@dataclass
class Recorder:
    """Both executor Protocols; idempotent by run key like a real platform, and counting."""

    calls: list[tuple[str, str, Any]] = field(default_factory=list)  # (kind, run_key, what)
    delay: float = 0.0
    fail: list[BaseException] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _done: dict[str, Any] = field(default_factory=dict)

    def start_thread(self, *, agent: str, message: str, context: Mapping[str, Any]) -> str:
        return str(self._call("chat", context, message, f"thr_{len(self.calls)}"))

    def run(self, *, workflow: str, input: Mapping[str, Any], context: Mapping[str, Any]) -> Any:
        return self._call("workflow", context, dict(input), {"ok": True, "workflow": workflow})

    def _call(self, kind: str, context: Mapping[str, Any], what: Any, result: Any) -> Any:
        key = str(context.get("run_key"))
        with self._lock:
            self.calls.append((kind, key, what))
            if self.fail:
                raise self.fail.pop(0)
            if key in self._done:
                return self._done[key]
        if self.delay:
            time.sleep(self.delay)
        with self._lock:
            return self._done.setdefault(key, result)

    @property
    def keys(self) -> list[str]:
        with self._lock:
            return [k for _, k, _ in self.calls]

    def executors(self) -> Executors:
        return Executors(chat=self, workflow=self)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    s = Settings.resolve(state_dir=tmp_path / "state", env={})
    s.state_dir.mkdir(parents=True)
    apply_triggers(s, default_triggers())
    return s


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def client(settings: Settings, recorder: Recorder) -> Iterator[TestClient]:
    app = create_app(settings, ENV, executors=recorder.executors())
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


def composio_body(trigger_id: str = MAIL_ID, **data: Any) -> bytes:
    payload = {
        "id": "msg_x",
        "timestamp": "2026-01-01T12:00:00.000Z",
        "type": "composio.trigger.message",
        "metadata": {
            "log_id": "log_1",
            "trigger_slug": "GMAIL_NEW_GMAIL_MESSAGE",
            "trigger_id": trigger_id,
            "connected_account_id": "ca_1",
            "auth_config_id": "ac_1",
            "user_id": "user-1",
        },
        "data": data or {"subject": "Interview", "sender": "recruiter@example.com"},
    }
    return json.dumps(payload).encode()


def composio_headers(
    msg_id: str, body: bytes, *, secret: str = SECRET, ts: int | None = None
) -> dict[str, str]:
    stamp = int(time.time()) if ts is None else ts
    return {
        "content-type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": str(stamp),
        "webhook-signature": signatures.sign_composio(secret, msg_id, stamp, body),
        "x-composio-webhook-version": "V3",
    }


def standard_headers(msg_id: str, body: bytes, *, ts: int | None = None) -> dict[str, str]:
    stamp = int(time.time()) if ts is None else ts
    return {
        "content-type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": str(stamp),
        "webhook-signature": signatures.sign_standard(STANDARD_SECRET, msg_id, stamp, body),
    }


def github_headers(delivery: str, body: bytes) -> dict[str, str]:
    return {
        "content-type": "application/json",
        "x-github-delivery": delivery,
        "x-github-event": "deployment_status",
        "x-hub-signature-256": signatures.sign_github(GITHUB_SECRET, body),
    }


def wait_settled(settings: Settings, *, timeout: float = 10.0) -> dict[str, int]:
    """Wait until no delivery is pending (received, processing, failed-and-due soon)."""
    deadline = time.monotonic() + timeout
    with Inbox(settings.inbox_db) as inbox:
        while True:
            counts = inbox.counts()
            if not any(counts.get(s) for s in ("received", "processing")):
                return counts
            if time.monotonic() > deadline:
                raise AssertionError(f"inbox did not settle: {counts}")
            time.sleep(0.02)
