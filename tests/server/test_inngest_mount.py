"""The served Inngest endpoint: stale signatures refused before the SDK, its own syncs signed,
failed syncs retried with capped backoff (issue 16, items 7 and 8)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from planner_operator.backends.inngest import sdk
from planner_operator.backends.inngest.asgi import SIGNATURE_MAX_AGE, FreshSignatures
from planner_operator.backends.inngest.sdk import InngestConfig
from planner_operator.core.clock import ManualClock
from planner_operator.core.settings import Settings
from planner_operator.reconcile.engine import SourceSpec, reconcile
from planner_operator.server import inngest_mount
from planner_operator.server.inngest_mount import InngestMount
from planner_operator.state.runs import RunStore
from planner_operator.state.served import ServedJobs
from tests.fakes.inngest_server import (
    CRON_EVENT,
    TEST_SIGNING_KEY,
    FakeInngest,
    canonical_json,
    sign_request_body,
)
from tests.support.builders import job_spec
from tests.support.inngest_serve import inngest_env, operator_server

APP = "planner-operator"
FN = f"{APP}-a--daily"
DAILY = (
    "name: A\nplanner:\n  jobs:\n    - name: daily\n      schedule: '0 9 * * *'\n"
    "      action: {chat: {template: hi}}\n"
)


def invocation(run_id: str) -> dict[str, Any]:
    """An executor call as the server makes it (tests/fakes/inngest_server.py ``_call``)."""
    slot = "2026-11-23T09:00:00Z"
    event = {
        "id": slot,
        "name": CRON_EVENT,
        "data": {"cron": "TZ=UTC 0 9 * * *", "scheduledAt": slot, "fireAt": slot},
        "ts": int(datetime(2026, 11, 23, 9, tzinfo=UTC).timestamp()) * 1000,
    }
    return {
        "event": event,
        "events": [event],
        "steps": {},
        "use_api": False,
        "version": 1,
        "ctx": {
            "run_id": run_id,
            "attempt": 0,
            "disable_immediate_execution": False,
            "use_api": False,
            "fn_id": "00000000-0000-0000-0000-000000000000",
            "env": "production",
            "step_id": "step",
            "max_attempts": 4,
            "stack": {"stack": [], "current": 0},
        },
    }


@pytest.fixture
def production(tmp_path: Path) -> tuple[Path, Settings]:
    agents = tmp_path / "agents"
    agents.mkdir()
    (agents / "a.yaml").write_text(DAILY)
    return agents, Settings.resolve(state_dir=tmp_path / "state", env={})


def test_a_signature_a_day_old_is_refused_before_the_sdk(
    production: tuple[Path, Settings], monkeypatch: pytest.MonkeyPatch
) -> None:
    agents, settings = production
    with FakeInngest(signing_key=TEST_SIGNING_KEY) as fake:
        env = inngest_env(fake, monkeypatch)
        with operator_server(settings, env) as origin:
            monkeypatch.setenv("INNGEST_SERVE_ORIGIN", origin)
            outcome = reconcile(SourceSpec(path=agents), settings)
            assert outcome.applied is not None and outcome.applied.ok, outcome.applied
            url = f"{origin}/api/inngest?fnId={FN}&stepId=step"

            def post(run_id: str, signed_at: int) -> httpx.Response:
                body = canonical_json(invocation(run_id))
                signature = sign_request_body(body, TEST_SIGNING_KEY, signed_at)
                headers = {"content-type": "application/json", "x-inngest-signature": signature}
                return httpx.post(url, content=body, headers=headers, timeout=30)

            stale = post("run-replayed", int(time.time()) - 86_400)  # a valid HMAC, a day old
            assert stale.status_code == 401
            assert stale.json()["code"] == "signature_expired"
            message = stale.json()["message"]
            assert message.startswith("x-inngest-signature is 8640") and "s old" in message
            assert post("run-future", int(time.time()) + 3_600).status_code == 401
            fresh = post("run-fresh", int(time.time()))
            assert fresh.status_code in (200, 206), fresh.text  # the SDK ran it
    with RunStore(settings.runs_db) as runs:
        assert [r.run_id for r in runs.list(key="a/jobs/daily")] == ["run-fresh"]


async def _ok(scope: Any, receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 204, "headers": []})
    await send({"type": "http.response.body", "body": b""})


@pytest.mark.parametrize(("age", "status"), [(0, 204), (300, 204), (301, 401), (-301, 401)])
def test_signature_age_window_is_five_minutes_either_way(age: int, status: int) -> None:
    clock = ManualClock(datetime(2026, 11, 23, 9, tzinfo=UTC))
    guarded = FreshSignatures(_ok, clock)
    t = int(clock.now().timestamp()) - age

    async def call(headers: dict[str, str]) -> int:
        transport = httpx.ASGITransport(app=guarded)
        async with httpx.AsyncClient(transport=transport, base_url="http://x") as client:
            return (await client.post("/api/inngest", headers=headers)).status_code

    assert SIGNATURE_MAX_AGE == 300  # inngestgo's signatureTimeDeltaMax
    assert asyncio.run(call({"x-inngest-signature": f"t={t}&s={'0' * 64}"})) == status
    assert asyncio.run(call({"X-Inngest-Signature": f"t={t}&s={'0' * 64}"})) == status
    assert asyncio.run(call({})) == 204  # no signature: the SDK's to judge
    assert asyncio.run(call({"x-inngest-signature": "garbage"})) == 204  # malformed: the SDK's


def test_own_syncs_are_signed_so_unauthed_sync_off_still_syncs(
    production: tuple[Path, Settings], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``INNGEST_ENABLE_UNAUTHED_SYNC=false`` made the SDK refuse the product's own PUT."""
    agents, settings = production
    with FakeInngest(signing_key=TEST_SIGNING_KEY) as fake:
        env = inngest_env(fake, monkeypatch)
        monkeypatch.setenv("INNGEST_ENABLE_UNAUTHED_SYNC", "false")
        with operator_server(settings, {**env, "INNGEST_ENABLE_UNAUTHED_SYNC": "false"}) as origin:
            monkeypatch.setenv("INNGEST_SERVE_ORIGIN", origin)
            health = httpx.get(f"{origin}/healthz").json()["inngest"]
            assert health["last_sync_ok"] is True  # the start-up sync (in-process, signed)
            outcome = reconcile(SourceSpec(path=agents), settings)  # the applier's PUT, signed
            assert outcome.applied is not None and outcome.applied.ok, outcome.applied
            assert [f["id"] for f in fake.functions(APP)] == [FN]
            registers = len(fake.registered_urls)
            stranger = httpx.put(f"{origin}/api/inngest", timeout=30)  # unsigned: refused
            assert stranger.status_code == 401
            assert len(fake.registered_urls) == registers
            assert httpx.get(f"{origin}/healthz").json()["inngest"]["last_sync_ok"] is True


def test_sync_signature_is_what_the_sdk_accepts() -> None:
    from inngest._internal import net, server_lib

    at = 1_790_000_000
    header = sdk.signature(TEST_SIGNING_KEY, b"", at)
    assert header == sign_request_body(b"", TEST_SIGNING_KEY, at)
    checked = net.validate_request_sig(
        body=b"",
        headers={"x-inngest-signature": header},
        mode=server_lib.ServerKind.CLOUD,
        signing_key=TEST_SIGNING_KEY,
        signing_key_fallback=None,
    )
    assert checked == TEST_SIGNING_KEY


async def _no_runs(key: str, spec: Any, call: Any) -> Any:
    raise AssertionError("not invoked")


@pytest.fixture
def table(tmp_path: Path) -> Iterator[ServedJobs]:
    with ServedJobs(tmp_path / "state.db") as jobs:
        jobs.put("a/jobs/daily", sdk.function_id("a/jobs/daily"), job_spec("0 9 * * *"))
        yield jobs


def registers(fake: FakeInngest) -> int:
    return sum(1 for request in fake.requests if request == ("POST", "/fn/register"))


def test_failed_syncs_back_off_exponentially_and_a_new_version_goes_at_once(
    table: ServedJobs,
) -> None:
    clock = ManualClock()
    with FakeInngest() as fake:
        fake.faults.register_500 = 1_000
        config = InngestConfig.from_env({"INNGEST_DEV": fake.base_url})
        mount = InngestMount(config, table, _no_runs, clock=clock, jitter=lambda: 1.0)

        async def run_for(seconds: int) -> list[int]:
            attempts = []
            for second in range(seconds):
                if await mount.tick() is not None:
                    attempts.append(second)
                clock.advance(1)
            return attempts

        # retries 2, 4, 8, 16 s apart ... (jitter at its top), not on every tick
        assert asyncio.run(run_for(62)) == [0, 2, 6, 14, 30]
        assert mount.failures == 5 and mount.status()["sync_failures"] == 5
        assert registers(fake) == 5
        # a new applied version is tried at once, starting the backoff afresh
        table.put("a/jobs/other", sdk.function_id("a/jobs/other"), job_spec("0 10 * * *"))
        assert asyncio.run(run_for(4)) == [0, 2]
        # the cap: never more than five minutes between tries
        for _ in range(12):
            mount._failed(table.versions()[0])
        assert mount.retry_at is not None
        assert mount.retry_at - clock.monotonic() == inngest_mount.RETRY_MAX
        fake.faults.register_500 = 0
        clock.advance(inngest_mount.RETRY_MAX)
        result = asyncio.run(mount.tick())
        assert result is not None and result.ok
        assert mount.status()["sync_failures"] == 0
        assert mount.status()["last_sync_ok"] is True
        assert asyncio.run(mount.tick()) is None  # synced: nothing to do


def test_jitter_spreads_retries_between_half_and_full_delay(table: ServedJobs) -> None:
    clock = ManualClock()
    config = InngestConfig.from_env({"INNGEST_DEV": "http://127.0.0.1:9"})
    low = InngestMount(config, table, _no_runs, clock=clock, jitter=lambda: 0.0)
    low._failed(1)
    low._failed(1)
    assert low.retry_at == clock.monotonic() + 2.0  # half of the 4 s second delay


def test_watch_does_not_hammer_a_failing_inngest(table: ServedJobs) -> None:
    """The issue: a failed sync was retried on every 2 s tick, for ever."""
    with FakeInngest() as fake:
        fake.faults.register_500 = 1_000
        config = InngestConfig.from_env({"INNGEST_DEV": fake.base_url})
        mount = InngestMount(config, table, _no_runs, clock=ManualClock())

        async def watch_briefly() -> None:
            task = asyncio.create_task(mount.watch(0.01))
            while mount.failures == 0:  # the first sync takes a moment (the SDK's own work)
                await asyncio.sleep(0.01)
            await asyncio.sleep(0.5)  # some fifty ticks
            task.cancel()

        asyncio.run(watch_briefly())
        assert registers(fake) == 1  # the clock did not move: no retry is due yet


def test_read_back_problems_make_last_sync_not_ok(table: ServedJobs) -> None:
    with FakeInngest() as fake:
        config = InngestConfig.from_env({"INNGEST_DEV": fake.base_url})
        mount = InngestMount(config, table, _no_runs, clock=ManualClock())
        result = asyncio.run(mount.refresh(force=True))
        assert result is not None and result.ok
        assert mount.status()["last_sync_ok"] is True
        fake.faults.list_without_crons = True  # accepted, but the crons are not there
        asyncio.run(mount.verify())
        assert mount.status()["last_sync_ok"] is False
        assert mount.status()["registered_url_ok"] is True


def test_run_on_inngest_applies_through_its_own_endpoint(
    production: tuple[Path, Settings], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`run` (watch + apply + serve in one process) asks its own endpoint to sync, over HTTP at
    the serve URL, even though its first apply starts while the server is still starting."""
    import socket
    import threading

    import uvicorn

    from planner_operator.server import operator

    agents, settings = production
    with FakeInngest() as fake:
        env = inngest_env(fake, monkeypatch)
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        origin = f"http://127.0.0.1:{sock.getsockname()[1]}"
        monkeypatch.setenv("INNGEST_SERVE_ORIGIN", origin)
        app = operator.build(
            settings, {**env, "INNGEST_SERVE_ORIGIN": origin}, watch=operator.WatchSpec(agents)
        )
        server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
        thread.start()
        try:
            deadline = time.monotonic() + 30
            while FN not in {f["id"] for f in fake.functions(APP)}:
                assert thread.is_alive() and time.monotonic() < deadline, fake.registered_urls
                time.sleep(0.05)
            assert {url for _, url in fake.registered_urls} == {f"{origin}/api/inngest"}
        finally:
            server.should_exit = True
            thread.join(timeout=30)
            sock.close()
