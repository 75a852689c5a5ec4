"""Which ``Host`` names the server answers to: the defence against DNS rebinding.

On a loopback bind reads need no token (``auth.py``), which is safe only while the only clients
are this machine's users. A web page on another site can still reach ``127.0.0.1``: it makes its
own name resolve to 127.0.0.1 (DNS rebinding), and the browser then treats the operator as that
site, same-origin, and lets the page read run history (rendered messages with email subjects and
senders), triggers, inbox and metrics. What the page cannot change is the ``Host`` header: it is
the attacker's name. So every request must name this server: loopback names by default, the
names in ``PLANNER_ALLOWED_HOSTS`` when they are set (the public name a load balancer, Composio or
Inngest uses). Anything else is answered 421 Misdirected Request, a missing or malformed ``Host``
400; neither reaches a route, the token check or a log line per request.

Patterns: ``operator.example.com`` (that name), ``.example.com`` (that domain and every name
under it), ``*`` (any name: only behind a proxy that checks ``Host`` itself). A port never
matters; loopback names are always allowed, so ``curl localhost`` keeps working on the machine.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from fastapi import FastAPI
from starlette.types import ASGIApp, Receive, Scope, Send

from planner_operator.core import variables

log = logging.getLogger("planner_operator.server.hosts")

LOOPBACK_NAMES = ("localhost", "127.0.0.1", "[::1]")
_HOSTNAME = re.compile(r"[a-z0-9_](?:[a-z0-9_.-]{0,251}[a-z0-9_])?")  # names and IPv4 alike


@dataclass(frozen=True)
class AllowedHosts:
    names: frozenset[str] = frozenset()
    domains: tuple[str, ...] = ()  # ".example.com" patterns, kept with their leading dot
    any_host: bool = False

    @classmethod
    def parse(cls, patterns: Iterable[str]) -> AllowedHosts:
        names: set[str] = set()
        domains: list[str] = []
        any_host = False
        for raw in patterns:
            pattern = raw.strip().lower().rstrip(".")
            if not pattern:
                continue
            if pattern == "*":
                any_host = True
            elif pattern.startswith("."):
                domains.append(pattern)
            else:
                names.add(_name(pattern) or pattern)
        return cls(frozenset(names), tuple(domains), any_host)

    def shown(self) -> str:
        if self.any_host:
            return "any name (*)"
        return ", ".join([*LOOPBACK_NAMES, *sorted(self.names), *self.domains])

    def refusal(self, host: str | None) -> tuple[int, str] | None:
        """``(status, reason)`` for a ``Host`` header this server must not answer, else None."""
        if not host:
            return 400, "the request has no Host header"
        name = _name(host)
        if name is None:
            return 400, "the Host header is not a host name"
        if self.any_host or _loopback(name) or name in self.names:
            return None
        if any(name.endswith(d) or name == d[1:] for d in self.domains):
            return None
        return 421, (
            f"this server does not answer to the host name {name!r}; it answers to "
            f"{self.shown()}. If that is this server's name, add it to PLANNER_ALLOWED_HOSTS"
        )


def _name(host: str) -> str | None:
    """The host name of a ``Host`` value, lowercased, without port or trailing dot; None when
    it is not one (bytes a name cannot hold, an unbalanced IPv6 bracket, a bad port)."""
    host = host.strip().lower()
    if host.startswith("["):
        end = host.find("]")
        if end < 0:
            return None
        name, rest = host[: end + 1], host[end + 1 :]
        try:
            ipaddress.IPv6Address(name[1:-1])
        except ValueError:
            return None
    else:
        name, sep, port = host.partition(":")
        rest = sep + port
        name = name.rstrip(".")
        if not _HOSTNAME.fullmatch(name):
            return None
    if rest and not (rest[1:].isdigit() and len(rest) <= 6):
        return None
    return name


def _loopback(name: str) -> bool:
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name.strip("[]")).is_loopback
    except ValueError:
        return False


class HostMiddleware:
    """Pure ASGI, outermost: a refused request costs one header scan and one small answer."""

    def __init__(self, app: ASGIApp, allowed: AllowedHosts) -> None:
        self.app = app
        self.allowed = allowed

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        host = None
        for name, value in scope["headers"]:
            if name == b"host":
                host = value.decode("latin-1")
                break
        refused = self.allowed.refusal(host)
        if refused is None:
            await self.app(scope, receive, send)
            return
        status, reason = refused
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
            return
        body = json.dumps({"detail": reason, "error": reason}).encode()
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


def startup_note(allowed: AllowedHosts, *, bind_host: str, configured: bool) -> None:
    """Say once at start what the server answers to, loudest where it will surprise."""
    from planner_operator.server import auth

    if not configured and not auth.is_loopback(bind_host):
        log.warning(
            "bound to %s, but PLANNER_ALLOWED_HOSTS is not set: only requests for %s are "
            "answered (others get 421). Set it to the names clients, Composio and Inngest use "
            "(e.g. operator.example.com)",
            bind_host,
            ", ".join(LOOPBACK_NAMES),
        )
    else:
        log.info("answering requests for host names: %s", allowed.shown())


def install(app: FastAPI, env: Mapping[str, str], *, bind_host: str) -> AllowedHosts:
    """Refuse requests for other names before any other middleware sees them (call it after
    the others: Starlette runs the middleware added last first)."""
    patterns = variables.ALLOWED_HOSTS.read(env)
    allowed = AllowedHosts.parse(patterns)
    startup_note(allowed, bind_host=bind_host, configured=bool(patterns))
    app.add_middleware(HostMiddleware, allowed=allowed)
    return allowed
