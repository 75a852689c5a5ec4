"""The boundary to the ``composio`` SDK: configuration, the client, and error translation.

Everything that knows the SDK's types lives here, so a new SDK version is checked in one place.
The SDK is imported lazily (it takes seconds to import), and the client is built so that:

* every HTTP attempt, the SDK's own retries included, passes the request budget
  (``ratelimit.LimitedTransport`` given to the SDK as its ``http_client``);
* nothing leaves for any host but the configured API: the transport refuses other origins, and
  the SDK's telemetry is switched off globally (:func:`disable_telemetry`);
* SDK and HTTP failures become our error types (:func:`sdk_errors`), and the API key is never
  part of a message.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from planner_operator.backends import ratelimit
from planner_operator.backends.base import RemoteObject, RemoteState
from planner_operator.core import canonical, variables
from planner_operator.core import clock as clock_mod
from planner_operator.errors import (
    AuthError,
    BackendError,
    Conflict,
    NotFound,
    PermanentError,
    PlannerError,
    RetryableError,
)

NAME = "composio"
DEFAULT_BASE_URL = variables.COMPOSIO_BASE_URL.default


@dataclass(frozen=True)
class ComposioConfig:
    api_key: str = field(repr=False)
    base_url: str = DEFAULT_BASE_URL
    budget: ratelimit.Budget = field(default_factory=ratelimit.Budget)
    timeout: float = variables.COMPOSIO_TIMEOUT.default
    max_retries: int = 2  # the SDK's default; every attempt is counted by the limiter

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> ComposioConfig:
        key = variables.COMPOSIO_API_KEY.read(env)
        if not key:
            raise AuthError(
                "COMPOSIO_API_KEY is not set: create a project API key in the Composio dashboard "
                "and export it (or set PLANNER_TRIGGER_BACKEND=local for the embedded backend)",
                backend=NAME,
            )
        base = variables.COMPOSIO_BASE_URL.read(env)
        url = httpx.URL(base)
        loopback = url.host in ("127.0.0.1", "localhost", "::1")
        if url.scheme != "https" and not (url.scheme == "http" and loopback):
            raise variables.COMPOSIO_BASE_URL.error(base, "must be https:// (http only locally)")
        timeout = variables.COMPOSIO_TIMEOUT.read(env)
        return cls(key, base, ratelimit.Budget.from_env(env), timeout)


def disable_telemetry() -> None:
    """Drop the SDK's usage events, in every thread.

    Traced SDK methods call ``push_event`` (imported by name into composio/core/models/base.py),
    which starts a thread posting to Composio's telemetry host. ``allow_tracking=False`` is a
    ContextVar, so other threads do not see it; replacing the name is the global switch.
    """
    from composio.core.models import base as sdk_base

    sdk_base.push_event = _drop_event  # type: ignore[attr-defined]


def _drop_event(event: object) -> None:
    """The operator sends nothing anywhere but the configured API."""


def open_client(config: ComposioConfig, limiter: ratelimit.RateLimiter) -> Any:
    """The SDK client, with every request going through ``limiter`` to ``config.base_url`` only."""
    disable_telemetry()
    from composio import Composio

    transport = ratelimit.LimitedTransport(
        httpx.HTTPTransport(), limiter, origin=config.base_url, name=NAME
    )
    sdk: Any = Composio  # its TypedDict types ``timeout`` as int; the client takes seconds
    return sdk(
        api_key=config.api_key,
        base_url=config.base_url,
        allow_tracking=False,
        http_client=httpx.Client(transport=transport),
        timeout=config.timeout,
        max_retries=config.max_retries,
        toolkit_versions="latest",
    )


@contextlib.contextmanager
def sdk_errors(
    what: str, *, api_key: str = "", clock: clock_mod.Clock = clock_mod.SYSTEM
) -> Iterator[None]:
    """Translate SDK and HTTP failures into our error tree (the key never reaches a message).

    ``clock`` turns an HTTP-date ``Retry-After`` into a delay."""
    import composio_client as cc
    from composio.exceptions import ComposioError

    try:
        yield
    except PlannerError:
        raise
    except cc.APIStatusError as exc:
        raise _status_error(what, exc, api_key, clock) from exc
    except cc.APIConnectionError as exc:
        why = "timed out" if isinstance(exc, cc.APITimeoutError) else "could not connect"
        raise RetryableError(f"{what}: {why} talking to Composio", backend=NAME) from exc
    except PermissionError as exc:  # the transport refusing a foreign host
        raise PermanentError(f"{what}: {exc}", backend=NAME) from exc
    except (ComposioError, cc.ComposioError) as exc:
        raise PermanentError(f"{what}: {_redact(str(exc), api_key)}", backend=NAME) from exc


def _status_error(what: str, exc: Any, api_key: str, clock: clock_mod.Clock) -> BackendError:
    status: int = exc.status_code
    details = exc.details or {}
    message = _redact(str(details.get("message") or exc.message), api_key)
    ref = f" (request {exc.request_id})" if exc.request_id else ""
    if status in (401, 403):
        return AuthError(
            f"{what}: Composio rejected COMPOSIO_API_KEY ({status}: {message}); check that the key "
            "is current and belongs to the project that holds the triggers",
            backend=NAME,
            status=status,
        )
    if status == 404:
        return NotFound(f"{what}: {message}", backend=NAME, status=status)
    if status == 409:
        return Conflict(f"{what}: {message}{ref}", backend=NAME, status=status)
    if status in (408, 429) or status >= 500:
        pause = ratelimit.parse_retry_after(exc.response.headers, now_wall=clock_mod.epoch(clock))
        return RetryableError(
            f"{what}: {status} {message}{ref}", backend=NAME, status=status, retry_after=pause
        )
    if "ConnectedAccount" in str(details.get("slug", "")):
        message += "; check `connected_account`/`user_id` in the agent file, or connect it first"
    return PermanentError(f"{what}: {message}{ref}", backend=NAME, status=status)


def _redact(text: str, secret: str) -> str:
    return text.replace(secret, "***") if secret else text


# -- the shape of a trigger instance in ``GET /trigger_instances/active`` ---------------------


def item_field(item: Any, name: str) -> Any:
    """A field of an active item, by its snake_case name or the camelCase duplicate."""
    camel = "".join(p.capitalize() if i else p for i, p in enumerate(name.split("_")))
    extra = getattr(item, "model_extra", None) or {}
    for key in (name, camel):
        value = getattr(item, key, None)
        value = extra.get(key) if value is None else value
        if value is not None:
            return value
    return None


@dataclass(frozen=True)
class Account:
    """A connected account as the checks need it (``GetV31ConnectedAccountsByNanoidResponse``)."""

    id: str
    status: str  # INITIALIZING INITIATED ACTIVE FAILED EXPIRED INACTIVE REVOKED
    toolkit: str
    user_id: str
    is_disabled: bool = False

    @property
    def usable(self) -> bool:
        return self.status == "ACTIVE" and not self.is_disabled

    @property
    def problem(self) -> str:
        """Why triggers on it cannot run ("" when they can)."""
        if self.is_disabled:
            return f"connected account {self.id} is disabled in Composio: enable it"
        if self.status != "ACTIVE":
            return f"connected account {self.id} is {self.status}: reconnect it in Composio"
        return ""

    @classmethod
    def of(cls, found: Any) -> Account:
        status = getattr(found, "status", None)
        toolkit = getattr(getattr(found, "toolkit", None), "slug", "")
        return cls(
            id=str(found.id),
            status=str(getattr(status, "value", status) or ""),
            toolkit=str(toolkit or ""),
            user_id=str(getattr(found, "user_id", "") or ""),
            is_disabled=bool(getattr(found, "is_disabled", False)),
        )


def to_remote(item: Any, account: Account | None = None) -> RemoteObject:
    """An active item as the planner sees it.

    The API says *when* an instance was disabled (``disabled_at``), never why: there is no
    ``disabled_reason`` in ``GetV31TriggerInstancesActiveItems``. So the reason is derived: a
    disabled instance whose connected account (``account``, when the caller looked it up) is not
    usable is ``error`` with the account's problem, which plan notes and status show and which
    keeps reconcile from re-enabling it into the same wall; otherwise it is plainly ``disabled``
    (by someone, or by Composio for a failing poller, which the ``composio.trigger.disabled``
    event tells the receiver). ``enabled: false`` in the spec still lets the planner re-enable.
    """
    disabled = bool(item_field(item, "disabled_at"))
    reason = account.problem if disabled and account is not None else ""
    spec = {
        "event": item_field(item, "trigger_name"),
        "config": dict(item_field(item, "trigger_config") or {}),
        "enabled": not disabled,
    }
    state: RemoteState = ("error" if reason else "disabled") if disabled else "active"
    return RemoteObject(str(item.id), "trigger", spec, None, state, reason or None)


def observed(spec: Mapping[str, Any], enabled: bool) -> dict[str, Any]:
    return {"event": spec["event"], "config": dict(spec.get("config") or {}), "enabled": enabled}


def fixed_changes(item: Any, spec: Mapping[str, Any]) -> list[str]:
    """Fields of ``spec`` that differ from what the instance was created with."""
    config = canonical.canonical_json(spec.get("config") or {})
    pairs = [
        ("event", spec.get("event"), item_field(item, "trigger_name")),
        ("config", config, canonical.canonical_json(item_field(item, "trigger_config") or {})),
        (
            "connected_account",
            spec.get("connected_account"),
            item_field(item, "connected_account_id"),
        ),
        ("user_id", spec.get("user_id"), item_field(item, "user_id")),
    ]
    return [name for name, want, have in pairs if want is not None and want != have]
