"""The request budget: its bound holds in every window, it uses the allowance, it obeys 429s."""

from __future__ import annotations

import email.utils
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from planner_operator.backends import ratelimit
from planner_operator.backends.ratelimit import (
    Budget,
    LimitedTransport,
    RateLimiter,
    parse_retry_after,
)
from planner_operator.core import variables
from planner_operator.core.clock import ManualClock
from planner_operator.errors import SourceError, UnknownOutcome


def max_in_window(times: list[float], window: float) -> int:
    """The most events inside any half-open window ``[t, t + window)``."""
    best, start = 0, 0
    for end, at in enumerate(times):
        while at - times[start] >= window:
            start += 1
        best = max(best, end - start + 1)
    return best


def test_budget_defaults_to_half_of_2000_per_minute() -> None:
    budget = Budget.from_env({})
    assert (budget.per_minute, budget.share, budget.limit) == (2000, 0.5, 1000)
    custom = Budget.from_env(
        {
            variables.COMPOSIO_BUDGET_PER_MIN.name: "10000",
            variables.COMPOSIO_BUDGET_SHARE.name: "0.25",
        }  # a Pro plan, a quarter
    )
    assert custom.limit == 2500


@pytest.mark.parametrize(
    ("name", "value", "words"),
    [
        (variables.COMPOSIO_BUDGET_PER_MIN.name, "lots", "whole number"),
        (variables.COMPOSIO_BUDGET_PER_MIN.name, "0", "at least 1"),
        (variables.COMPOSIO_BUDGET_SHARE.name, "1.5", "(0, 1]"),
        (variables.COMPOSIO_BUDGET_SHARE.name, "half", "number"),
    ],
)
def test_budget_refuses_bad_settings(name: str, value: str, words: str) -> None:
    with pytest.raises(SourceError, match=name) as err:
        Budget.from_env({name: value})
    assert words in str(err.value)


@settings(max_examples=60, deadline=None)
@given(
    limit=st.integers(min_value=1, max_value=200),
    steps=st.lists(
        st.one_of(
            st.tuples(st.just("burst"), st.integers(min_value=1, max_value=300)),
            st.tuples(st.just("idle"), st.floats(min_value=0, max_value=200)),
            st.tuples(st.just("429"), st.floats(min_value=0, max_value=90)),
        ),
        max_size=12,
    ),
)
def test_no_window_ever_holds_more_than_the_limit(
    limit: int, steps: list[tuple[str, float]]
) -> None:
    clock = ManualClock()
    limiter = RateLimiter(limit, 60.0, clock=clock, max_wait=1e9)
    admitted: list[float] = []
    barriers: list[tuple[int, float]] = []  # (admissions so far, no admission before)
    for kind, amount in steps:
        if kind == "burst":
            for _ in range(int(amount)):
                limiter.acquire()
                admitted.append(clock.monotonic())
        elif kind == "idle":
            clock.advance(amount)
        else:
            limiter.defer(amount)
            barriers.append((len(admitted), clock.monotonic() + amount))
    assert max_in_window(admitted, 60.0) <= limit
    for index, barrier in barriers:  # nothing admitted before a Retry-After has passed
        assert all(at >= barrier - 1e-6 for at in admitted[index:])


def test_a_long_run_uses_at_least_90_percent_of_the_allowance() -> None:
    clock = ManualClock()
    limiter = RateLimiter(1000, 60.0, clock=clock)
    start = clock.monotonic()
    for _ in range(5000):
        limiter.acquire()
    minutes = (clock.monotonic() - start) / 60
    assert 5000 / minutes >= 0.9 * 1000
    assert limiter.burst == 50 and limiter.admitted == 5000


def test_defer_blocks_until_the_barrier_then_trickles() -> None:
    clock = ManualClock()
    limiter = RateLimiter(600, 60.0, clock=clock)  # 30 burst, then 570 per 61 s
    limiter.acquire()
    limiter.defer(30.0)
    barrier = clock.monotonic() + 30.0
    limiter.acquire()
    assert clock.monotonic() >= barrier
    first = clock.monotonic()
    limiter.acquire()  # the bucket was emptied: the next one waits a refill interval
    assert clock.monotonic() - first == pytest.approx(1 / limiter.rate)
    limiter.defer(5.0)
    limiter.defer(1.0)  # a shorter Retry-After never shortens a barrier already set
    assert limiter.not_before == pytest.approx(clock.monotonic() + 5.0)


def test_a_barrier_beyond_max_wait_is_an_error_not_a_hang() -> None:
    clock = ManualClock()
    limiter = RateLimiter(10, 60.0, clock=clock, max_wait=60.0)
    limiter.defer(3600.0)
    with pytest.raises(ratelimit.BudgetExhausted) as err:
        limiter.acquire()
    assert err.value.retry_after == pytest.approx(3600.0)
    assert clock.slept == []


def test_threads_share_one_budget() -> None:
    limiter = RateLimiter(40, 0.5, burst=4, slack=0)  # real time: 36 per 0.5 s after a burst
    admitted: list[float] = []
    lock = threading.Lock()

    def worker() -> None:
        for _ in range(30):
            limiter.acquire()
            with lock:
                admitted.append(time.monotonic())

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(admitted) == 120
    assert max_in_window(sorted(admitted), 0.5) <= 40 + 1  # +1: timer granularity


# -- Retry-After -----------------------------------------------------------------------------


def test_parse_retry_after_seconds_milliseconds_and_http_dates() -> None:
    now = 1_767_268_800.0
    assert parse_retry_after({"retry-after": "7"}, now_wall=now) == 7.0
    assert parse_retry_after({"retry-after": "1.5"}, now_wall=now) == 1.5
    assert parse_retry_after({"retry-after-ms": "250"}, now_wall=now) == 0.25
    date = email.utils.formatdate(now + 30, usegmt=True)
    assert parse_retry_after({"retry-after": date}, now_wall=now) == 30.0
    assert parse_retry_after({"retry-after": date}, now_wall=now + 0.4) == 30.0  # rounded up
    past = email.utils.formatdate(now - 30, usegmt=True)
    assert parse_retry_after({"retry-after": past}, now_wall=now) == 0.0
    assert parse_retry_after({"retry-after": "-3"}, now_wall=now) == 0.0
    assert parse_retry_after({"retry-after": "soon"}, now_wall=now) is None
    assert parse_retry_after({"retry-after": "nan"}, now_wall=now) is None
    assert parse_retry_after({}, now_wall=now) is None


# -- the transport under the SDK -------------------------------------------------------------


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@contextmanager
def transport_with(
    handler: httpx.MockTransport, clock: ManualClock, limit: int = 100
) -> Iterator[tuple[httpx.Client, RateLimiter]]:
    limiter = RateLimiter(limit, 60.0, clock=clock)
    transport = LimitedTransport(handler, limiter, origin="https://api.example.com", name="x")
    with httpx.Client(transport=transport, base_url="https://api.example.com") as client:
        yield client, limiter


def test_transport_turns_retry_after_into_a_barrier(clock: ManualClock) -> None:
    seen: list[float] = []
    answers = iter([429, 200, 429, 200])

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(clock.monotonic())
        status = next(answers)
        date = email.utils.formatdate(clock.now().timestamp() + 120, usegmt=True)
        after = {"retry-after": "90" if len(seen) == 1 else date} if status == 429 else {}
        return httpx.Response(status, headers=after)

    with transport_with(httpx.MockTransport(handle), clock) as (client, _):
        assert client.get("/a").status_code == 429
        assert client.get("/a").status_code == 200  # >= 60 s: the SDK itself would not wait
        assert client.post("/b").status_code == 429
        assert client.post("/b").status_code == 200
    assert seen[1] - seen[0] >= 90
    assert seen[3] - seen[2] >= 120 - 1


def test_transport_pauses_after_a_bare_429(clock: ManualClock) -> None:
    with transport_with(httpx.MockTransport(lambda r: httpx.Response(429)), clock) as (
        client,
        limiter,
    ):
        client.get("/a")
        assert limiter.not_before == pytest.approx(clock.monotonic() + 1.0)


def test_transport_refuses_other_hosts(clock: ManualClock) -> None:
    calls: list[httpx.Request] = []

    def record(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(200)

    handler = httpx.MockTransport(record)
    with transport_with(handler, clock) as (client, _):
        with pytest.raises(PermissionError, match=r"telemetry\.example\.com"):
            client.get("https://telemetry.example.com/v1/metrics")
        client.get("https://api.example.com:443/ok")
    assert [c.url.host for c in calls] == ["api.example.com"]


def test_a_timed_out_write_is_unknown_and_a_timed_out_read_is_not(clock: ManualClock) -> None:
    def slow(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("no answer", request=request)

    with transport_with(httpx.MockTransport(slow), clock) as (client, limiter):
        with pytest.raises(UnknownOutcome, match="re-read"):
            client.post("/api/v3.1/trigger_instances/X/upsert")
        with pytest.raises(httpx.ReadTimeout):
            client.get("/api/v3.1/trigger_instances/active")
        assert limiter.admitted == 2  # both attempts spent budget
