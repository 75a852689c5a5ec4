"""Webhook ingress over the real app: status codes, secrets, logs, fuzzing, replays."""

from __future__ import annotations

import json
import logging
import os
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from planner_operator.backends.composio import subscription as composio_webhooks
from planner_operator.core.settings import Settings
from planner_operator.errors import StateError
from planner_operator.read import status as status_mod
from planner_operator.server.app import create_app
from planner_operator.state import inbox as inbox_mod
from planner_operator.state import open as state_open
from tests.support.webhook_env import (
    DEPLOY_KEY,
    ENV,
    GITHUB_KEY,
    MAIL_ID,
    MAIL_KEY,
    SECRET,
    Recorder,
    apply_triggers,
    composio_body,
    composio_headers,
    default_triggers,
    github_headers,
    standard_headers,
    wait_settled,
)

COMPOSIO = "/webhooks/composio"


def post(client: TestClient, msg_id: str, body: bytes | None = None, **headers: str) -> Any:
    body = composio_body() if body is None else body
    sent = {**composio_headers(msg_id, body), **headers}
    return client.post(COMPOSIO, content=body, headers={k: v for k, v in sent.items() if v})


def test_accepts_then_acknowledges_a_duplicate_and_runs_once(
    client: TestClient, recorder: Recorder, settings: Settings
) -> None:
    first = post(client, "msg_a")
    again = post(client, "msg_a")
    assert (first.status_code, first.json()["status"]) == (202, "accepted")
    assert (again.status_code, again.json()["status"]) == (200, "duplicate")
    wait_settled(settings)
    assert recorder.keys == ["composio:msg_a"]  # the inbox key, namespaced by source
    stored = client.get("/api/inbox").json()
    assert stored["counts"] == {"done": 1}
    assert stored["backlog"] == {"count": 0, "age_seconds": 0.0}  # nothing waits for a worker
    with inbox_mod.Inbox(settings.state_dir / "inbox.db") as inbox:
        delivery = inbox.get("composio:msg_a")
    assert delivery is not None and delivery.duplicates == 1
    assert "webhook-signature" not in delivery.headers
    assert delivery.headers["webhook-id"] == "msg_a"


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({"content-type": "text/plain"}, 415),
        ({"content-type": ""}, 415),
        ({"content-type": "application/x-www-form-urlencoded"}, 415),
        ({"webhook-id": ""}, 400),
        ({"webhook-timestamp": "soon"}, 400),
        ({"webhook-signature": ""}, 400),
        ({"webhook-signature": "garbage"}, 400),
        ({"webhook-signature": "v1,AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="}, 401),
        ({"webhook-timestamp": str(int(time.time()) - 301)}, 401),
        ({"content-length": "9999999999"}, 413),
    ],
)
def test_bad_requests_get_4xx_and_run_nothing(
    client: TestClient, recorder: Recorder, settings: Settings, headers: dict[str, str], status: int
) -> None:
    body = composio_body()
    sent = {**composio_headers("msg_bad", body), **headers}
    answer = client.post(COMPOSIO, content=body, headers={k: v for k, v in sent.items() if v})
    assert answer.status_code == status, answer.text
    assert "error" in answer.json()
    wait_settled(settings)
    assert recorder.calls == []


def test_signed_but_unreadable_bodies_are_400(client: TestClient, recorder: Recorder) -> None:
    for body in (b"not json", b"\xff\xfe", b"[1, 2]", b'{"type": "something else"}'):
        assert post(client, f"msg_{body.hex()}", body).status_code == 400
    assert recorder.calls == []


def test_body_over_the_cap_is_413_declared_or_chunked(tmp_path: Path, recorder: Recorder) -> None:
    state = Settings.resolve(state_dir=tmp_path, env={})
    apply_triggers(state, default_triggers())
    app = create_app(
        state, {**ENV, "PLANNER_WEBHOOK_MAX_BODY": "2048"}, executors=recorder.executors()
    )
    big = composio_body(subject="x" * 4000, sender="a@b")
    with TestClient(app) as client:
        declared = client.post(COMPOSIO, content=big, headers=composio_headers("m1", big))
        chunks = (big[i : i + 512] for i in range(0, len(big), 512))  # no Content-Length
        chunked = client.post(COMPOSIO, content=chunks, headers=composio_headers("m2", big))
        small = composio_body()
        ok = client.post(COMPOSIO, content=small, headers=composio_headers("m3", small))
    assert declared.status_code == 413
    assert chunked.status_code == 413
    assert ok.status_code == 202


def test_generic_webhooks_standard_and_github(
    client: TestClient, recorder: Recorder, settings: Settings
) -> None:
    body = json.dumps({"service": "api", "version": "1.4.2"}).encode()
    std = client.post(
        "/webhooks/engineering-agent/deploy-hook",
        content=body,
        headers=standard_headers("evt_1", body),
    )
    gh = client.post(
        "/webhooks/engineering-agent/gh-push", content=body, headers=github_headers("8c4e-1", body)
    )
    assert (std.status_code, gh.status_code) == (202, 202)
    bad = client.post(
        "/webhooks/engineering-agent/gh-push",
        content=body + b" ",
        headers=github_headers("8c4e-2", body),
    )
    nohdr = client.post(
        "/webhooks/engineering-agent/gh-push",
        content=body,
        headers={"content-type": "application/json"},
    )
    missing = client.post(
        "/webhooks/engineering-agent/nope", content=body, headers=github_headers("x", body)
    )
    composio_key = client.post(
        "/webhooks/job-application-agent/recruiter-email",
        content=body,
        headers=standard_headers("y", body),
    )
    assert (bad.status_code, nohdr.status_code) == (401, 400)
    assert (missing.status_code, composio_key.status_code) == (404, 404)
    wait_settled(settings)
    signed = github_headers("8c4e-1", body)["x-hub-signature-256"]  # GitHub ids: the signature
    assert sorted(recorder.keys) == [
        "webhook:engineering-agent/deploy-hook:evt_1",
        f"webhook:engineering-agent/gh-push:{signed}",
    ]
    assert ("chat", "webhook:engineering-agent/deploy-hook:evt_1", "Deploy of api 1.4.2") in (
        recorder.calls
    )


def test_v1_and_v2_payloads_route_like_v3(
    client: TestClient, recorder: Recorder, settings: Settings
) -> None:
    data = {"subject": "Interview", "sender": "r@x.io"}
    v2 = json.dumps(
        {
            "type": "gmail_new_gmail_message",
            "timestamp": "2026-01-01T00:00:00Z",
            "log_id": "l",
            "data": {
                "trigger_nano_id": MAIL_ID,
                "trigger_id": "uuid-1",
                "connection_id": "c",
                **data,
            },
        }
    ).encode()
    v1 = json.dumps(
        {
            "trigger_name": "GMAIL_NEW_GMAIL_MESSAGE",
            "connection_id": "c",
            "trigger_id": MAIL_ID,
            "payload": data,
            "log_id": "l",
        }
    ).encode()
    assert post(client, "v2", v2, **{"x-composio-webhook-version": "V2"}).status_code == 202
    assert post(client, "v1", v1, **{"x-composio-webhook-version": "V1"}).status_code == 202
    wait_settled(settings)
    messages = sorted(what for _, _, what in recorder.calls)
    assert messages == ["New email from r@x.io: Interview. Draft a reply."] * 2


def test_unowned_composio_trigger_is_stored_and_ignored(
    client: TestClient, recorder: Recorder, settings: Settings
) -> None:
    assert post(client, "msg_u", composio_body("ti_notours")).status_code == 202
    counts = wait_settled(settings)
    # the worker retries a few times (the ledger may lag the event), then ignores it
    assert counts.get("failed") == 1 or counts.get("ignored") == 1
    assert recorder.calls == []


def test_lifecycle_events_update_trigger_status(client: TestClient, settings: Settings) -> None:
    disabled = json.dumps(
        {
            "id": "e1",
            "timestamp": "2026-01-01T00:00:00Z",
            "type": "composio.trigger.disabled",
            "metadata": {},
            "data": {
                "id": MAIL_ID,
                "trigger_name": "GMAIL_NEW_GMAIL_MESSAGE",
                "disabled_reason": "polling_failure_in_composio_infra",  # a documented code
            },
        }
    ).encode()
    expired = json.dumps(
        {
            "id": "e2",
            "timestamp": "2026-01-01T00:00:00Z",
            "type": "composio.connected_account.expired",
            "metadata": {},
            "data": {"id": "ca_1"},
        }
    ).encode()
    assert post(client, "evt_disabled", disabled).status_code == 202
    wait_settled(settings)
    [(state, why)] = status_mod.lifecycle(settings).values()
    assert state == "disabled" and why.startswith("disabled by Composio: polling kept failing")
    mail = {t["key"]: t for t in client.get("/api/triggers").json()}[MAIL_KEY]
    assert (mail["state"], mail["disabled_reason"]) == ("error", why)
    assert post(client, "evt_expired", expired).status_code == 202
    wait_settled(settings)
    state, _ = status_mod.lifecycle(settings)[MAIL_KEY]
    assert state == "disabled"  # the stronger of the two; expired is also recorded
    assert post(client, "after", composio_body()).status_code == 202  # a message proves it works
    wait_settled(settings)
    assert status_mod.lifecycle(settings) == {}


# -- secrets at startup ----------------------------------------------------------------------


def test_without_the_composio_secret_its_triggers_are_in_error_and_the_rest_serves(
    settings: Settings, recorder: Recorder
) -> None:
    env = {k: v for k, v in ENV.items() if k != "COMPOSIO_WEBHOOK_SECRET"}
    app = create_app(
        settings, {**env, "COMPOSIO_WEBHOOK_SECRET": "  "}, executors=recorder.executors()
    )
    with TestClient(app) as client:
        refused = post(client, "msg_nosecret")
        body = b'{"service": "api", "version": "1.2.3"}'
        served = client.post(
            "/webhooks/engineering-agent/deploy-hook",
            content=body,
            headers=standard_headers("msg_deploy", body),
        )
        triggers = {t["key"]: t for t in client.get("/api/triggers").json()}
    assert refused.status_code == 503
    assert served.status_code == 202
    mail = triggers[MAIL_KEY]
    assert mail["state"] == "error"
    assert "the Composio webhook secret is not configured" in mail["detail"]
    assert triggers[DEPLOY_KEY]["state"] != "error"


def test_an_unsafe_composio_secret_file_still_stops_the_server(settings: Settings) -> None:
    env = {k: v for k, v in ENV.items() if k != "COMPOSIO_WEBHOOK_SECRET"}
    secret_file = settings.state_dir / "composio-webhook-secret"
    secret_file.write_text(SECRET + "\n")
    os.chmod(secret_file, 0o644)
    with pytest.raises(StateError, match="readable by other users"):
        create_app(settings, env)
    os.chmod(secret_file, 0o600)
    create_app(settings, env, executors=Recorder().executors())  # the file is enough


def test_a_rotated_secret_is_picked_up_without_a_restart_and_the_old_one_kept(
    tmp_path: Path, recorder: Recorder
) -> None:
    """`composio rotate-secret` in another process: serve follows, in-flight retries verify."""
    state = Settings.resolve(state_dir=tmp_path, env={})
    apply_triggers(state, default_triggers())
    with state_open.secrets(state) as store:
        store.put(composio_webhooks.SECRET_NAME, SECRET)
    env = {k: v for k, v in ENV.items() if k != "COMPOSIO_WEBHOOK_SECRET"}
    new = "whsec_rotated_0123456789abcdef"
    body = composio_body()
    with TestClient(create_app(state, env, executors=recorder.executors())) as client:
        first = client.post(COMPOSIO, content=body, headers=composio_headers("m1", body))
        with state_open.secrets(state) as store:
            store.put(composio_webhooks.SECRET_NAME, new, keep_previous_for=3600)
        deadline = time.monotonic() + 10
        while True:
            signed_new = composio_headers(f"m_{time.monotonic()}", body, secret=new)
            answer = client.post(COMPOSIO, content=body, headers=signed_new)
            if answer.status_code != 401 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        old = client.post(COMPOSIO, content=body, headers=composio_headers("m_old", body))
    assert first.status_code == 202
    assert answer.status_code == 202  # the new secret, with no restart
    assert old.status_code == 202  # the old one, within its grace window


@pytest.mark.parametrize(
    ("name", "value", "problem"),
    [
        ("DEPLOY_WEBHOOK_SECRET", None, "secret $DEPLOY_WEBHOOK_SECRET is not set"),
        ("DEPLOY_WEBHOOK_SECRET", " ", "secret $DEPLOY_WEBHOOK_SECRET is not set"),
        ("DEPLOY_WEBHOOK_SECRET", "whsec_!!", "secret $DEPLOY_WEBHOOK_SECRET is not a Standard"),
        ("GH_WEBHOOK_SECRET", None, "secret $GH_WEBHOOK_SECRET is not set"),
    ],
)
def test_an_unset_webhook_secret_puts_that_trigger_in_error_and_the_rest_serves(
    settings: Settings,
    recorder: Recorder,
    caplog: pytest.LogCaptureFixture,
    name: str,
    value: str | None,
    problem: str,
) -> None:
    """Issue 17: one unset secret took the whole server down, at every restart."""
    env = {k: v for k, v in ENV.items() if k != name}
    if value is not None:
        env[name] = value
    key = DEPLOY_KEY if name == "DEPLOY_WEBHOOK_SECRET" else GITHUB_KEY
    path = "/webhooks/" + key.replace("/triggers/", "/")
    caplog.set_level(logging.ERROR, logger="planner_operator.webhooks")
    with TestClient(create_app(settings, env, executors=recorder.executors())) as client:
        body = b'{"service": "api", "version": "1.2.3"}'
        signed = (
            standard_headers("msg_1", body) if key == DEPLOY_KEY else github_headers("d1", body)
        )
        refused = client.post(path, content=body, headers=signed)
        accepted = post(client, "msg_mail")  # the Composio trigger still serves
        triggers = {t["key"]: t for t in client.get("/api/triggers").json()}
        page = client.get("/planner/").text
        scraped = client.get("/metrics").text
    assert refused.status_code == 503
    assert "secret" in refused.json()["error"]
    assert accepted.status_code == 202
    assert triggers[key]["state"] == "error"
    assert triggers[key]["detail"].startswith(problem)
    assert triggers[MAIL_KEY]["state"] != "error"
    assert problem.replace("$", "&#36;") in page or problem in page
    agent, _, trigger = key.split("/")
    labels = f'agent="{agent}",kind="trigger",name="{trigger}",state="error"'
    series = f"planner_resource_state{{{labels}}} 1.0"
    assert series in scraped
    assert any(key in r.getMessage() and problem in r.getMessage() for r in caplog.records)
    if value and value.strip():
        assert value not in caplog.text


# -- logs never carry secrets, signatures or bodies ------------------------------------------


def test_logs_never_show_secrets_signatures_or_bodies(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    canary_secret = "whsec_CANARYcanaryCANARYcanary0123456789"
    state = Settings.resolve(state_dir=tmp_path, env={})
    apply_triggers(state, default_triggers())
    recorder = Recorder()
    caplog.set_level(logging.DEBUG)
    env = {**ENV, "COMPOSIO_WEBHOOK_SECRET": canary_secret}
    app = create_app(state, env, executors=recorder.executors())
    body = composio_body(subject="BODYCANARY", sender="recruiter@canary.example")
    sent: list[str] = []
    with TestClient(app) as client:
        for n, extra in enumerate(
            [
                {},
                {"webhook-signature": "v1,QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo="},
                {"webhook-timestamp": "12"},
                {"content-type": "text/plain"},
            ]
        ):
            headers = {**composio_headers(f"msg_log{n}", body, secret=canary_secret), **extra}
            sent.append(headers["webhook-signature"])
            client.post(COMPOSIO, content=body, headers=headers)
        wait_settled(state)
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "msg_log0" in text and "outcome=accepted" in text and MAIL_KEY in text
    assert "outcome=rejected 401" in text
    for secret_thing in (canary_secret, "BODYCANARY", "canary.example", *(s[3:] for s in sent)):
        assert secret_thing not in text


# -- fuzzing: never a 5xx, never an executor call for rejected input -------------------------

NAMES = (
    "webhook-id",
    "webhook-timestamp",
    "webhook-signature",
    "content-type",
    "content-length",
    "x-composio-webhook-version",
)
junk = st.one_of(st.text(max_size=40), st.binary(max_size=40).map(lambda b: b.decode("latin-1")))


@st.composite
def deliveries(draw: st.DrawFn) -> tuple[str, bytes, dict[str, Any]]:
    msg_id = "msg_" + draw(st.uuids()).hex
    body = draw(
        st.one_of(
            st.builds(lambda s: composio_body(subject=s, sender="x@y"), st.text(max_size=30)),
            st.binary(max_size=200),
            st.just(composio_body("ti_unknown")),
        )
    )
    skew = draw(st.sampled_from([0, 0, 0, -299, 299, -301, 301]))
    headers: dict[str, Any] = composio_headers(msg_id, body, ts=int(time.time()) + skew)
    for name in draw(st.lists(st.sampled_from(NAMES), max_size=3, unique=True)):
        action = draw(st.sampled_from(["drop", "junk", "bytes"]))
        if action == "drop":
            headers.pop(name, None)
        elif action == "junk":
            headers[name] = draw(junk)
        else:
            headers[name] = draw(
                st.binary(min_size=1, max_size=20).filter(
                    lambda b: b"\n" not in b and b"\r" not in b
                )
            )
    if draw(st.booleans()) and body:
        flip = draw(st.integers(0, len(body) - 1))
        body = body[:flip] + bytes([body[flip] ^ 1]) + body[flip + 1 :]
    return msg_id, body, headers


def test_fuzzed_requests_never_get_5xx_nor_run_when_rejected(tmp_path: Path) -> None:
    state = Settings.resolve(state_dir=tmp_path, env={})
    apply_triggers(state, default_triggers())
    recorder = Recorder()
    accepted: set[str] = set()
    seen: set[int] = set()
    app = create_app(state, ENV, executors=recorder.executors())

    with TestClient(app, raise_server_exceptions=False) as client:

        @settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
        @given(deliveries())
        def check(case: tuple[str, bytes, dict[str, Any]]) -> None:
            msg_id, body, headers = case
            clean = {k: v for k, v in headers.items() if k.isascii()}
            try:
                answer = client.post(COMPOSIO, content=body, headers=clean)
            except UnicodeEncodeError:
                return  # httpx refuses to send it at all: nothing reached the server
            assert answer.status_code < 500, answer.text
            seen.add(answer.status_code)
            if answer.status_code in (200, 202):
                accepted.add(f"composio:{msg_id}")

        check()
        wait_settled(state, timeout=30)
    assert accepted, "the strategy should produce some valid deliveries"
    assert {202, 400, 401, 415} <= seen, seen
    assert set(recorder.keys) <= accepted
    assert len(recorder.keys) == len(set(recorder.keys))


# -- re-sent deliveries across a restart run once --------------------------------------------


@pytest.fixture
def fresh_state(tmp_path: Path) -> Settings:
    state = Settings.resolve(state_dir=tmp_path, env={})
    apply_triggers(state, default_triggers())
    return state


def test_replaying_every_delivery_three_times_across_a_restart_runs_each_once(
    fresh_state: Settings,
) -> None:
    recorder = Recorder()
    ids = [f"msg_{uuid.uuid4().hex}" for _ in range(30)]
    statuses: list[int] = []
    for round_ in range(4):  # the original send plus 3 replays, a restart between each
        app = create_app(fresh_state, ENV, executors=recorder.executors())
        with TestClient(app) as client:
            for msg_id in ids:
                body = composio_body(subject=msg_id, sender="s@x")
                time.sleep(0.0005 * (round_ > 0))
                answer = client.post(COMPOSIO, content=body, headers=composio_headers(msg_id, body))
                statuses.append(answer.status_code)
            wait_settled(fresh_state)
    assert statuses[:30] == [202] * 30
    assert statuses[30:] == [200] * 90
    assert sorted(recorder.keys) == sorted(f"composio:{i}" for i in ids)


def test_the_bare_health_and_runs_endpoints_still_work(client: TestClient) -> None:
    assert client.get("/healthz").json()["ok"] is True
    assert client.get("/api/runs").status_code == 200
    assert DEPLOY_KEY and GITHUB_KEY  # keys used by other tests in this module
