"""DNS rebinding (issue 17 item 3): the server answers only requests that name it."""

from __future__ import annotations

import logging

import httpx
import pytest
from fastapi.testclient import TestClient

from planner_operator.core.settings import Settings
from planner_operator.server import hosts
from planner_operator.server.app import create_app
from tests.fakes.serving import run_app
from tests.support.webhook_env import ENV, Recorder

READS = ("/api/runs", "/api/triggers", "/api/inbox", "/metrics", "/planner/", "/openapi.json")


@pytest.mark.parametrize(
    ("host", "status"),
    [
        ("localhost", None),
        ("localhost:8000", None),
        ("LOCALHOST.", None),
        ("127.0.0.1:8000", None),
        ("127.8.9.10", None),
        ("[::1]:8000", None),
        ("app.localhost", None),
        ("attacker.example", 421),
        ("attacker.example:8000", 421),
        ("127.0.0.1.nip.io", 421),
        ("0.0.0.0", 421),
        ("", 400),
        ("[", 400),
        ("[::1", 400),
        ("[zz::1]", 400),
        ("a b", 400),
        ("localhost:80:80", 400),
        ("localhost:port", 400),
        ("évil.example", 400),
        ("user@localhost", 400),
    ],
)
def test_default_is_loopback_names_only(host: str, status: int | None) -> None:
    refused = hosts.AllowedHosts.parse([]).refusal(host)
    assert (refused[0] if refused else None) == status, refused


def test_configured_names_and_domains() -> None:
    allowed = hosts.AllowedHosts.parse(["Operator.Example.com", ".corp.example", " "])
    for host in ("operator.example.com:443", "corp.example", "a.b.corp.example", "localhost"):
        assert allowed.refusal(host) is None, host
    for host in ("example.com", "operator.example.com.evil", "xcorp.example"):
        refused = allowed.refusal(host)
        assert refused is not None and refused[0] == 421, host
        assert "PLANNER_ALLOWED_HOSTS" in refused[1] and "operator.example.com" in refused[1]
    assert hosts.AllowedHosts.parse(["*"]).refusal("anything.example") is None


def test_reads_for_a_foreign_host_name_get_421_and_no_data(
    settings: Settings, recorder: Recorder
) -> None:
    app = create_app(settings, ENV, executors=recorder.executors())
    with TestClient(app) as client:
        for path in READS:
            assert client.get(path).status_code == 200, path
            foreign = client.get(path, headers={"host": "rebound.attacker.example"})
            assert foreign.status_code == 421, path
            assert "rebound.attacker.example" in foreign.json()["detail"]
        bad = client.post("/webhooks/composio", content=b"{}", headers={"host": "[::1"})
        assert bad.status_code == 400


def test_allowed_hosts_variable_admits_the_public_name(settings: Settings) -> None:
    env = {**ENV, "PLANNER_ALLOWED_HOSTS": "operator.example.com, .internal.example"}
    with TestClient(create_app(settings, env, executors=Recorder().executors())) as client:
        for host in ("operator.example.com", "hooks.internal.example:8443", "127.0.0.1"):
            assert client.get("/healthz", headers={"host": host}).status_code == 200, host
        assert client.get("/healthz", headers={"host": "other.example"}).status_code == 421


def test_a_rebinding_page_cannot_read_a_loopback_server(settings: Settings) -> None:
    """Over a real socket, as the browser would send it: right address, attacker's name."""
    app = create_app(settings, ENV, executors=Recorder().executors())
    with run_app(app, lifespan="on") as url:
        ours = httpx.get(f"{url}/api/runs", timeout=10)
        theirs = httpx.get(f"{url}/api/runs", headers={"host": "evil.example:80"}, timeout=10)
    assert ours.status_code == 200
    assert theirs.status_code == 421 and "runs" not in theirs.text


def test_an_exposed_bind_without_allowed_hosts_says_so_at_start(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    create_app(settings, ENV, executors=Recorder().executors(), bind_host="0.0.0.0")
    assert "PLANNER_ALLOWED_HOSTS is not set" in caplog.text
