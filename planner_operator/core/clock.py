"""The one place the operator reads the time.

Everything that needs "now" (run-now and scheduled fires, the job runner, the rate limiter,
stores stamping rows, leases and locks, explain, the status views) takes a :class:`Clock`,
defaulting to :data:`SYSTEM`, so a test or the demo can pin the date: a rendered ``{weekday}``,
a next-fire list or a "3 minutes ago" then reads the same on every day of the week.
``tests/core/test_no_wall_clock.py`` fails if any other product module reads the real time.

The protocol is three methods because the call sites need exactly three things:

* ``now()``: the wall clock, as an *aware UTC* datetime (never naive, never local), for
  timestamps, fire times and ages. Epoch seconds, which the inbox and HTTP signatures store,
  are :func:`epoch` of it rather than a fourth method, so the two can never disagree.
* ``monotonic()``: elapsed time for deadlines and rate budgets, which a wall-clock step
  (NTP, a test jumping to another date) must not shorten or stretch.
* ``sleep(seconds)``: the blocking waits of the rate limiter and the lock, so a test clock
  can let minutes of waiting pass at once. Async loops keep ``asyncio.sleep``: they only wait
  for a duration computed from ``now()``, and the event loop owns that timer.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Protocol

# A Monday, a fixed time well inside standard time everywhere: the default test date.
DEFAULT_START = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, aware, in UTC."""
        ...

    def monotonic(self) -> float:
        """Seconds from an arbitrary origin that never goes backwards."""
        ...

    def sleep(self, seconds: float) -> None:
        """Block for ``seconds`` of this clock's time."""
        ...


class SystemClock:
    """The real time: what the operator uses unless it is told otherwise."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


SYSTEM: Clock = SystemClock()


def epoch(clock: Clock) -> float:
    """Unix time of ``clock.now()`` (what the inbox, sessions and signatures store)."""
    return clock.now().timestamp()


def iso(clock: Clock, timespec: str = "auto") -> str:
    """``clock.now()`` as ISO 8601 with its ``+00:00`` offset (what stores write as text)."""
    return clock.now().isoformat(timespec=timespec)


def _utc(when: datetime) -> datetime:
    if when.tzinfo is None or when.utcoffset() is None:
        raise ValueError(f"a clock needs an aware datetime, got naive {when.isoformat()}")
    return when.astimezone(UTC)


class ManualClock:
    """Time that moves only when told to: deterministic, and safe to share between threads.

    ``advance`` moves the wall clock and the monotonic clock together, as real time does;
    ``set`` steps the wall clock alone, as NTP or a test jumping to another date does (a
    monotonic deadline is not affected). ``sleep`` returns at once after advancing by the
    requested time and records it in ``slept``, so a rate limiter's or a lock's waiting is
    visible and costs nothing.
    """

    def __init__(self, start: datetime = DEFAULT_START, *, monotonic: float = 1000.0) -> None:
        self._now = _utc(start)
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self.slept: list[float] = []

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def monotonic(self) -> float:
        with self._lock:
            return self._monotonic

    def sleep(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError(f"sleep length must be non-negative, got {seconds}")
        with self._lock:
            self.slept.append(seconds)
            self._advance(seconds)

    def advance(self, delta: timedelta | float = 0.0, **parts: float) -> datetime:
        """Move both clocks forward by ``delta`` (seconds or a timedelta) plus ``parts``
        (``timedelta`` keywords: ``minutes=5``); returns the new ``now()``."""
        step = delta if isinstance(delta, timedelta) else timedelta(seconds=delta)
        step += timedelta(**parts)
        if step < timedelta(0):
            raise ValueError(f"a clock does not go backwards: advance by {step}")
        with self._lock:
            self._advance(step.total_seconds())
            return self._now

    def set(self, when: datetime) -> None:
        """Step the wall clock to ``when`` (either direction); monotonic time stays put."""
        moment = _utc(when)
        with self._lock:
            self._now = moment

    def _advance(self, seconds: float) -> None:
        self._now += timedelta(seconds=seconds)
        self._monotonic += seconds


class ScaledClock:
    """Real time running ``scale`` times faster, from ``start`` (default: ``base``'s now).

    Sleeping really sleeps (for ``seconds / scale``) so threads and a real server keep their
    ordering; only the readings are scaled. With ``scale=1`` and a ``start`` it is the real
    clock moved to another date: what tests of the whole app use, where background work
    (leases, caches, polls) needs time to pass but the date must be a chosen one.
    """

    def __init__(
        self, scale: float = 1.0, *, start: datetime | None = None, base: Clock = SYSTEM
    ) -> None:
        if scale <= 0:
            raise ValueError(f"scale must be positive, got {scale}")
        self.scale = scale
        self._base = base
        self._t0 = base.monotonic()
        self._wall0 = base.now() if start is None else _utc(start)

    def now(self) -> datetime:
        return self._wall0 + timedelta(seconds=self.monotonic())

    def monotonic(self) -> float:
        return (self._base.monotonic() - self._t0) * self.scale

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            self._base.sleep(seconds / self.scale)
