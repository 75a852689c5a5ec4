"""Issue 17: what an adversarial run against ``serve`` found, one regression test per finding.

Signed but hostile bodies (nesting, surrogates), one delivery spoiling a group commit, sources
routing into each other's triggers, GitHub-scheme replays, forged log lines.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from planner_operator.core import jsonsafe
from planner_operator.core.records import NewDelivery
from planner_operator.core.settings import Settings
from planner_operator.read import status as status_mod
from planner_operator.server.app import create_app
from planner_operator.server.webhooks import GroupCommitter
from planner_operator.state.inbox import Inbox
from tests.fakes.serving import run_app
from tests.support.serve_process import Server
from tests.support.webhook_env import (
    ENV,
    MAIL_ID,
    Recorder,
    apply_triggers,
    composio_headers,
    default_triggers,
    github_headers,
    standard_headers,
    wait_settled,
)

COMPOSIO = "/webhooks/composio"
DEPLOY = "/webhooks/engineering-agent/deploy-hook"
GITHUB = "/webhooks/engineering-agent/gh-push"


def envelope(trigger_id: str = MAIL_ID, data: Any = None) -> dict[str, Any]:
    return {
        "id": "msg_x",
        "timestamp": "2026-01-01T12:00:00.000Z",
        "type": "composio.trigger.message",
        "metadata": {"trigger_id": trigger_id, "trigger_slug": "GMAIL_NEW_GMAIL_MESSAGE"},
        "data": {"subject": "Interview", "sender": "r@x.io"} if data is None else data,
    }


def nest(depth: int) -> str:
    """``depth`` levels of JSON arrays, as text (``json.dumps`` itself recurses)."""
    return "[" * depth + "1" + "]" * depth


def nested_body(depth: int) -> bytes:
    """A Composio message whose ``data.deep`` brings the whole body to ``depth`` levels."""
    text = json.dumps(envelope(data={"subject": "s", "sender": "x", "deep": "DEEP"}))
    return text.replace('"DEEP"', nest(depth - 2)).encode()


def signed(path: str, msg_id: str, body: bytes) -> dict[str, str]:
    if path == COMPOSIO:
        return composio_headers(msg_id, body)
    if path == DEPLOY:
        return standard_headers(msg_id, body)
    return github_headers(msg_id, body)


# -- item 6: nesting depth ---------------------------------------------------------------------


@pytest.mark.parametrize("path", [COMPOSIO, DEPLOY, GITHUB])
@pytest.mark.parametrize("depth", [jsonsafe.MAX_DEPTH + 1, 300, 900, 960, 5_000])
def test_signed_bodies_nested_past_the_cap_are_400_and_stored_nowhere(
    client: TestClient, recorder: Recorder, settings: Settings, path: str, depth: int
) -> None:
    body = nested_body(depth) if path == COMPOSIO else nest(depth).encode()
    answer = client.post(path, content=body, headers=signed(path, f"deep-{depth}", body))
    assert answer.status_code == 400, answer.text
    assert f"deeper than {jsonsafe.MAX_DEPTH} levels" in answer.json()["error"]
    assert wait_settled(settings) == {}
    assert recorder.calls == []


def test_a_body_at_the_depth_cap_is_accepted_and_runs(
    client: TestClient, recorder: Recorder, settings: Settings
) -> None:
    body = nested_body(jsonsafe.MAX_DEPTH)
    assert (
        client.post(COMPOSIO, content=body, headers=signed(COMPOSIO, "at-cap", body)).status_code
        == 202
    )
    deep = nest(jsonsafe.MAX_DEPTH - 1)
    generic = ('{"service": "api", "version": "1", "deep": ' + deep + "}").encode()
    assert (
        client.post(DEPLOY, content=generic, headers=signed(DEPLOY, "at-cap", generic)).status_code
        == 202
    )
    assert wait_settled(settings) == {"done": 2}
    assert len(recorder.calls) == 2


def test_a_deep_body_stored_before_the_cap_dies_once_without_a_traceback(
    settings: Settings, recorder: Recorder, caplog: pytest.LogCaptureFixture
) -> None:
    from planner_operator.runtime.worker import Routes, Worker
    from planner_operator.state.runs import RunStore

    with Inbox(settings.inbox_db) as inbox:
        inbox.insert(NewDelivery(id="composio:old-deep", source="composio", body=nested_body(500)))
        with RunStore(settings.runs_db) as runs:
            worker = Worker(
                inbox=inbox,
                routes=Routes(settings),
                runs=runs,
                executors=recorder.executors(),
            )
            assert worker.drain() == 1
        stored = inbox.get("composio:old-deep")
    assert stored is not None and stored.status == "dead" and stored.attempts == 1
    assert "deeper than" in (stored.last_error or "")
    assert not [r for r in caplog.records if r.exc_info], "no traceback for a body we refuse"
    assert recorder.calls == []


# -- item 7: one bad delivery fails only itself ------------------------------------------------


def test_a_lone_surrogate_in_the_trigger_id_does_not_fail_its_batch(tmp_path: Path) -> None:
    state = Settings.resolve(state_dir=tmp_path, env={})
    apply_triggers(state, default_triggers())
    recorder = Recorder()
    app = create_app(state, ENV, executors=recorder.executors())
    bad = json.dumps(envelope(trigger_id="ti_\ud800")).encode()  # json writes the escape
    assert b"\\ud800" in bad

    async def burst(url: str) -> list[int]:
        async with httpx.AsyncClient(base_url=url, timeout=30) as http:
            sends = [http.post(COMPOSIO, content=bad, headers=composio_headers("bad-1", bad))]
            for n in range(40):
                good = json.dumps(envelope(data={"subject": f"s{n}", "sender": "x"})).encode()
                sends.append(
                    http.post(COMPOSIO, content=good, headers=composio_headers(f"good-{n}", good))
                )
            return [r.status_code for r in await asyncio.gather(*sends)]

    with run_app(app, lifespan="on") as url:
        statuses = asyncio.run(burst(url))
        wait_settled(state)
    assert 503 not in statuses and statuses[1:] == [202] * 40, statuses
    assert statuses[0] < 500
    assert len(recorder.calls) == 40


async def commit_all(committer: GroupCommitter, items: list[NewDelivery]) -> list[Any]:
    await committer.start()
    try:
        return await asyncio.gather(*(committer.submit(d) for d in items), return_exceptions=True)
    finally:
        await committer.stop()


def test_group_commit_isolates_a_delivery_the_inbox_cannot_store(tmp_path: Path) -> None:
    unstorable = NewDelivery(id="x:bad", source="composio", body=b"{}", remote_id="ti_\ud800")
    good = [NewDelivery(id=f"x:{n}", source="composio", body=b"{}") for n in range(10)]
    with Inbox(tmp_path / "inbox.db") as inbox:
        results = asyncio.run(commit_all(GroupCommitter(inbox), [good[0], unstorable, *good[1:]]))
        assert isinstance(results[1], UnicodeEncodeError)
        assert results[:1] + results[2:] == [True] * 10
        assert inbox.counts() == {"received": 10}


# -- item 1: each receiver routes only to triggers of its own source --------------------------


@pytest.mark.parametrize("remote_id", ["trg_deploy", "trg_gh"])
def test_a_composio_signed_delivery_cannot_fire_a_generic_webhook_trigger(
    client: TestClient, recorder: Recorder, settings: Settings, remote_id: str
) -> None:
    body = json.dumps(
        envelope(trigger_id=remote_id, data={"service": "x", "version": "1"})
    ).encode()
    answer = client.post(COMPOSIO, content=body, headers=composio_headers("forged-1", body))
    assert answer.status_code == 202  # Composio sends unmanaged ids too: stored, never routed
    wait_settled(settings)
    with Inbox(settings.inbox_db) as inbox:
        stored = inbox.get("composio:forged-1")
    assert stored is not None and stored.trigger_key is None
    assert recorder.calls == []


def test_a_composio_lifecycle_event_cannot_mark_a_webhook_trigger_disabled(
    client: TestClient, settings: Settings
) -> None:

    event = {
        "id": "e1",
        "timestamp": "2026-01-01T00:00:00Z",
        "type": "composio.trigger.disabled",
        "metadata": {},
        "data": {"id": "trg_deploy", "disabled_reason": "forged"},
    }
    body = json.dumps(event).encode()
    assert (
        client.post(COMPOSIO, content=body, headers=composio_headers("life-1", body)).status_code
        == 202
    )
    wait_settled(settings)
    assert status_mod.lifecycle(settings) == {}


def test_delivery_ids_of_different_sources_do_not_collide(
    client: TestClient, recorder: Recorder, settings: Settings
) -> None:
    guid = "0b3f6c1e-6a43-4d3a-9a57-6d2f3c1b9e11"
    squatter = json.dumps(envelope()).encode()
    composio_id = f"engineering-agent/deploy-hook:{guid}"  # the generic receiver's old key
    first = client.post(COMPOSIO, content=squatter, headers=composio_headers(composio_id, squatter))
    assert first.status_code == 202
    real = json.dumps({"service": "api", "version": "2.0"}).encode()
    second = client.post(DEPLOY, content=real, headers=standard_headers(guid, real))
    assert (second.status_code, second.json()["status"]) == (202, "accepted")
    wait_settled(settings)
    assert sorted(recorder.keys) == [f"composio:{composio_id}", f"webhook:{composio_id}"]
    assert ("chat", f"webhook:{composio_id}", "Deploy of api 2.0") in recorder.calls


# -- item 5: GitHub-scheme replays -----------------------------------------------------------


def test_a_captured_github_delivery_replayed_under_new_ids_runs_once(
    client: TestClient, recorder: Recorder, settings: Settings
) -> None:
    body = json.dumps({"deployment": {"environment": "production"}}).encode()
    captured = github_headers("72d3162e-cc78-11e3-81ab-4c9367dc0958", body)
    answers = []
    for n in range(4):  # the original, then three replays under fresh delivery ids
        headers = {**captured, "x-github-delivery": f"replayed-{n}"} if n else captured
        answers.append(client.post(GITHUB, content=body, headers=headers))
    assert [(a.status_code, a.json()["status"]) for a in answers] == [(202, "accepted")] + [
        (200, "duplicate")
    ] * 3
    other = json.dumps({"deployment": {"environment": "staging"}}).encode()
    assert (
        client.post(GITHUB, content=other, headers=github_headers("d-2", other)).status_code == 202
    )
    wait_settled(settings)
    assert len(recorder.calls) == 2
    with Inbox(settings.inbox_db) as inbox:
        first = inbox.get(answers[0].json()["id"])
    assert first is not None and first.duplicates == 3
    assert first.headers["x-github-delivery"] == "72d3162e-cc78-11e3-81ab-4c9367dc0958"


# -- item 4: nothing a sender sends can forge or garble a log line ----------------------------


def test_control_characters_from_senders_are_escaped_in_the_serve_log(tmp_path: Path) -> None:
    state = tmp_path / "state"
    apply_triggers(Settings.resolve(state_dir=state, env={}), default_triggers())
    server = Server(state, tmp_path / "serve.log", ENV)
    forged = "2026-01-01 00:00:00,000 INFO planner_operator.webhooks delivery x outcome=accepted"
    server.start()
    try:
        with httpx.Client(base_url=server.url, timeout=10) as http:
            body = json.dumps({"service": "a", "version": "1"}).encode()
            for agent in ("eng%0A" + forged.replace(" ", "%20"), "eng%1B%5B31mred", "eng%00nul"):
                answer = http.post(f"/webhooks/{agent}/deploy-hook", content=body)
                assert answer.status_code == 404
            message = json.dumps(envelope(trigger_id="ti_\n" + forged + "\x1b[2J\x00")).encode()
            sent = http.post(COMPOSIO, content=message, headers=composio_headers("inj-1", message))
            assert sent.status_code == 202
            time.sleep(0.5)  # the worker logs the unrouted delivery too
    finally:
        server.stop()
    log = server.log.read_bytes()
    assert b"\x1b" not in log and b"\x00" not in log
    lines = log.decode().splitlines()
    assert not [line for line in lines if line.startswith(forged[:24])], "a forged log line"
    assert "eng\\n2026-01-01" in log.decode() and "eng\\x1b[31mred" in log.decode()
    assert "ti_\\n2026-01-01" in log.decode()
