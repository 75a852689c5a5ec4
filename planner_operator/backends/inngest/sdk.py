"""Inngest through its official SDK: configuration, the function set, the job handler, sync.

The function set is built from the applied jobs (the Inngest backend's table in the state
database), never from the files directly, so what is served is exactly what was applied.
The SDK copies the function list when ``serve()`` is called; ``build_app`` therefore makes a
fresh sub-app for every change, and ``asgi.SwappableApp`` puts it behind a stable entry point.

Sync is the SDK's own out-of-band registration: a ``PUT`` on the served endpoint makes the SDK
POST ``/fn/register`` to Inngest with the URL it is served at. Only the serving app may do that:
a sync from any other process (CI) registers *that* process's idea of the URL and replaces the
app's function set. So the serving app syncs itself (``sync_async``: the PUT in-process), and an
applier elsewhere asks it to (``request_sync``: the same PUT over HTTP to the serve URL, as the
Inngest dashboard's "resync" does). Either way the answer's *body* is checked (the SDK answers
200 even when Inngest refused the registration), and ``GET /v1/apps/{app}/functions`` is read
back: every function, its cron, and the URL Inngest will call (``registered_urls``).

The PUTs we send are signed as Inngest signs its requests, so ``INNGEST_ENABLE_UNAUTHED_SYNC=
false`` (the SDK then refuses unsigned sync requests) does not lock the product out of its sync.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlparse

import httpx
import inngest
import inngest.fast_api
from fastapi import FastAPI
from inngest._internal import transforms as _transforms
from starlette.types import ASGIApp

from planner_operator import errors
from planner_operator.backends.inngest import cron as inngest_cron
from planner_operator.core import clock as clock_mod
from planner_operator.core import specs, variables
from planner_operator.errors import AuthError
from planner_operator.state.served import ServedJob

SENTINEL_ID = "planner-operator-sentinel"
SENTINEL_EVENT = "planner-operator/sentinel"
MAX_FN_ID = 64


@dataclass(frozen=True)
class InngestConfig:
    """Everything the SDK needs, read from the SDK's own environment variables."""

    app_id: str
    production: bool
    api_base_url: str
    event_api_base_url: str
    signing_key: str | None = field(repr=False)
    event_key: str | None = field(repr=False)
    env: str | None
    serve_origin: str
    serve_path: str
    retries: int

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> InngestConfig:
        dev_url = variables.INNGEST_DEV.read(env)
        production = dev_url is None
        base = variables.INNGEST_BASE_URL.read(env) or dev_url
        api = variables.INNGEST_API_BASE_URL.read(env) or base or "https://api.inngest.com"
        events = variables.INNGEST_EVENT_API_BASE_URL.read(env) or base or "https://inn.gs"
        signing_key = variables.INNGEST_SIGNING_KEY.read(env)
        if production and not signing_key:
            raise AuthError(
                "Inngest production mode needs INNGEST_SIGNING_KEY (from the Inngest dashboard); "
                "set INNGEST_DEV=1 to use a dev server instead",
                backend="inngest",
            )
        if signing_key:
            hash_signing_key(signing_key)  # a malformed key is said plainly here, not mid-sync
        return cls(
            app_id=variables.INNGEST_APP_ID.read(env),
            production=production,
            api_base_url=api.rstrip("/"),
            event_api_base_url=events.rstrip("/"),
            signing_key=signing_key,
            event_key=variables.INNGEST_EVENT_KEY.read(env),
            env=variables.INNGEST_ENV.read(env),
            serve_origin=variables.INNGEST_SERVE_ORIGIN.read(env),
            serve_path=variables.INNGEST_SERVE_PATH.read(env),
            retries=variables.INNGEST_RETRIES.read(env),
        )

    def client(self, *, applied_version: int | None = None) -> inngest.Inngest:
        """The SDK client; ``applied_version`` becomes the app version sent at sync.

        Inngest skips a sync whose checksum it has seen (``modified: false``) and then does not
        re-initialise crons, which left crons unscheduled after a server restart. Sending the
        applied-state version makes every applied change a new checksum, so a repair sticks.
        """
        return inngest.Inngest(
            app_id=self.app_id,
            app_version=None if applied_version is None else f"applied-{applied_version}",
            is_production=self.production,
            api_base_url=self.api_base_url,
            event_api_base_url=self.event_api_base_url,
            signing_key=self.signing_key,
            event_key=self.event_key or ("NO_EVENT_KEY_SET" if not self.production else None),
            env=self.env,
        )

    @property
    def serve_url(self) -> str:
        """Where Inngest must call the app: the URL the serving app registers itself at."""
        return f"{self.serve_origin.rstrip('/')}{self.serve_path}"

    def bearer(self) -> dict[str, str]:
        """REST auth: sha256 of the hex-decoded signing key without its ``signkey-*-`` prefix."""
        if not self.signing_key:
            return {}
        return {"authorization": f"Bearer {hash_signing_key(self.signing_key)}"}

    def rest_headers(self) -> dict[str, str]:
        """Headers of our own REST calls: the bearer, and the environment as the SDK sends it at
        sync (``x-inngest-env``), so a branch environment reads back its own functions."""
        headers = self.bearer()
        if self.env:
            headers["x-inngest-env"] = self.env
        return headers


def hash_signing_key(key: str) -> str:
    """The SDK's own derivation (a non-hex key is a configuration error, said plainly)."""
    try:
        return str(_transforms.hash_signing_key(key))
    except ValueError:
        raise AuthError(
            "INNGEST_SIGNING_KEY is not a valid signing key: expected signkey-<env>-<hex> as "
            "the Inngest dashboard shows it, and the part after the prefix is not hex",
            backend="inngest",
        ) from None


_KEY_PREFIX = re.compile(r"^signkey-\w+-")


def signature(signing_key: str, body: bytes, at: int) -> str:
    """``X-Inngest-Signature`` as Inngest signs a request (``t=<unix s>&s=<hex>``): HMAC-SHA256
    keyed with the key's hex *text* after ``signkey-<env>-``, over the body then ``str(t)``. The
    body must already be canonical (JCS); an empty body is signed as it is (the SDK's rule)."""
    key = _KEY_PREFIX.sub("", signing_key, count=1)
    mac = hmac.new(key.encode(), body, hashlib.sha256)
    mac.update(str(at).encode())
    return f"t={at}&s={mac.hexdigest()}"


def sync_headers(config: InngestConfig, clock: clock_mod.Clock) -> dict[str, str]:
    """Headers of a sync PUT we send: signed with the signing key when there is one."""
    if not config.signing_key:
        return {}
    at = int(clock_mod.epoch(clock))
    return {"x-inngest-signature": signature(config.signing_key, b"", at)}


def function_id(key: str) -> str:
    """A stable, slug-safe Inngest function id for a resource key.

    ``<agent>--<job>`` when that is unambiguous (agent ids and job names are slugs); a hash of
    the key is appended when either part itself contains ``--`` or the id would be too long,
    so two keys never share a function.
    """
    agent, _, name = key.partition("/jobs/")
    slug = f"{agent}--{name}"
    if len(slug) <= MAX_FN_ID and "--" not in agent and "--" not in name:
        return slug
    digest = hashlib.sha256(key.encode()).hexdigest()[:8]
    return f"{slug[: MAX_FN_ID - 9].rstrip('-')}-{digest}"


def cron_of(spec: Mapping[str, Any]) -> str:
    """The cron trigger we sync for a job (day-of-week rewritten for robfig: ``cron.py``)."""
    return f"TZ={specs.timezone(spec)} {inngest_cron.for_robfig(str(spec['schedule']))}"


def parse_cron(cron: str) -> dict[str, str]:
    """``TZ=Europe/Berlin 0 9 * * 1`` -> {"timezone": ..., "schedule": ...}."""
    match = re.fullmatch(r"(?:(?:TZ|CRON_TZ)=(\S+)\s+)?(.+)", cron.strip())
    if match is None:  # pragma: no cover - the pattern matches any non-empty text
        return {"schedule": cron}
    return {"timezone": match.group(1) or "UTC", "schedule": " ".join(match.group(2).split())}


CRON_EVENT = "inngest/scheduled.timer"


@dataclass(frozen=True)
class Invocation:
    """One call of a job function in terms the job runner knows (``runtime.jobrun.DurableCall``).

    Built from the SDK's context, so nothing above this module touches the SDK. What the
    server sends for a cron fire (inngest/inngest ``executor/service.go``): event name
    ``inngest/scheduled.timer``, ``id`` = the scheduled time (RFC 3339), ``data.scheduledAt``
    (the slot) and ``data.fireAt`` (the slot plus any jitter, also the event ``ts``). The slot
    comes from ``scheduledAt``, else the id, and only the ``ts`` is left to a server that sends
    neither. A Rerun or Replay reuses that event under a new ``run_id``.
    """

    run_id: str
    attempt: int
    final: bool
    scheduled_at: datetime | None
    sent_at: datetime | None
    _ctx: inngest.Context

    @classmethod
    def of(cls, ctx: inngest.Context, *, max_attempts: int) -> Invocation:
        event = ctx.event
        sent = datetime.fromtimestamp(event.ts / 1000, UTC) if event.ts else None
        scheduled = None
        if event.name == CRON_EVENT:
            scheduled = _instant(event.data.get("scheduledAt")) or _instant(event.id) or sent
        final = ctx.attempt + 1 >= max_attempts
        return cls(ctx.run_id, ctx.attempt, final, scheduled, sent, ctx)

    async def step(self, name: str, fn: Callable[[], Awaitable[Any]]) -> Any:
        """``step.run``, with our permanent errors made Inngest's non-retriable error."""

        async def guarded() -> Any:
            try:
                return await fn()
            except Exception as exc:
                if not errors.retryable(exc):
                    raise inngest.NonRetriableError(str(exc)) from exc
                raise

        return await self._ctx.step.run(name, guarded)


def _instant(value: object) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


JobHandler = Callable[[str, Mapping[str, Any], Invocation], Awaitable[Any]]


def build_functions(
    client: inngest.Inngest,
    jobs: Sequence[ServedJob],
    config: InngestConfig,
    handler: JobHandler | None,
) -> list[inngest.Function[Any]]:
    """One cron function per enabled job; a sentinel when there are none (SDK can't sync 0)."""
    functions: list[inngest.Function[Any]] = []
    for job in jobs:
        if not specs.enabled(job.spec):
            continue  # paused: not registered (Inngest has no pause API)
        functions.append(_job_function(client, job, config, handler))
    if not functions:
        functions.append(_sentinel(client))
    return functions


def _job_function(
    client: inngest.Inngest, job: ServedJob, config: InngestConfig, handler: JobHandler | None
) -> inngest.Function[Any]:
    overlap = specs.overlap(job.spec)
    attempts = config.retries + 1  # what the server sends as ctx.max_attempts

    async def run(ctx: inngest.Context) -> Any:
        if handler is None:  # a sync-only function set (reconcile): never invoked
            raise inngest.NonRetriableError("this process does not run jobs")
        try:
            return await handler(job.key, job.spec, Invocation.of(ctx, max_attempts=attempts))
        except inngest.NonRetriableError:
            raise
        except inngest.StepError as exc:  # retries spent: a function retry only replays it
            raise inngest.NonRetriableError(str(exc)) from exc
        except Exception as exc:
            if not errors.retryable(exc):  # e.g. a template that cannot render
                raise inngest.NonRetriableError(str(exc)) from exc
            raise

    return client.create_function(
        fn_id=function_id(job.key),
        name=job.key,
        trigger=inngest.TriggerCron(cron=cron_of(job.spec)),
        retries=config.retries,
        singleton=inngest.Singleton(mode="skip") if overlap == "skip" else None,
    )(run)


def _sentinel(client: inngest.Inngest) -> inngest.Function[Any]:
    async def noop(ctx: inngest.Context) -> None:
        return None

    return client.create_function(
        fn_id=SENTINEL_ID,
        name="planner-operator (no jobs)",
        trigger=inngest.TriggerEvent(event=SENTINEL_EVENT),
    )(noop)


def build_app(
    client: inngest.Inngest, functions: list[inngest.Function[Any]], config: InngestConfig
) -> FastAPI:
    app = FastAPI()
    inngest.fast_api.serve(
        app, client, functions, serve_origin=config.serve_origin, serve_path=config.serve_path
    )
    return app


@dataclass(frozen=True)
class SyncResult:
    ok: bool
    modified: bool | None
    error: str | None
    reached: bool = True  # False: nothing answered at the serve URL


def sync_answer(status: int, raw: bytes) -> SyncResult:
    """What a sync PUT's answer says: the SDK's body is the register reply, whatever the status."""
    try:
        body = json.loads(raw) if raw else None
    except ValueError:
        body = None
    if not isinstance(body, dict):
        return SyncResult(False, None, f"sync answered {status} without JSON")
    error = body.get("error") or body.get("message")
    if status >= 400 or error or body.get("ok") is False:
        return SyncResult(False, None, str(error or f"status {status}"))
    modified = body.get("modified")
    return SyncResult(True, bool(modified) if modified is not None else None, None)


async def sync_async(
    app: ASGIApp, config: InngestConfig, *, clock: clock_mod.Clock = clock_mod.SYSTEM
) -> SyncResult:
    """The serving app's own sync: PUT its endpoint in-process, signed, then check the body."""
    transport = httpx.ASGITransport(app=app)
    origin = urlparse(config.serve_origin)
    base = f"{origin.scheme}://{origin.netloc}"
    async with httpx.AsyncClient(transport=transport, base_url=base, timeout=60) as http:
        response = await http.put(config.serve_path, headers=sync_headers(config, clock))
    return sync_answer(response.status_code, response.content)


CONNECT_RETRIES = (0.5, 1.0, 2.0)  # seconds between tries while nothing listens at the serve URL


def request_sync(
    config: InngestConfig, *, clock: clock_mod.Clock = clock_mod.SYSTEM, timeout: float = 60.0
) -> SyncResult:
    """Ask the serving app at ``config.serve_url`` to sync itself (an applier elsewhere, e.g. CI).

    The PUT is the one Inngest's dashboard sends to resync an app, signed as Inngest signs; the
    serving app rebuilds its functions from the shared served-job table and registers them at
    the URL it is served at. Nothing here talks to Inngest's register endpoint. A refused
    connection is tried again a few times (``run`` applies while its own server is starting).
    """
    waits = iter(CONNECT_RETRIES)
    while True:
        try:
            response = httpx.put(
                config.serve_url, headers=sync_headers(config, clock), timeout=timeout
            )
        except httpx.ConnectError as exc:  # nothing listens (yet)
            wait = next(waits, None)
            if wait is None:
                return SyncResult(False, None, f"{type(exc).__name__}: {exc}", reached=False)
            clock.sleep(wait)
        except httpx.HTTPError as exc:  # no answer in time, or a broken one
            return SyncResult(False, None, f"{type(exc).__name__}: {exc}", reached=False)
        else:
            return sync_answer(response.status_code, response.content)
