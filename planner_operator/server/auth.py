"""Who may call the HTTP API: one bearer token, checked in one place for every route.

The operator can start chats and workflows on the agent platform, so a write (run now, test a
trigger, run a workflow) always needs the token, like Jupyter's and Argo CD's. Reads are open on
a loopback bind, where only this machine's users can connect, and need the token as soon as the
server listens anywhere else.

The check is an ASGI middleware, not a per-router dependency, so a route somebody adds later is
protected by default (deny unless exempt). Exempt are only the endpoints that carry their own
proof: the webhook receivers and the git push hook (HMAC signatures), the Inngest endpoint (its
signing key) and ``/healthz`` (liveness, reveals nothing).

Browsers use a session cookie whose value is an HMAC of an expiry under the token, so rotating
the token logs every browser out and the cookie itself never holds the token. A cookie is
ambient (the browser attaches it), so cookie-authenticated writes must also come from our own
origin (Origin or Referer matches Host): the CSRF check. Tokens are compared in constant time,
never read from query strings (they would land in proxy logs), and never logged or echoed.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import ipaddress
import logging
import os
import re
import secrets
import stat
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from fastapi import FastAPI, Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from planner_operator.core import clock as clock_mod
from planner_operator.core import settings as settings_mod
from planner_operator.core import variables
from planner_operator.core.settings import Settings
from planner_operator.errors import AuthError, StateError

log = logging.getLogger("planner_operator.server.auth")

ENV_TOKEN = variables.API_TOKEN.name
TOKEN_FILE = settings_mod.API_TOKEN_FILE
COOKIE_NAME = "planner_session"
SESSION_MAX_AGE = 12 * 3600  # seconds; the browser forgets it sooner when closed
DASHBOARD_PREFIX = "/planner"
LOGIN_PATH = "/planner/login"
LOGOUT_PATH = "/planner/logout"
STATIC_PREFIX = "/planner/static/"  # stylesheets for the login page; nothing secret
SCHEME_NAME = "bearerAuth"  # the OpenAPI security scheme
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
EXEMPT_PATHS = frozenset({"/healthz", "/hooks/git"})
EXEMPT_PREFIXES = ("/webhooks/",)
_SESSION_LABEL = b"planner-operator dashboard session v1|"
_EXPIRY = re.compile(r"[0-9]{1,12}")  # Unix seconds; [0-9], not \d (other scripts' digits)


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and localhost; anything else (0.0.0.0, a name) is exposed."""
    host = host.strip().strip("[]").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class ApiToken:
    """The token and where it lives (``where`` is safe to show: a variable name or a path)."""

    value: str = field(repr=False)
    where: str
    created: bool = False

    def matches(self, presented: str | None) -> bool:
        """Constant time, and by digest so the comparison leaks not even the length."""
        if not presented:
            return False
        ours = hashlib.sha256(self.value.encode()).digest()
        theirs = hashlib.sha256(presented.encode("utf-8", "surrogateescape")).digest()
        return hmac.compare_digest(ours, theirs)

    def session(self, now: float) -> str:
        """A cookie value: ``<expiry>.<HMAC(token, label|expiry)>`` (``now``: Unix time)."""
        expires = int(now) + SESSION_MAX_AGE
        return f"{expires}.{self._mac(expires)}"

    def session_valid(self, value: str | None, now: float) -> bool:
        """Whether a cookie value is a live session; any other value is just not one.

        The expiry is checked as ASCII digits of bounded length before ``int``: ``str.isdigit``
        is true for ``"\xb2"`` (superscript two) and ``int`` refuses over 4,300 digits, and
        either ``ValueError`` used to escape as a 500 to an unauthenticated client.
        """
        expires, _, mac = (value or "").partition(".")
        if not _EXPIRY.fullmatch(expires) or int(expires) <= now:
            return False
        presented = mac.encode("utf-8", "surrogateescape")
        return hmac.compare_digest(self._mac(int(expires)).encode(), presented)

    def _mac(self, expires: int) -> str:
        label = _SESSION_LABEL + str(expires).encode()
        return hmac.new(self.value.encode(), label, hashlib.sha256).hexdigest()


def load_token(settings: Settings, env: Mapping[str, str]) -> ApiToken:
    """``$PLANNER_API_TOKEN``, else ``<state_dir>/api-token``, created (0600) on first start.

    Raises ``AuthError`` for a variable that is set but empty (a deploy mistake that must not
    silently fall back to a file nobody knows about) and ``StateError`` for a file others can
    read or that cannot be written.
    """
    value = variables.API_TOKEN.read(env)  # "" when set but empty
    if value is not None:
        if not value:
            raise AuthError(
                f"{ENV_TOKEN} is set but empty: set it to a long random value (e.g. "
                "`python -c 'import secrets; print(secrets.token_urlsafe(32))'`), or unset it to "
                f"use the generated token in {settings.api_token_file}",
                backend="api",
            )
        return ApiToken(value, f"the environment variable {ENV_TOKEN}")
    path = settings.api_token_file
    created = False
    if not path.exists():
        created = _create_token_file(path)
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise StateError(
            f"{path} is readable by other users (mode {stat.S_IMODE(mode):o}): delete it (a new "
            f"token is generated at the next start) or `chmod 600 {path}`"
        )
    value = path.read_text(encoding="utf-8").strip()
    if not value:
        raise StateError(f"{path} is empty: delete it and a new token is generated at start")
    return ApiToken(value, f"the file {path} (or set {ENV_TOKEN})", created)


def _create_token_file(path: Path) -> bool:
    """Write a new token private from its first byte and publish it with ``link``, which fails
    when another process won the race (then its token is the one; False)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            os.fchmod(out.fileno(), 0o600)  # O_CREAT's mode is masked by umask; be exact
            out.write(secrets.token_urlsafe(32) + "\n")
        os.link(tmp, path)
    except FileExistsError:
        return False
    except OSError as exc:
        raise StateError(f"cannot create the API token file {path}: {exc}") from exc
    finally:
        tmp.unlink(missing_ok=True)
    return True


class Need(enum.Enum):
    """What a request must prove, decided from its method and route group alone."""

    NOTHING = "nothing"  # exempt: own signature, or liveness
    SAME_ORIGIN = "same-origin"  # login/logout forms: no token yet, but no cross-site posts
    TOKEN_IF_PRESENTED = "token-if-presented"  # open read on loopback; a wrong token still fails
    TOKEN = "token"


@dataclass(frozen=True)
class Guard:
    token: ApiToken
    loopback: bool
    exempt_paths: frozenset[str] = EXEMPT_PATHS
    exempt_prefixes: tuple[str, ...] = EXEMPT_PREFIXES
    clock: clock_mod.Clock = clock_mod.SYSTEM  # session cookies expire on this clock

    @classmethod
    def create(
        cls,
        token: ApiToken,
        *,
        bind_host: str,
        exempt: Iterable[str] = (),
        clock: clock_mod.Clock = clock_mod.SYSTEM,
    ) -> Guard:
        """The guard for a server listening on ``bind_host``; logs where the token is."""
        if token.created:
            log.info("API token: %s not set; generated a token in %s", ENV_TOKEN, token.where)
        else:
            log.info("API token: using %s", token.where)
        loopback = is_loopback(bind_host)
        if not loopback:
            log.info("bound to %s (not loopback): every API request needs the token", bind_host)
        return cls(token, loopback, EXEMPT_PATHS | frozenset(exempt), clock=clock)

    def need(self, method: str, path: str) -> Need:
        if path in self.exempt_paths or path.startswith(self.exempt_prefixes):
            return Need.NOTHING
        if path in (LOGIN_PATH, LOGOUT_PATH):
            return Need.NOTHING if method in READ_METHODS else Need.SAME_ORIGIN
        if path.startswith(STATIC_PREFIX) and method in READ_METHODS:
            return Need.NOTHING
        if method in READ_METHODS and self.loopback:
            return Need.TOKEN_IF_PRESENTED
        return Need.TOKEN

    def credential(self, request: Request) -> str | None:
        """ "bearer", "cookie", None (nothing presented) or "invalid" (a wrong bearer token).

        A presented bearer token decides alone, so a wrong one fails even next to a valid
        cookie. Query strings are never looked at."""
        header = request.headers.get("authorization")
        if header is not None:
            scheme, _, presented = header.partition(" ")
            ok = scheme.lower() == "bearer" and self.token.matches(presented.strip())
            return "bearer" if ok else "invalid"
        cookie = request.cookies.get(COOKIE_NAME)
        if cookie is not None and self.token.session_valid(cookie, clock_mod.epoch(self.clock)):
            return "cookie"
        return None

    def denial(self, request: Request) -> Response | None:
        """The answer that stops ``request``, or None to let it through.

        Reads the path and scheme from the ASGI scope, not ``request.url``: building the URL
        parses the Host header, and a Host of ``[`` raised ``ValueError`` there."""
        need = self.need(request.method, request.scope["path"])
        if need is Need.NOTHING:
            return None
        try:
            if need is Need.SAME_ORIGIN:
                return _forbidden(cross_origin(request))
            credential = self.credential(request)
            if credential == "invalid":
                return self._unauthorized(request, "the bearer token is not valid", invalid=True)
            if credential is None and need is Need.TOKEN:
                return self._unauthorized(request, "authentication required", invalid=False)
            if credential == "cookie" and request.method not in READ_METHODS:
                return _forbidden(cross_origin(request))
        except MalformedHeader as exc:
            return JSONResponse({"detail": str(exc)}, 400)
        return None

    def _unauthorized(self, request: Request, what: str, *, invalid: bool) -> Response:
        if (
            request.method == "GET"
            and request.scope["path"].startswith(DASHBOARD_PREFIX + "/")
            and "text/html" in request.headers.get("accept", "")
        ):
            target = quote(request.scope["path"], safe="/")
            return RedirectResponse(f"{LOGIN_PATH}?next={target}", status_code=303)
        challenge = 'Bearer realm="planner-operator"'
        if invalid:
            challenge += ', error="invalid_token"'
        detail = (
            f"{what}: send the header `Authorization: Bearer <token>`; the token is in "
            f"{self.token.where}"
        )
        return JSONResponse({"detail": detail}, 401, headers={"WWW-Authenticate": challenge})


class MalformedHeader(ValueError):
    """A header the guard must read is not in a form it can judge (answered 400, never 500)."""


def cross_origin(request: Request) -> str | None:
    """Why ``request`` may come from another site, or None when it is provably our own.

    Browsers send Origin on every cross-site POST (Referer as the older fallback); a script
    on another site cannot forge either, nor add X-Forwarded-Host without a CORS preflight,
    which this server never grants. Raises :class:`MalformedHeader` for an Origin or Referer
    that is not a URL (``http://[``): refused, but as the client's error, not ours."""
    scheme = str(request.scope.get("scheme") or "http")
    ours = {
        _authority(scheme, value)
        for value in (request.headers.get("host"), request.headers.get("x-forwarded-host"))
        if value
    }
    origin = request.headers.get("origin")
    name, sent = ("Origin", origin) if origin else ("Referer", request.headers.get("referer"))
    if not sent:
        return "neither an Origin nor a Referer header: cannot rule out a cross-site request"
    if sent == "null":
        return "the Origin header is null (a sandboxed or privacy-redirected page)"
    try:
        parts = urlsplit(sent)
        netloc = parts.netloc
        parts.port  # noqa: B018 -- validates the port the authority carries (ValueError if not)
    except ValueError:
        raise MalformedHeader(f"the {name} header is not a URL") from None
    if _authority(parts.scheme, netloc) in ours:
        return None
    return f"the {name} header ({parts.scheme}://{netloc}) does not match this server's Host"


def _authority(scheme: str, netloc: str) -> str:
    netloc = netloc.strip().lower()
    default = {"http": ":80", "https": ":443"}.get(scheme.lower())
    return netloc[: -len(default)] if default and netloc.endswith(default) else netloc


def _forbidden(reason: str | None) -> Response | None:
    if reason is None:
        return None
    detail = f"cross-site request refused: {reason}; use `Authorization: Bearer <token>` instead"
    return JSONResponse({"detail": detail}, 403)


class AuthMiddleware:
    """Pure ASGI (no BaseHTTPMiddleware): exempt webhook traffic pays one set lookup."""

    def __init__(self, app: ASGIApp, guard: Guard) -> None:
        self.app = app
        self.guard = guard

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # Exempt traffic (webhooks) is decided from the scope alone: no Request, no URL parse.
        if scope["type"] == "http" and self.guard.need(scope["method"], scope["path"]) is not (
            Need.NOTHING
        ):
            try:
                denial = self.guard.denial(Request(scope))
            except Exception as exc:  # fail closed, as the client's error: never a 500
                log.warning("auth: refused a request the guard could not read (%s)", exc)
                denial = JSONResponse({"detail": "malformed request headers"}, 400)
            if denial is not None:
                await denial(scope, receive, send)
                return
        await self.app(scope, receive, send)


def install(app: FastAPI, guard: Guard) -> None:
    """Protect every route of ``app`` and show the scheme, 401 and 403 in its OpenAPI."""
    app.state.auth = guard
    app.add_middleware(AuthMiddleware, guard=guard)

    original = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document(original(), guard)  # FastAPI caches the dict it returns; amend it once
        assert app.openapi_schema is not None
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


_PROBLEM = {
    "type": "object",
    "properties": {"detail": {"type": "string"}},
    "required": ["detail"],
}


def document(schema: dict[str, Any], guard: Guard) -> None:
    """Add the bearer scheme and, per operation, what the guard will demand of it."""
    components = schema.setdefault("components", {})
    components.setdefault("securitySchemes", {})[SCHEME_NAME] = {
        "type": "http",
        "scheme": "bearer",
        "description": f"The API token: {ENV_TOKEN}, else the file <state-dir>/{TOKEN_FILE}.",
    }
    for path, operations in schema.get("paths", {}).items():
        for method, operation in operations.items():
            need = guard.need(method.upper(), path)
            if need in (Need.NOTHING, Need.SAME_ORIGIN):
                continue
            optional = need is Need.TOKEN_IF_PRESENTED
            operation["security"] = [{}, {SCHEME_NAME: []}] if optional else [{SCHEME_NAME: []}]
            responses = operation.setdefault("responses", {})
            content = {"application/json": {"schema": _PROBLEM}}
            responses.setdefault(
                "401", {"description": "Missing or invalid bearer token.", "content": content}
            )
            if method.upper() not in READ_METHODS:
                responses.setdefault(
                    "403",
                    {
                        "description": "Cookie session from another origin (CSRF).",
                        "content": content,
                    },
                )


# -- helpers for the dashboard (login form, logout button, templates) ---------------------------


def _guard(request: Request) -> Guard:
    guard: Guard = request.app.state.auth
    return guard


def is_authenticated(request: Request) -> bool:
    """A valid bearer token or session cookie came with ``request``."""
    return _guard(request).credential(request) in ("bearer", "cookie")


def reads_need_token(request: Request) -> bool:
    """False on a loopback bind, where pages are visible without logging in."""
    return not _guard(request).loopback


def token_location(request: Request) -> str:
    """Where the token is, for the login page ("the file ... (or set ...)"); never the value."""
    return _guard(request).token.where


def login_response(
    request: Request,
    presented_token: str | None,
    redirect_to: str = DASHBOARD_PREFIX + "/",
    *,
    failure: Response | None = None,
) -> Response:
    """After a login form post: 303 to ``redirect_to`` with the session cookie when the token
    is right; else ``failure`` (your login page with a message; give it status 401) or a plain
    401 page. ``redirect_to`` is used only if it is a path on this server (no open redirect)."""
    guard = _guard(request)
    if not guard.token.matches(presented_token):
        log.warning("dashboard login refused (wrong token) from %s", _client(request))
        if failure is not None:
            return failure
        return HTMLResponse(
            "<!doctype html><title>Login failed</title><p>That token is not valid. It is in "
            f'{_escape(guard.token.where)}.</p><p><a href="{LOGIN_PATH}">Try again</a></p>',
            status_code=401,
        )
    response = RedirectResponse(safe_redirect(redirect_to), status_code=303)
    response.set_cookie(
        COOKIE_NAME,
        guard.token.session(clock_mod.epoch(guard.clock)),
        max_age=SESSION_MAX_AGE,
        path="/",
        httponly=True,
        samesite="strict",
        secure=request.scope.get("scheme") == "https",
    )
    return response


def logout_response(request: Request, redirect_to: str = LOGIN_PATH) -> Response:
    """303 to ``redirect_to`` (a local path) with the session cookie cleared."""
    response = RedirectResponse(safe_redirect(redirect_to, LOGIN_PATH), status_code=303)
    response.delete_cookie(
        COOKIE_NAME,
        path="/",
        httponly=True,
        samesite="strict",
        secure=request.scope.get("scheme") == "https",
    )
    return response


def safe_redirect(target: str | None, default: str = DASHBOARD_PREFIX + "/") -> str:
    """``target`` when it is a local absolute path, else ``default``."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")):
        return default
    parts = urlsplit(target)
    return default if parts.scheme or parts.netloc else target


def _client(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
