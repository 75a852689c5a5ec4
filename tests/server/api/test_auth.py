"""The API token guard on the real serve app: loopback vs exposed binds, the token file, the
dashboard cookie and its CSRF check, OpenAPI, and that the token never reaches a log."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import shutil
import stat
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from starlette.requests import Request

from planner_operator.core.settings import Settings
from planner_operator.errors import AuthError, StateError
from planner_operator.reconcile.engine import SourceSpec, reconcile
from planner_operator.server import auth, signatures
from planner_operator.server.app import create_app
from planner_operator.server.operator import build

ROOT = Path(__file__).resolve().parents[3]
TOKEN = "tok_3fQ9vLx2WmZr8KpA1cYd7HsE"
DEPLOY_SECRET = "deploy-secret-for-tests"
ENV = {"DEPLOY_WEBHOOK_SECRET": DEPLOY_SECRET, "PLANNER_WORKER": "0"}
WRITE = "/triggers/sales-agent/new-contact"  # PUT: a write that passes the guard -> 409
BEARER = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(scope="module")
def applied(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """The example agents reconciled onto the embedded backend (once per module)."""
    state = tmp_path_factory.mktemp("state")
    settings = Settings.resolve(state_dir=state, env={})
    outcome = reconcile(SourceSpec(path=ROOT / "agents"), settings)
    assert outcome.applied is not None and outcome.applied.ok
    return settings


@pytest.fixture
def settings(applied: Settings, tmp_path: Path) -> Settings:
    """A private state dir per test (token files differ) over the shared applied state."""
    state = tmp_path / "state"
    shutil.copytree(applied.state_dir, state)
    return Settings.resolve(state_dir=state, env={})


def serve(settings: Settings, bind_host: str = "127.0.0.1", **env: str) -> TestClient:
    app = create_app(settings, {**ENV, auth.ENV_TOKEN: TOKEN, **env}, bind_host=bind_host)
    return TestClient(app, raise_server_exceptions=False)


@pytest.fixture(scope="module")
def served(applied: Settings, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """State shared by the module's two long-lived apps (their tests only read or get 409)."""
    state = tmp_path_factory.mktemp("served") / "state"
    shutil.copytree(applied.state_dir, state)
    return Settings.resolve(state_dir=state, env={})


@pytest.fixture(scope="module")
def local(served: Settings) -> Iterator[TestClient]:
    with serve(served) as client:
        yield client


@pytest.fixture(scope="module")
def exposed(served: Settings) -> Iterator[TestClient]:
    with serve(served, "0.0.0.0") as client:
        yield client


def test_loopback_reads_are_open_and_writes_need_the_token(local: TestClient) -> None:
    assert local.get("/api/runs").status_code == 200
    assert local.get("/triggers").status_code == 200

    missing = local.put(WRITE, json={})
    assert missing.status_code == 401
    assert missing.headers["www-authenticate"] == 'Bearer realm="planner-operator"'
    assert "Authorization: Bearer <token>" in missing.json()["detail"]
    assert auth.ENV_TOKEN in missing.json()["detail"]  # where the token is, never its value

    wrong = local.put(WRITE, json={}, headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    assert 'error="invalid_token"' in wrong.headers["www-authenticate"]
    assert "nope" not in wrong.text

    basic = local.put(WRITE, json={}, headers={"Authorization": f"Basic {TOKEN}"})
    assert basic.status_code == 401

    right = local.put(WRITE, json={}, headers=BEARER)
    assert right.status_code == 409  # through the guard; the compat route answers


def test_a_wrong_token_fails_even_where_reads_are_open(local: TestClient) -> None:
    answer = local.get("/api/runs", headers={"Authorization": "Bearer wrong"})
    assert answer.status_code == 401


def test_exposed_bind_needs_the_token_for_reads_too(exposed: TestClient) -> None:
    for path in ("/api/runs", "/api/inbox", "/triggers", "/workflows", "/openapi.json", "/docs"):
        assert exposed.get(path).status_code == 401, path
        assert exposed.get(path, headers=BEARER).status_code == 200, path
    # query strings are never read: they end up in proxy and access logs
    assert exposed.get(f"/api/runs?token={TOKEN}&access_token={TOKEN}").status_code == 401


def test_signed_endpoints_and_healthz_are_not_behind_the_token(settings: Settings) -> None:
    app = build(settings, {**ENV, auth.ENV_TOKEN: TOKEN}, bind_host="0.0.0.0")
    with TestClient(app, raise_server_exceptions=False) as client:
        health = client.get("/healthz")
        assert health.status_code == 200 and health.json()["ok"] is True
        assert "last_sync_error" not in json.dumps(health.json())

        body = b'{"deployment": {"environment": "production"}}'
        hook = client.post(
            "/webhooks/engineering-agent/deploy-hook",
            content=body,
            headers={
                "content-type": "application/json",
                "x-github-delivery": "d-1",
                "x-github-event": "deployment",
                "x-hub-signature-256": signatures.sign_github(DEPLOY_SECRET, body),
            },
        )
        assert hook.status_code == 202, hook.text  # its own signature, no bearer token
        unsigned = client.post("/webhooks/engineering-agent/deploy-hook", content=body)
        assert unsigned.status_code != 202 and "WWW-Authenticate" not in unsigned.headers

        git = client.post("/hooks/git", content=b"{}")
        assert git.status_code == 404 and "not enabled" in git.text  # its own check answered


def test_route_groups() -> None:
    guard = auth.Guard(auth.ApiToken(TOKEN, "x"), loopback=True, exempt_paths=auth.EXEMPT_PATHS)
    exposed = auth.Guard(auth.ApiToken(TOKEN, "x"), loopback=False)
    inngest = auth.Guard.create(auth.ApiToken(TOKEN, "x"), bind_host="::", exempt=["/api/inngest"])
    assert guard.need("GET", "/api/runs") is auth.Need.TOKEN_IF_PRESENTED
    assert guard.need("POST", "/api/jobs/a/b/run") is auth.Need.TOKEN
    assert guard.need("DELETE", "/triggers/a/b") is auth.Need.TOKEN
    assert exposed.need("GET", "/metrics") is auth.Need.TOKEN
    assert exposed.need("GET", "/planner/") is auth.Need.TOKEN
    assert exposed.need("POST", "/webhooks/composio") is auth.Need.NOTHING
    assert exposed.need("GET", "/healthz") is auth.Need.NOTHING
    assert exposed.need("POST", "/hooks/git") is auth.Need.NOTHING
    assert exposed.need("GET", auth.LOGIN_PATH) is auth.Need.NOTHING
    assert exposed.need("POST", auth.LOGIN_PATH) is auth.Need.SAME_ORIGIN
    assert exposed.need("GET", "/planner/static/app.css") is auth.Need.NOTHING
    assert exposed.need("POST", "/planner/static/app.css") is auth.Need.TOKEN
    assert exposed.need("POST", "/api/inngest") is auth.Need.TOKEN  # not served here
    assert inngest.need("PUT", "/api/inngest") is auth.Need.NOTHING  # the SDK's signing key


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.8.9.10", True),
        ("::1", True),
        ("[::1]", True),
        ("localhost", True),
        ("LocalHost", True),
        ("0.0.0.0", False),
        ("::", False),
        ("192.168.1.5", False),
        ("example.com", False),
        ("", False),
    ],
)
def test_loopback_addresses(host: str, loopback: bool) -> None:
    assert auth.is_loopback(host) is loopback


def test_generated_token_file_is_private_and_reused(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="planner_operator")
    path = settings.state_dir / auth.TOKEN_FILE
    with TestClient(create_app(settings, ENV)) as client:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        token = path.read_text().strip()
        assert len(token) >= 40
        assert str(path) in caplog.text and "generated" in caplog.text
        assert token not in caplog.text
        assert client.put(WRITE, json={}).status_code == 401
        assert (
            client.put(WRITE, json={}, headers={"Authorization": f"Bearer {token}"}).status_code
            == 409
        )
    create_app(settings, ENV)  # a second start reuses the file
    assert path.read_text().strip() == token


def test_the_environment_token_wins_and_no_file_is_written(settings: Settings) -> None:
    with serve(settings) as client:
        assert client.put(WRITE, json={}, headers=BEARER).status_code == 409
    assert not (settings.state_dir / auth.TOKEN_FILE).exists()


@pytest.mark.parametrize("value", ["", "   "])
def test_an_empty_token_variable_refuses_to_start(settings: Settings, value: str) -> None:
    with pytest.raises(AuthError, match=f"{auth.ENV_TOKEN} is set but empty"):
        create_app(settings, {**ENV, auth.ENV_TOKEN: value})


def test_a_token_file_others_can_read_refuses_to_start(settings: Settings) -> None:
    path = settings.state_dir / auth.TOKEN_FILE
    path.write_text("shared-token\n")
    os.chmod(path, 0o644)
    with pytest.raises(StateError, match="readable by other users"):
        create_app(settings, ENV)


def login(app: FastAPI, token: str, *, scheme: str = "http", next_: str = "/planner/jobs") -> str:
    """The dashboard helper as helper B's login route calls it; returns its Set-Cookie."""
    request = Request(
        {
            "type": "http",
            "method": "POST",
            "path": auth.LOGIN_PATH,
            "scheme": scheme,
            "headers": [(b"host", b"testserver")],
            "query_string": b"",
            "server": ("testserver", 80),
            "client": ("127.0.0.1", 5000),
            "app": app,
        }
    )
    response = auth.login_response(request, token, next_)
    return response.headers.get("set-cookie", "") + f";status={response.status_code}"


def cookie_value(set_cookie: str) -> str:
    return set_cookie.split(";", 1)[0].split("=", 1)[1]


def test_cookie_login_reads_and_same_origin_writes(exposed: TestClient) -> None:
    app = exposed.app
    assert isinstance(app, FastAPI)
    refused = login(app, "not-the-token")
    assert refused.endswith("status=401") and auth.COOKIE_NAME not in refused

    issued = login(app, TOKEN)
    assert issued.endswith("status=303")
    flags = issued.lower()
    assert "httponly" in flags and "samesite=strict" in flags and "path=/" in flags
    assert "secure" not in flags  # plain http here; https below
    assert TOKEN not in issued
    assert "secure" in login(app, TOKEN, scheme="https").lower()

    exposed.cookies.set(auth.COOKIE_NAME, cookie_value(issued))
    try:
        check_cookie_session(exposed)
    finally:
        exposed.cookies.clear()


def check_cookie_session(exposed: TestClient) -> None:
    assert exposed.get("/api/runs").status_code == 200
    same = exposed.put(WRITE, json={}, headers={"Origin": "http://localhost"})
    assert same.status_code == 409
    by_referer = exposed.put(WRITE, json={}, headers={"Referer": "http://localhost/planner/"})
    assert by_referer.status_code == 409

    cross = exposed.put(WRITE, json={}, headers={"Origin": "https://evil.example"})
    assert cross.status_code == 403 and "Origin" in cross.json()["detail"]
    bare = exposed.put(WRITE, json={})
    assert bare.status_code == 403 and "neither an Origin nor a Referer" in bare.json()["detail"]
    # a presented bearer token decides alone, even next to a valid cookie
    assert exposed.get("/api/runs", headers={"Authorization": "Bearer x"}).status_code == 401


def test_logout_clears_the_cookie(exposed: TestClient) -> None:
    app = exposed.app
    assert isinstance(app, FastAPI)
    request = Request(
        {
            "type": "http",
            "method": "POST",
            "path": auth.LOGOUT_PATH,
            "scheme": "http",
            "headers": [],
            "query_string": b"",
            "app": app,
        }
    )
    response = auth.logout_response(request)
    assert response.status_code == 303 and response.headers["location"] == auth.LOGIN_PATH
    cleared = response.headers["set-cookie"].lower()
    assert cleared.startswith(f"{auth.COOKIE_NAME}=") and "max-age=0" in cleared


def test_sessions_expire_and_die_with_the_token() -> None:
    token = auth.ApiToken(TOKEN, "x")
    now = time.time()
    value = token.session(now)
    assert token.session_valid(value, now)
    assert not token.session_valid(value, now + auth.SESSION_MAX_AGE + 1)
    assert not auth.ApiToken(TOKEN + "rotated", "x").session_valid(value, now)
    expires, _, mac = value.partition(".")
    assert not token.session_valid(f"{int(expires) + 3600}.{mac}", now)  # forged expiry
    assert not token.session_valid("garbage", now) and not token.session_valid(None, now)


def test_dashboard_pages_send_browsers_to_the_login_page(exposed: TestClient) -> None:
    page = exposed.get("/planner/jobs", headers={"Accept": "text/html"}, follow_redirects=False)
    assert page.status_code == 303
    assert page.headers["location"] == f"{auth.LOGIN_PATH}?next=/planner/jobs"


@pytest.mark.parametrize(
    ("target", "kept"),
    [
        ("/planner/jobs?agent=a", True),
        ("//evil.example/x", False),
        ("/\\evil.example", False),
        ("https://evil.example/", False),
        ("planner", False),
        (None, False),
    ],
)
def test_login_redirects_stay_on_this_server(target: str | None, kept: bool) -> None:
    assert (auth.safe_redirect(target) == target) is kept


def test_openapi_shows_the_bearer_scheme_and_auth_answers(local: TestClient) -> None:
    schema = local.get("/openapi.json").json()
    assert schema["components"]["securitySchemes"][auth.SCHEME_NAME]["scheme"] == "bearer"
    put = schema["paths"]["/triggers/{agent}/{trigger}"]["put"]
    assert put["security"] == [{auth.SCHEME_NAME: []}]
    assert {"401", "403", "409"} <= set(put["responses"])
    read = schema["paths"]["/triggers"]["get"]
    assert read["security"] == [{}, {auth.SCHEME_NAME: []}]  # optional on loopback
    assert "security" not in schema["paths"]["/healthz"]["get"]


def test_tokens_never_reach_the_logs(settings: Settings, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    with serve(settings, "0.0.0.0") as client:
        assert (
            client.get("/api/runs", headers={"Authorization": f"Bearer {TOKEN}x"}).status_code
            == 401
        )
        assert client.get("/api/runs", headers=BEARER).status_code == 200
        assert client.put(WRITE, json={}, headers=BEARER).status_code == 409
        app = client.app
        assert isinstance(app, FastAPI)
        login(app, TOKEN + "-wrong")
        login(app, TOKEN)
    assert caplog.records  # something was logged (startup, requests, the failed login)
    assert TOKEN not in caplog.text


# -- malformed credentials are the client's error, never a 500 (issue 17 item 8) --------------


def raw_call(app: Any, method: str, path: str, headers: list[tuple[bytes, bytes]]) -> int:
    """One request through the ASGI app with header bytes exactly as given (httpx would
    re-encode a non-UTF-8 byte like ``\\xb2``, which then never reaches the guard)."""
    sent: list[Any] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": method,
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "scheme": "http",
        "headers": [(b"host", b"localhost"), *headers],
        "client": ("127.0.0.1", 5000),
        "server": ("127.0.0.1", 80),
    }
    asyncio.run(app(scope, receive, send))
    return int(sent[0]["status"])


@pytest.mark.parametrize(
    ("method", "path", "headers", "status"),
    [
        ("GET", "/api/runs", {"cookie": b"planner_session=\xb2.x"}, 401),
        ("PUT", WRITE, {"cookie": b"planner_session=\xb2.x"}, 401),
        ("GET", "/api/runs", {"cookie": b"planner_session=" + b"5" * 5000 + b".x"}, 401),
        ("GET", "/api/runs", {"cookie": b"planner_session=" + b"9" * 13 + b".x"}, 401),
        ("POST", auth.LOGIN_PATH, {"origin": b"http://["}, 400),
        ("POST", auth.LOGIN_PATH, {"referer": b"http://[::1"}, 400),
        ("POST", auth.LOGIN_PATH, {"origin": b"http://localhost:99999"}, 400),
        ("POST", auth.LOGOUT_PATH, {"referer": b"http://[::1"}, 400),
    ],
)
def test_malformed_cookies_and_origins_are_400_or_401_not_500(
    exposed: TestClient, method: str, path: str, headers: dict[str, bytes], status: int
) -> None:
    sent = [(name.encode(), value) for name, value in headers.items()]
    assert raw_call(exposed.app, method, path, sent) == status


def test_session_values_that_are_not_digits_are_just_invalid() -> None:
    token = auth.ApiToken(TOKEN, "x")
    for value in (
        "\xb2.x",
        "5" * 5000 + ".x",
        "١٢٣.x",
        "-5.x",
        " 5.x",
        "5" * 13 + ".x",
        "\ud800.x",
    ):
        assert not token.session_valid(value, 1767268800.0)
