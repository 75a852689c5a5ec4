"""The fake Inngest server, driven end to end by the real SDK (inngest 0.5.19).

Each test serves real ``inngest.fast_api.serve`` functions with uvicorn, syncs them with
``PUT /api/inngest`` (the SDK then calls the fake's ``/fn/register``) and lets the fake execute
them over HTTP. If the fake drifted from the SDK's wire format these tests would fail in the
SDK, which is the point: the product's Inngest tests can trust what passes here.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import fastapi
import httpx
import inngest
import inngest.fast_api
import pytest
from inngest._internal import errors as sdk_errors
from inngest._internal import net as sdk_net
from inngest._internal import server_lib as sdk_server

from tests.fakes.inngest_server import (
    CRON_EVENT,
    TEST_SIGNING_KEY,
    CronNotScheduledError,
    FakeInngest,
    canonical_json,
    hash_signing_key,
    hash_step_id,
    sign_request_body,
)
from tests.fakes.serving import SERVE_PATH, put_sync, run_app

APP = "planner"
CRON = "TZ=Europe/Berlin 0 9 * * 1"
MONDAY_9_BERLIN = datetime(2026, 3, 2, 9, 0, tzinfo=ZoneInfo("Europe/Berlin"))
OTHER_KEY = "signkey-test-" + "fe" * 32

Fns = Callable[[inngest.Inngest], list[inngest.Function[Any]]]


ClientFactory = Callable[..., inngest.Inngest]


@pytest.fixture
def make_client() -> Iterator[ClientFactory]:
    """Build SDK clients against a fake; their pooled httpx connections are closed afterwards
    (the SDK never closes its own client, which ``filterwarnings = error`` would flag)."""
    made: list[inngest.Inngest] = []

    def make(
        fake: FakeInngest, *, signing_key: str | None = None, app_version: str | None = None
    ) -> inngest.Inngest:
        client = inngest.Inngest(
            app_id=APP,
            app_version=app_version,
            is_production=signing_key is not None,
            signing_key=signing_key,
            event_key=fake.event_key if signing_key else None,
            api_base_url=fake.base_url,
            event_api_base_url=fake.base_url,
            logger=logging.getLogger("tests.fakes.sdk"),
        )
        made.append(client)
        return client

    yield make
    for client in made:
        client._http_client._http_client_sync.close()


@contextmanager
def served(client: inngest.Inngest, functions: list[inngest.Function[Any]]) -> Iterator[str]:
    app = fastapi.FastAPI()
    inngest.fast_api.serve(app, client, functions, serve_path=SERVE_PATH)
    with run_app(app) as url:
        yield url


def cron_fn(
    client: inngest.Inngest,
    fn_id: str,
    body: Callable[[inngest.Context], Any],
    *,
    retries: int | None = None,
    cron: str = CRON,
) -> inngest.Function[Any]:
    async def handler(ctx: inngest.Context) -> Any:
        return await body(ctx)

    return client.create_function(
        fn_id=fn_id, name=fn_id.title(), trigger=inngest.TriggerCron(cron=cron), retries=retries
    )(handler)


@pytest.fixture
def calls() -> Counter[str]:
    return Counter()


def report_fn(client: inngest.Inngest, calls: Counter[str]) -> inngest.Function[Any]:
    """Three steps, one id repeated: the memo keys must be sha1("fetch"), sha1("fetch:1"), ..."""

    async def body(ctx: inngest.Context) -> Any:
        async def fetch() -> int:
            calls["fetch"] += 1
            return 3

        async def summarize() -> str:
            calls["summarize"] += 1
            return "ok"

        first = await ctx.step.run("fetch", fetch)
        second = await ctx.step.run("fetch", fetch)
        summary = await ctx.step.run("summarize", summarize)
        calls["event:" + ctx.event.name] += 1
        return {"rows": first + second, "summary": summary, "cron": ctx.event.data["cron"]}

    return cron_fn(client, "nightly-report", body, retries=1)


def list_functions(fake: FakeInngest, bearer: str | None = None) -> httpx.Response:
    headers = {"authorization": f"Bearer {bearer}"} if bearer else {}
    return httpx.get(f"{fake.base_url}/v1/apps/{APP}/functions", headers=headers)


# -- sync --------------------------------------------------------------------------------------


def test_sync_lists_functions_with_tz_crons(
    fake_inngest: FakeInngest, calls: Counter[str], make_client: ClientFactory
) -> None:
    client = make_client(fake_inngest)
    with served(client, [report_fn(client, calls)]) as url:
        res = put_sync(url, deploy_id="deploy-1")
    assert res.status_code == 200
    assert res.headers["x-inngest-sync-kind"] == "out_of_band"
    body = res.json()
    assert body["ok"] is True
    assert body["modified"] is True
    assert body["app_id"] == fake_inngest.apps[APP].internal_id
    assert body["sync_id"] == fake_inngest.apps[APP].sync_ids[-1]
    app = fake_inngest.apps[APP]
    assert app.url == f"{url}{SERVE_PATH}"
    assert app.last_deploy_id == "deploy-1"
    assert ("POST", "/fn/register") in fake_inngest.requests

    listed = list_functions(fake_inngest).json()
    assert listed == fake_inngest.functions(APP)
    (fn,) = listed
    assert fn["id"] == "planner-nightly-report"
    assert fn["name"] == "Nightly-Report"
    assert fn["app_id"] == app.internal_id
    assert fn["archived_at"] == "0001-01-01T00:00:00Z"
    assert fn["config"]["slug"] == "planner-nightly-report"
    assert fn["config"]["triggers"] == [{"cron": CRON}]
    [step] = fn["config"]["steps"]  # the server's format: an array, the runtime URL as uri
    assert step["uri"] == f"{url}{SERVE_PATH}?fnId=planner-nightly-report&stepId=step"
    assert step["retries"] == 1
    assert fn["config"]["fv"] == 1


def test_repoint_moves_the_read_back_url_and_a_sync_from_the_app_moves_it_back(
    fake_inngest: FakeInngest, calls: Counter[str], make_client: ClientFactory
) -> None:
    client = make_client(fake_inngest)
    with served(client, [report_fn(client, calls)]) as url:
        put_sync(url)
        fake_inngest.repoint(APP, "http://127.0.0.1:8000/api/inngest")  # a sync from elsewhere
        [step] = list_functions(fake_inngest).json()[0]["config"]["steps"]
        assert step["uri"] == (
            "http://127.0.0.1:8000/api/inngest?fnId=planner-nightly-report&stepId=step"
        )
        assert put_sync(url).json()["modified"] is True  # the app's own sync is a new checksum
        [step] = list_functions(fake_inngest).json()[0]["config"]["steps"]
        assert step["uri"].startswith(f"{url}{SERVE_PATH}?")
    assert [u for _, u in fake_inngest.registered_urls] == [f"{url}{SERVE_PATH}"] * 2


def test_read_back_html_fault_answers_a_page_not_json(fake_inngest: FakeInngest) -> None:
    fake_inngest.faults.read_back_html = True
    res = list_functions(fake_inngest)
    assert res.status_code == 200 and res.headers["content-type"] == "text/html"
    assert res.text.startswith("<html>")


def test_same_sync_twice_is_unmodified(
    fake_inngest: FakeInngest, calls: Counter[str], make_client: ClientFactory
) -> None:
    client = make_client(fake_inngest)
    with served(client, [report_fn(client, calls)]) as url:
        first = put_sync(url).json()
        second = put_sync(url, deploy_id="another-deploy").json()  # deployId is not checksummed
    assert first["modified"] is True
    app = fake_inngest.apps[APP]
    assert second == {
        "ok": True,
        "modified": False,
        "app_id": app.internal_id,
        "sync_id": app.sync_ids[-1],
    }
    assert (app.sync_count, app.modified_count, app.last_deploy_id) == (2, 1, None)


def test_sync_without_a_function_archives_it(
    fake_inngest: FakeInngest, calls: Counter[str], make_client: ClientFactory
) -> None:
    client = make_client(fake_inngest)
    noop = cron_fn(client, "noop", lambda ctx: _const(None))
    with served(client, [report_fn(client, calls), noop]) as url:
        put_sync(url)
    assert [f["id"] for f in fake_inngest.functions(APP)] == [
        "planner-nightly-report",
        "planner-noop",
    ]
    with served(client, [report_fn(client, calls)]) as url:
        assert put_sync(url).json()["modified"] is True
    assert [f["id"] for f in list_functions(fake_inngest).json()] == ["planner-nightly-report"]
    archived = fake_inngest.apps[APP].archived["planner-noop"]
    assert archived.archived_at is not None
    with pytest.raises(LookupError):
        fake_inngest.fire_cron("planner-noop", MONDAY_9_BERLIN)


def test_register_rejects_garbage(fake_inngest: FakeInngest) -> None:
    register = f"{fake_inngest.base_url}/fn/register"
    assert httpx.post(register, content=b"not json").status_code == 400
    res = httpx.post(register, json={"appname": APP, "url": "http://x/api/inngest"})
    assert res.status_code == 400
    assert res.json() == {"error": "functions must be a list"}
    bad_cron = {
        "appname": APP,
        "url": "http://x/api/inngest",
        "functions": [
            {
                "id": "planner-a",
                "triggers": [{"cron": "TZ=Mars/Olympus 0 9 * * 1"}],
                "steps": {"step": {"id": "step", "runtime": {"type": "http", "url": "http://x"}}},
            }
        ],
    }
    assert "isn't a valid cron schedule" in httpx.post(register, json=bad_cron).json()["error"]
    assert APP not in fake_inngest.apps


def test_register_400_reaches_the_caller_as_200_with_error(
    fake_inngest: FakeInngest, calls: Counter[str], make_client: ClientFactory
) -> None:
    fake_inngest.faults.register_400 = 1
    client = make_client(fake_inngest)
    with served(client, [report_fn(client, calls)]) as url:
        res = put_sync(url)
        assert res.status_code == 200  # SDK quirk: handler.py Syncer._parse_out_of_band_response
        assert res.json() == {"error": "fake inngest: injected bad request"}
        assert APP not in fake_inngest.apps
        assert put_sync(url).json()["modified"] is True  # the knob was consumed


def test_register_500_surfaces_the_error(
    fake_inngest: FakeInngest, calls: Counter[str], make_client: ClientFactory
) -> None:
    fake_inngest.faults.register_500 = 2
    client = make_client(fake_inngest)
    with served(client, [report_fn(client, calls)]) as url:
        for _ in range(2):
            res = put_sync(url)
            assert "ok" not in res.json()
            assert res.json()["error"] == "fake inngest: injected internal error"
        assert put_sync(url).json()["ok"] is True
    assert fake_inngest.requests.count(("POST", "/fn/register")) == 3


# -- execution ---------------------------------------------------------------------------------


def test_fire_cron_memoises_steps_across_206_round_trips(
    fake_inngest: FakeInngest, calls: Counter[str], make_client: ClientFactory
) -> None:
    client = make_client(fake_inngest)
    with served(client, [report_fn(client, calls)]) as url:
        put_sync(url)
        run = fake_inngest.fire_cron("planner-nightly-report", MONDAY_9_BERLIN)
    assert run.status == "completed"
    assert run.output == {"rows": 6, "summary": "ok", "cron": CRON}
    assert calls == {"fetch": 2, "summarize": 1, f"event:{CRON_EVENT}": 1}  # each step ran once
    assert run.steps == ["fetch", "fetch", "summarize"]
    assert list(run.memos) == [
        hash_step_id("fetch"),
        hash_step_id("fetch", 1),
        hash_step_id("summarize"),
    ]
    assert [c.status_code for c in run.calls] == [206, 206, 206, 200]
    assert [c.signature_valid for c in run.calls] == [None] * 4  # dev mode signs nothing
    assert run.event["name"] == CRON_EVENT
    slot = "2026-03-02T08:00:00Z"  # the cron service's event: id = the scheduled time
    assert run.event["id"] == slot
    assert run.event["data"] == {"cron": CRON, "scheduledAt": slot, "fireAt": slot}
    assert run.event["ts"] == int(MONDAY_9_BERLIN.timestamp()) * 1000
    assert run.event["ts"] == int(MONDAY_9_BERLIN.timestamp() * 1000)
    assert fake_inngest.runs == [run]


def test_fire_cron_checks_the_slot(
    fake_inngest: FakeInngest, calls: Counter[str], make_client: ClientFactory
) -> None:
    client = make_client(fake_inngest)
    with served(client, [report_fn(client, calls)]) as url:
        put_sync(url)
        with pytest.raises(ValueError, match="not a slot"):
            fake_inngest.fire_cron("planner-nightly-report", MONDAY_9_BERLIN.replace(hour=10))
        with pytest.raises(ValueError, match="aware"):
            fake_inngest.fire_cron("planner-nightly-report", datetime(2026, 3, 2, 9))
        with pytest.raises(LookupError):
            fake_inngest.fire_cron("planner-missing", MONDAY_9_BERLIN)


def test_failing_step_is_retried_then_the_run_fails(
    fake_inngest: FakeInngest, calls: Counter[str], make_client: ClientFactory
) -> None:
    async def body(ctx: inngest.Context) -> Any:
        async def flaky() -> None:
            calls["flaky"] += 1
            raise RuntimeError("upstream down")

        return await ctx.step.run("flaky", flaky)

    client = make_client(fake_inngest)
    with served(client, [cron_fn(client, "flaky", body, retries=2)]) as url:
        put_sync(url)
        run = fake_inngest.fire_cron("planner-flaky", MONDAY_9_BERLIN)
    assert run.status == "failed"
    assert calls["flaky"] == 3  # max_attempts = retries + 1
    assert run.attempts == 3
    ops = [c.body[0]["op"] for c in run.calls if isinstance(c.body, list)]
    assert ops == ["StepError", "StepError", "StepFailed"]
    memo = run.memos[hash_step_id("flaky")]  # the error, memoised after the last attempt
    assert isinstance(memo, dict)
    assert (memo["error"]["name"], memo["error"]["message"]) == ("RuntimeError", "upstream down")
    last = run.calls[-1]
    assert (last.status_code, last.no_retry) == (500, True)  # StepError is not retriable


def test_function_error_is_retried(
    fake_inngest: FakeInngest, calls: Counter[str], make_client: ClientFactory
) -> None:
    async def body(ctx: inngest.Context) -> Any:
        calls["body"] += 1
        raise ValueError("boom")

    client = make_client(fake_inngest)
    with served(client, [cron_fn(client, "boom", body, retries=1)]) as url:
        put_sync(url)
        run = fake_inngest.fire_cron("planner-boom", MONDAY_9_BERLIN)
    assert (run.status, run.attempts, calls["body"]) == ("failed", 2, 2)
    assert [c.attempt for c in run.calls] == [0, 1]
    assert isinstance(run.error, dict)
    assert (run.error["name"], run.error["message"]) == ("ValueError", "boom")


def test_non_retriable_error_is_not_retried(
    fake_inngest: FakeInngest, calls: Counter[str], make_client: ClientFactory
) -> None:
    async def body(ctx: inngest.Context) -> Any:
        calls["body"] += 1
        raise inngest.NonRetriableError("bad config")

    client = make_client(fake_inngest)
    with served(client, [cron_fn(client, "fatal", body, retries=3)]) as url:
        put_sync(url)
        run = fake_inngest.fire_cron("planner-fatal", MONDAY_9_BERLIN)
    assert (run.status, run.attempts, calls["body"]) == ("failed", 1, 1)
    assert run.calls[0].no_retry is True


def test_sleep_and_parallel_steps(
    fake_inngest: FakeInngest, calls: Counter[str], make_client: ClientFactory
) -> None:
    async def body(ctx: inngest.Context) -> Any:
        async def a() -> str:
            calls["a"] += 1
            return "A"

        async def b() -> str:
            calls["b"] += 1
            return "B"

        await ctx.step.sleep("nap", 60_000)
        pair = await ctx.group.parallel(
            (lambda: ctx.step.run("a", a), lambda: ctx.step.run("b", b))
        )
        return list(pair)

    client = make_client(fake_inngest)
    with served(client, [cron_fn(client, "parallel", body)]) as url:
        put_sync(url)
        run = fake_inngest.fire_cron("planner-parallel", MONDAY_9_BERLIN)
    assert (run.status, run.output) == ("completed", ["A", "B"])
    assert calls == {"a": 1, "b": 1}
    assert run.memos[hash_step_id("nap")] is None
    targeted = [c.step_id for c in run.calls if c.step_id != "step"]
    assert targeted == [hash_step_id("a"), hash_step_id("b")]


def test_events_are_deduped_by_id(fake_inngest: FakeInngest, make_client: ClientFactory) -> None:
    client = make_client(fake_inngest)
    event = inngest.Event(name="planner/ping", data={"n": 1}, id="idem-1")
    first = client.send_sync(event)
    assert client.send_sync(event) == first
    assert len(fake_inngest.events) == 1
    assert fake_inngest.events[0]["data"] == {"n": 1}
    assert ("POST", "/e/NO_EVENT_KEY_SET") in fake_inngest.requests  # dev-mode key (R "Events")
    now = time.time()
    fake_inngest.clock = lambda: now + 24 * 3600 + 1  # the dedupe window is 24 h
    assert client.send_sync(event) != first
    assert len(fake_inngest.events) == 2


def test_send_event_and_run_and_step_send_event(
    fake_inngest: FakeInngest, make_client: ClientFactory
) -> None:
    client = make_client(fake_inngest)

    @client.create_function(fn_id="on-ping", trigger=inngest.TriggerEvent(event="planner/ping"))
    async def on_ping(ctx: inngest.Context) -> Any:
        await ctx.step.send_event(
            "pong", inngest.Event(name="planner/pong", data=dict(ctx.event.data))
        )
        return "pinged"

    with served(client, [on_ping]) as url:
        put_sync(url)
        (run,) = fake_inngest.send_event_and_run("planner/ping", {"n": 2})
    assert (run.status, run.output) == ("completed", "pinged")
    assert [(e["name"], e["data"]) for e in fake_inngest.events] == [
        ("planner/ping", {"n": 2}),
        ("planner/pong", {"n": 2}),
    ]


# -- production mode ---------------------------------------------------------------------------


def test_production_sync_bearer_and_signed_run(
    fake_inngest_prod: FakeInngest, calls: Counter[str], make_client: ClientFactory
) -> None:
    fake = fake_inngest_prod
    client = make_client(fake, signing_key=TEST_SIGNING_KEY)
    with served(client, [report_fn(client, calls)]) as url:
        assert put_sync(url).json()["modified"] is True
        run = fake.fire_cron("planner-nightly-report", MONDAY_9_BERLIN)
    assert run.status == "completed"
    assert all(c.signature_valid for c in run.calls)  # the SDK signs its responses
    hashed = hash_signing_key(TEST_SIGNING_KEY)
    assert list_functions(fake).status_code == 401
    assert list_functions(fake, "nope").status_code == 401
    for bearer in (hashed, f"signkey-test-{hashed}", TEST_SIGNING_KEY):
        assert list_functions(fake, bearer).json()[0]["id"] == "planner-nightly-report"
    assert fake.apps[APP].env == "production"


def test_production_bearer_mismatch_is_401(
    fake_inngest_prod: FakeInngest, calls: Counter[str], make_client: ClientFactory
) -> None:
    fake = fake_inngest_prod
    client = make_client(fake, signing_key=OTHER_KEY)
    with served(client, [report_fn(client, calls)]) as url:
        res = put_sync(url)
    assert res.json() == {"error": "authentication failed: signing key mismatch"}  # 401, via SDK
    assert APP not in fake.apps
    direct = httpx.post(
        f"{fake.base_url}/fn/register",
        json={},
        headers={"authorization": f"Bearer {hash_signing_key(OTHER_KEY)}"},
    )
    assert direct.status_code == 401


def test_production_event_key(fake_inngest_prod: FakeInngest, make_client: ClientFactory) -> None:
    client = make_client(fake_inngest_prod, signing_key=TEST_SIGNING_KEY)
    assert len(client.send_sync(inngest.Event(name="planner/ping"))) == 1
    wrong = httpx.post(f"{fake_inngest_prod.base_url}/e/wrong-key", json=[{"name": "x"}])
    assert wrong.status_code == 401


def test_signature_matches_the_sdk_verifier() -> None:
    body = canonical_json({"b": 1, "a": [1.0, "é"]})
    header = sign_request_body(body, TEST_SIGNING_KEY, t=1_700_000_000)
    cloud = sdk_server.ServerKind.CLOUD
    headers = {"x-inngest-signature": header}
    ok = sdk_net.validate_request_sig(
        body=body,
        headers=headers,
        mode=cloud,
        signing_key=TEST_SIGNING_KEY,
        signing_key_fallback=None,
    )
    assert ok == TEST_SIGNING_KEY
    bad = sdk_net.validate_request_sig(
        body=body, headers=headers, mode=cloud, signing_key=OTHER_KEY, signing_key_fallback=None
    )
    assert isinstance(bad, sdk_errors.SigVerificationFailedError)


def test_wrong_signing_key_is_rejected_by_the_sdk(
    fake_inngest_prod: FakeInngest, calls: Counter[str], make_client: ClientFactory
) -> None:
    fake = fake_inngest_prod
    client = make_client(fake, signing_key=TEST_SIGNING_KEY)
    with served(client, [report_fn(client, calls)]) as url:
        put_sync(url)
        fake.faults.executor_signing_key = OTHER_KEY
        run = fake.fire_cron("planner-nightly-report", MONDAY_9_BERLIN)
    assert run.status == "failed"
    assert [c.status_code for c in run.calls] == [401, 401]  # retries=1: two attempts
    assert run.error == {"message": "Unauthorized"}
    assert calls["fetch"] == 0


# -- fault knobs and restarts ------------------------------------------------------------------


def test_slow_knob_delays_every_response(fake_inngest: FakeInngest) -> None:
    fake_inngest.faults.slow_seconds = 0.2
    started = time.monotonic()
    assert list_functions(fake_inngest).json() is None  # unknown app: GO encodes nil as null
    assert time.monotonic() - started >= 0.2


def test_drop_connection_knob(
    fake_inngest: FakeInngest, calls: Counter[str], make_client: ClientFactory
) -> None:
    fake_inngest.faults.drop_connection = 1
    with pytest.raises(httpx.RemoteProtocolError):
        list_functions(fake_inngest)
    assert list_functions(fake_inngest).status_code == 200
    fake_inngest.faults.drop_connection = 1
    client = make_client(fake_inngest)
    with served(client, [report_fn(client, calls)]) as url:
        res = put_sync(url)
    assert res.status_code == 500
    assert "Failed request" in res.json()["message"]
    assert APP not in fake_inngest.apps


def test_restart_keeps_apps_and_crons(
    fake_inngest: FakeInngest, calls: Counter[str], make_client: ClientFactory
) -> None:
    client = make_client(fake_inngest)
    with served(client, [report_fn(client, calls)]) as url:
        put_sync(url)
        base_url = fake_inngest.base_url
        fake_inngest.restart()
        assert fake_inngest.base_url == base_url
        assert list_functions(fake_inngest).json()[0]["config"]["triggers"] == [{"cron": CRON}]
        assert (
            fake_inngest.fire_cron("planner-nightly-report", MONDAY_9_BERLIN).status == "completed"
        )


def test_forgotten_crons_show_in_the_function_list(
    fake_inngest: FakeInngest, calls: Counter[str], make_client: ClientFactory
) -> None:
    fake = fake_inngest
    fake.faults.forget_crons_after_restart = True
    client = make_client(fake)
    with served(client, [report_fn(client, calls)]) as url:
        put_sync(url)
        fake.restart()
        (listed,) = list_functions(fake).json()
        assert listed["id"] == "planner-nightly-report"  # still listed ...
        assert listed["config"]["triggers"] == []  # ... but its cron is gone
        with pytest.raises(CronNotScheduledError):
            fake.fire_cron("planner-nightly-report", MONDAY_9_BERLIN)
        assert put_sync(url).json()["modified"] is False  # not proof of crons
        assert list_functions(fake).json()[0]["config"]["triggers"] == []
    bumped = make_client(fake, app_version="2")  # a different checksum re-initialises crons
    with served(bumped, [report_fn(bumped, calls)]) as url:
        assert put_sync(url).json()["modified"] is True
        assert list_functions(fake).json()[0]["config"]["triggers"] == [{"cron": CRON}]
        assert fake.fire_cron("planner-nightly-report", MONDAY_9_BERLIN).status == "completed"


async def _const(value: Any) -> Any:
    return value
