"""Connections the server holds: bounded in time and in number, so no client starves the rest.

uvicorn's HTTP/1.1 protocol bounds only the idle time *between* requests (keep-alive). A
connection that sends nothing, or half a request line, or its headers but never its body, is
held for as long as the client likes: 1,100 such connections opened in 0.3 s made every valid
delivery time out, and once the open-files limit was reached every ``accept()`` failed and was
logged (210,943 "Too many open files" lines in 15 s). So, for every connection:

* **header timeout** (``PLANNER_HEADER_TIMEOUT``, 10 s): the request line and headers must be
  complete this long after the connection opened, or after the previous response on a kept-
  alive connection. A total, not an idle time, so trickling a byte a second does not extend it.
* **body timeout** (``PLANNER_BODY_TIMEOUT``, 30 s): the whole body must arrive this long after
  its headers. Either timeout answers 408 (when no response has started) and closes.
* **a cap** (``PLANNER_MAX_CONNECTIONS``, 4,096, lowered to fit the open-files limit): at the cap
  the connection that has waited longest for its next request line is closed to make room
  (idle and half-sent connections are the cheap ones to drop, and the likeliest attackers); if
  every connection is busy with a request, the new one is refused with 503 and ``Retry-After``.
* **the open-files soft limit** is raised to the hard limit at start, so the cap, not ``EMFILE``,
  is what a flood meets first.

Each of these is logged once per condition with a count (:class:`Conditions`), never once per
connection. :func:`serve` runs an app under these rules, as ``planner-operator serve`` does.
"""

from __future__ import annotations

import asyncio
import json
import logging
import resource
import time
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar

import uvicorn
from starlette.types import ASGIApp
from uvicorn.protocols.http.h11_impl import H11Protocol

from planner_operator.core import logsafe, variables

log = logging.getLogger("planner_operator.server.connections")

RESERVE = 128  # descriptors kept for databases, the worker's threads and outbound HTTP
REPORT_EVERY = 10.0  # seconds between two log lines about one condition


@dataclass(frozen=True)
class Limits:
    header_timeout: float = 10.0
    body_timeout: float = 30.0
    max_connections: int = 4096

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Limits:
        return cls(
            header_timeout=variables.HEADER_TIMEOUT.read(env),
            body_timeout=variables.BODY_TIMEOUT.read(env),
            max_connections=variables.MAX_CONNECTIONS.read(env),
        )

    def fitted(self, open_files: int) -> Limits:
        """The cap lowered so that it, not ``EMFILE``, is what a flood meets."""
        return replace(
            self, max_connections=min(self.max_connections, max(16, open_files - RESERVE))
        )


def raise_open_files_limit() -> tuple[int, int]:
    """Raise the soft RLIMIT_NOFILE to the hard limit; returns (before, after)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else 1 << 20
    for wanted in (target, 1 << 20, 1 << 16):
        if soft >= min(wanted, target):
            break
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (min(wanted, target), hard))
            break
        except (ValueError, OSError):  # e.g. above fs.nr_open: try a lower one
            continue
    after = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    return soft, after


@dataclass
class Conditions:
    """One log line per condition and :data:`REPORT_EVERY` seconds, with how often it occurred.

    The first occurrence is logged at once; later ones are counted and reported together at the
    end of the interval (a timer on the event loop, so the last burst is reported too).
    """

    every: float = REPORT_EVERY
    clock: Any = time.monotonic
    _last: dict[str, float] = field(default_factory=dict)
    _pending: dict[str, int] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)  # since start, for tests and metrics

    def note(self, condition: str, loop: asyncio.AbstractEventLoop | None = None) -> None:
        self.counts[condition] = self.counts.get(condition, 0) + 1
        now = self.clock()
        if now - self._last.get(condition, float("-inf")) >= self.every:
            self._last[condition] = now
            log.warning(
                "connections: %s (further occurrences reported every %.0f s)", condition, self.every
            )
            return
        first = condition not in self._pending
        self._pending[condition] = self._pending.get(condition, 0) + 1
        if first and loop is not None:
            delay = self.every - (now - self._last[condition])
            loop.call_later(max(delay, 0.0), self.flush, condition)

    def flush(self, condition: str) -> None:
        count = self._pending.pop(condition, 0)
        if count:
            self._last[condition] = self.clock()
            log.warning(
                "connections: %s: %d more time(s) in the last %.0f s", condition, count, self.every
            )


@dataclass
class Guard:
    """What every connection of one server shares: the limits, who waits for a request line,
    and the condition log."""

    limits: Limits
    conditions: Conditions = field(default_factory=Conditions)
    waiting: OrderedDict[Any, None] = field(default_factory=OrderedDict)  # oldest first

    def make_room(self, newcomer: Any) -> bool:
        """Close the connection that has waited longest for a request line; False if none."""
        for victim in self.waiting:
            if victim is not newcomer:
                victim.close_with(503, "the server is at its connection limit; closed idle")
                return True
        return False


def protocol(guard: Guard) -> type[H11Protocol]:
    """uvicorn's h11 protocol with :class:`Guard`'s timeouts and cap (``Config(http=...)``)."""

    class Guarded(GuardedProtocol):
        shared: ClassVar[Guard] = guard

    return Guarded


class GuardedProtocol(H11Protocol):
    shared: ClassVar[Guard]
    _timer: asyncio.TimerHandle | None = None
    _seen: Any = None  # the cycle whose headers were already accounted for

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        guard = self.shared
        if len(self.connections) > guard.limits.max_connections and not guard.make_room(self):
            guard.conditions.note(
                f"connection limit ({guard.limits.max_connections}) reached with every "
                "connection busy: refused new ones with 503",
                self.loop,
            )
            self.close_with(503, "the server is at its connection limit; retry")
            return
        if len(self.connections) > guard.limits.max_connections:
            guard.conditions.note(
                f"connection limit ({guard.limits.max_connections}) reached: closed the "
                "longest-idle connections to make room",
                self.loop,
            )
        self._await_request()

    def _await_request(self) -> None:
        self._arm(self.shared.limits.header_timeout, "headers")
        self.shared.waiting[self] = None

    def _arm(self, delay: float, phase: str) -> None:
        self._disarm()
        self._timer = self.loop.call_later(delay, self._timed_out, phase)

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def handle_events(self) -> None:
        super().handle_events()
        cycle = self.cycle
        if cycle is None or self.transport.is_closing():
            return
        if cycle is not self._seen:  # a new request's headers are complete
            self._seen = cycle
            self.shared.waiting.pop(self, None)
            if cycle.more_body:
                self._arm(self.shared.limits.body_timeout, "body")
            else:
                self._disarm()
        elif not cycle.more_body and self._timer is not None and not cycle.response_complete:
            self._disarm()  # the body is complete

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing() and self.cycle is self._seen:
            self._await_request()  # kept alive: the next request line is due in time too

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        self.shared.waiting.pop(self, None)
        super().connection_lost(exc)

    def _timed_out(self, phase: str) -> None:
        self._timer = None
        limits = self.shared.limits
        if phase == "headers":
            what = f"no complete request headers within {limits.header_timeout:g} s"
        else:
            what = f"no complete request body within {limits.body_timeout:g} s of its headers"
        self.shared.conditions.note(f"closed connections with {what} (408)", self.loop)
        self.close_with(408, f"request timeout: {what}")

    def close_with(self, status: int, reason: str) -> None:
        """Answer ``status`` in plain HTTP (unless a response already started) and close."""
        self._disarm()
        self.shared.waiting.pop(self, None)
        if self.transport.is_closing():
            return
        cycle = self.cycle
        if cycle is None or not cycle.response_started or cycle.response_complete:
            body = json.dumps({"error": reason}).encode()
            phrase = {408: "Request Timeout", 503: "Service Unavailable"}.get(status, "")
            retry = b"retry-after: 1\r\n" if status == 503 else b""
            self.transport.write(
                f"HTTP/1.1 {status} {phrase}\r\ncontent-type: application/json\r\n".encode()
                + retry
                + f"content-length: {len(body)}\r\nconnection: close\r\n\r\n".encode()
                + body
            )
        if cycle is not None and not cycle.response_complete:
            cycle.disconnected = True  # the app reads a disconnect; its answer goes nowhere
            cycle.message_event.set()
        self.transport.close()


def config(
    app: ASGIApp, *, host: str, port: int, env: Mapping[str, str], **options: Any
) -> uvicorn.Config:
    """A uvicorn ``Config`` serving ``app`` under :class:`Limits` from ``env``, after raising
    the open-files limit; logs the limits once."""
    before, after = raise_open_files_limit()
    if after > before:
        log.info("open files: soft limit raised from %d to %d (the hard limit)", before, after)
    limits = Limits.from_env(env).fitted(after)
    log.info(
        "connections: at most %d open (open-files limit %d); request headers due within %g s, "
        "bodies within %g s",
        limits.max_connections,
        after,
        limits.header_timeout,
        limits.body_timeout,
    )
    guard = Guard(limits)
    settings = {"log_level": "info", "access_log": False, "ws": "none", **options}
    result = uvicorn.Config(app, host=host, port=port, http=protocol(guard), **settings)
    # uvicorn configures its loggers when its Config is built: escape and thin their lines too
    uvicorn_error = logging.getLogger("uvicorn.error")
    logsafe.install([logging.getLogger("uvicorn"), uvicorn_error])
    for logger in (uvicorn_error, logging.getLogger("asyncio")):
        if not any(isinstance(f, PerConnectionFilter) for f in logger.filters):
            logger.addFilter(PerConnectionFilter(guard.conditions))
    return result


class PerConnectionFilter(logging.Filter):
    """Turns the per-connection lines of uvicorn and asyncio into :class:`Conditions` reports:
    a malformed request, an ``accept()`` that found no free file descriptor."""

    MESSAGES: ClassVar[dict[str, str]] = {
        "Invalid HTTP request received.": "refused malformed HTTP requests (400)",
        "socket.accept() out of system resource": "accept() failed: out of file descriptors",
    }

    def __init__(self, conditions: Conditions) -> None:
        super().__init__()
        self.conditions = conditions

    def filter(self, record: logging.LogRecord) -> bool:
        condition = self.MESSAGES.get(str(record.msg))
        if condition is None:
            return True
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        self.conditions.note(condition, loop)
        return False


def serve(app: ASGIApp, *, host: str, port: int, env: Mapping[str, str], grace: float) -> None:
    """Run ``app`` until stopped (SIGTERM/SIGINT: graceful, within ``grace`` seconds)."""
    server = uvicorn.Server(
        config(app, host=host, port=port, env=env, timeout_graceful_shutdown=int(grace))
    )
    server.run()
