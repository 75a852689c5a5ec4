"""A client-side request budget for a per-minute API quota shared with others.

Composio limits requests per organisation in fixed one-minute windows, and the same budget pays
for the agents' tool calls, so the operator keeps itself to a share of it (50% by default) rather
than racing the agents for it. The limiter is a token bucket of ``burst`` tokens refilled at
``(limit - burst) / (window + slack)`` per second: any ``window`` seconds then admit at most
``burst + (limit - burst) = limit`` requests, which bounds every fixed window of the server's too.
The ``slack`` (1 s) covers latency jitter, since the server counts arrivals and we count
departures. A long run still gets ``(1 - burst/limit) * window / (window + slack)`` (93% by
default) of the allowance.

It sits *under* the SDK, in an ``httpx`` transport (:class:`LimitedTransport`), because that is the
only place that sees every attempt: the SDK retries 429/5xx and timeouts on its own, and those
retries spend the same budget. The transport also turns a server's ``Retry-After`` into a barrier
("no request before T") that every later request waits for, including the SDK's own retry, whose
built-in delay ignores values of a minute or more.

Time comes from an injected ``core.clock.Clock`` so tests and the benchmark can run minutes of
simulated time in seconds (``ManualClock``, ``ScaledClock``) while still making real HTTP
requests.
"""

from __future__ import annotations

import email.utils
import math
import threading
from collections.abc import Mapping
from dataclasses import dataclass

import httpx

from planner_operator.core import clock as clock_mod
from planner_operator.core import variables
from planner_operator.errors import RetryableError, UnknownOutcome

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# Float slack: ``now + (t - now)`` can land one ulp short of ``t``; a nanosecond is not early.
_EPSILON = 1e-9


@dataclass(frozen=True)
class Budget:
    """The organisation's quota and the share of it this operator may spend."""

    per_minute: int = variables.COMPOSIO_BUDGET_PER_MIN.default
    share: float = variables.COMPOSIO_BUDGET_SHARE.default
    window: float = 60.0

    @property
    def limit(self) -> int:
        """Requests the operator may send in any ``window`` seconds."""
        return max(1, math.floor(self.per_minute * self.share))

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Budget:
        return cls(
            per_minute=variables.COMPOSIO_BUDGET_PER_MIN.read(env),
            share=variables.COMPOSIO_BUDGET_SHARE.read(env),
        )


class BudgetExhausted(RetryableError):
    """The server asked for a pause longer than a caller should block for."""


class RateLimiter:
    """Token bucket with a ``Retry-After`` barrier; safe to share between threads."""

    def __init__(
        self,
        limit: int,
        window: float = 60.0,
        *,
        burst: int | None = None,
        clock: clock_mod.Clock | None = None,
        max_wait: float = 120.0,
        slack: float = 1.0,
    ) -> None:
        if limit < 1 or window <= 0 or slack < 0:
            raise ValueError(f"need limit >= 1, window > 0, slack >= 0: {limit}/{window}/{slack}")
        self.limit = limit
        self.window = window
        self.burst = max(1, min(limit, burst if burst is not None else limit // 20))
        self.rate = max(limit - self.burst, 1) / (window + slack)  # tokens per second
        self.clock: clock_mod.Clock = clock or clock_mod.SYSTEM
        self.max_wait = max_wait
        self._lock = threading.Lock()
        self._tokens = float(self.burst)
        self._last = self.clock.monotonic()
        self._not_before = -math.inf
        self.admitted = 0
        self.waited = 0.0

    @classmethod
    def for_budget(cls, budget: Budget, *, clock: clock_mod.Clock | None = None) -> RateLimiter:
        return cls(budget.limit, budget.window, clock=clock)

    @property
    def not_before(self) -> float:
        """Clock time before which no request is admitted (``-inf`` when none pending)."""
        with self._lock:
            return self._not_before

    def acquire(self) -> None:
        """Block until one request may be sent, then count it."""
        while True:
            with self._lock:
                now = self.clock.monotonic()
                if now < self._not_before - _EPSILON:
                    wait = self._not_before - now
                else:
                    self._tokens = min(
                        self.burst, self._tokens + max(0.0, now - self._last) * self.rate
                    )
                    self._last = max(self._last, now)
                    if self._tokens >= 1.0 - _EPSILON:
                        self._tokens -= 1.0
                        self.admitted += 1
                        return
                    wait = (1.0 - self._tokens) / self.rate
            if wait > self.max_wait:
                raise BudgetExhausted(
                    f"request budget exhausted: next request allowed in {wait:.0f} s",
                    retry_after=wait,
                )
            self.waited += wait
            self.clock.sleep(wait)

    def defer(self, seconds: float) -> None:
        """No request before ``seconds`` from now (a server's Retry-After); restart from empty.

        The bucket is emptied and refills only from the barrier on, so the first requests after
        a 429 trickle out at the steady rate instead of bursting into an exhausted quota.
        """
        with self._lock:
            until = self.clock.monotonic() + max(0.0, seconds)
            self._not_before = max(self._not_before, until)
            self._tokens = 0.0
            self._last = max(self._last, self._not_before)


def parse_retry_after(headers: Mapping[str, str], *, now_wall: float) -> float | None:
    """Seconds to wait from ``retry-after-ms`` or ``Retry-After`` (seconds or HTTP-date)."""
    millis = headers.get("retry-after-ms")
    if millis is not None:
        try:
            return max(0.0, float(millis) / 1000.0)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        # An HTTP-date has one-second resolution: round up so we never arrive early.
        return max(0.0, math.ceil(when.timestamp() - now_wall))
    return max(0.0, seconds) if math.isfinite(seconds) else None


class LimitedTransport(httpx.BaseTransport):
    """Every request through the budget; a Retry-After becomes a barrier; one origin only.

    A write (any method but GET/HEAD/OPTIONS) that times out raises ``UnknownOutcome`` rather
    than ``httpx.TimeoutException``: the SDK retries the latter blindly, but a write that timed
    out may have landed, so the caller must look before it tries again.
    """

    def __init__(
        self,
        inner: httpx.BaseTransport,
        limiter: RateLimiter,
        *,
        origin: str | None = None,
        name: str = "",
        default_pause: float = 1.0,
    ) -> None:
        self._inner = inner
        self.limiter = limiter
        self._origin = _origin(httpx.URL(origin)) if origin else None
        self._name = name
        self._default_pause = default_pause

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if self._origin is not None and _origin(request.url) != self._origin:
            raise PermissionError(
                f"refusing a request to {request.url.scheme}://{request.url.host}: "
                "this client talks only to the configured API"
            )
        self.limiter.acquire()
        try:
            response = self._inner.handle_request(request)
        except httpx.TimeoutException as exc:
            if request.method.upper() in SAFE_METHODS:
                raise
            raise UnknownOutcome(
                f"{request.method} {request.url.path}: no response in time; the write may have "
                "been applied, so it is re-read before any retry",
                backend=self._name,
            ) from exc
        if response.status_code in (429, 503):
            pause = parse_retry_after(
                response.headers, now_wall=clock_mod.epoch(self.limiter.clock)
            )
            if pause is None and response.status_code == 429:
                pause = self._default_pause
            if pause is not None:
                self.limiter.defer(pause)
        return response

    def close(self) -> None:
        self._inner.close()


def _origin(url: httpx.URL) -> tuple[str, str, int | None]:
    default = {"http": 80, "https": 443}.get(url.scheme)
    return url.scheme, url.host, url.port or default
