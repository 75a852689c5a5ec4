"""A protocol-faithful fake Inngest server: what the Inngest backend's tests run against.

No real Inngest server can run here (see the reference), so the product is tested by driving the
real ``inngest`` SDK (0.5.19) against this fake. It must therefore speak the SDK's wire format
exactly; every shape below names its source. Abbreviations: **R** = the team reference
``/work/shared/reference/inngest.md`` (section in quotes); **SDK** = ``inngest/_internal/`` of the
installed SDK; **GO** = the open-source server, github.com/inngest/inngest.

``POST /fn/register[?deployId=]`` (R "Sync (registration)")
    Body: SDK ``server_lib/registration.py`` ``SynchronizeRequest`` as sent by
    ``comm_lib/handler.py`` ``Syncer._create_out_of_band_request`` (``deep_strip_none``-ed,
    ``appname``, ``functions[].steps.step.runtime.url`` = ``<serve url>?fnId=..&stepId=step``).
    Validated minimally (function ids, triggers, step runtime URLs) and crons exactly as the
    server does (``robfig_cron.py``: robfig/cron's parser, day-of-week 0-6, no ``@hourly``; one
    bad cron fails the whole sync); garbage gets 400 ``{"error": msg}``. An empty function
    list is accepted and archives everything (R).
    Auth (production only): the SDK sends ``Bearer <sha256(hex-decoded key, prefix removed)>``
    (SDK ``net.py`` ``fetch_with_auth_fallback_sync`` + ``transforms.hash_signing_key``). Also
    accepted: that hash behind the ``signkey-<env>-`` prefix (R: "accept both") and the raw key
    (the REST docs' form). Anything else: 401 ``{"error": ...}``.
    Checksum: like GO ``pkg/sdk/register.go`` ``RegisterRequest.Checksum``, a sha256 of the whole
    request (url, sdk, framework, appVersion, functions, capabilities, env header), not of
    ``deployId``. Same checksum: ``{"ok": true, "modified": false, "app_id", "sync_id"}`` and
    nothing else (crons are *not* re-initialised; GO ``pkg/devserver/api.go`` ``register``
    answers ``sync.Reply`` with ``AppID`` and ``SyncID`` on this path too). Otherwise upsert by
    function id, archive functions missing from the sync, re-initialise every cron, reply
    ``{"ok": true, "modified": true, "app_id", "sync_id"}`` (GO ``pkg/cqrs/sync`` ``Reply``).
    The SDK returns whatever JSON object the server answered as a **200** PUT body, whatever the
    status: see ``Syncer._parse_out_of_band_response`` (it builds an error response for status
    >= 400, then drops it). So injected 400s *and* 500s reach the caller as ``200 {"error": ..}``.

Environments (R "Additions": branch environments)
    Apps live per environment: register and the REST read-back act on the one named by
    ``x-inngest-env``, else the key's own (``production``, or ``dev`` in dev mode). A read-back
    without the header does not see what a branch environment synced.

``GET /v1/apps/{app}/functions`` (R "REST"; GO ``pkg/api/apiv1`` ``GetAppFunctions``)
    Production: same bearer rule as register. The body is what GO encodes: a **bare JSON array**
    of ``cqrs.Function`` (GO ``pkg/cqrs/function.go``), archived ones left out (sqlc
    ``GetAppFunctionsBySlug``: ``archived_at IS NULL``); unknown app -> ``null`` (a nil slice)::

        [{"internal_id": uuid, "env_id": uuid, "app_id": uuid, "id": "<app>-<fn>",
          "name": "...", "config": {...}, "created_at": iso, "archived_at": "0001-01-01T00:00:00Z"}]

    ``config`` is the server's own function format, not the SDK's register body (GO
    ``inngest.Function``): ``id`` = internal uuid, ``fv``, ``slug`` = ``"<app>-<fn>"``,
    ``triggers`` (e.g. ``[{"cron": "TZ=Europe/Berlin 0 9 * * 1"}]``), ``steps`` as an array of
    ``{id, name, uri, retries}``. **The URL**: v1 has no app endpoint; the URL Inngest calls is
    each step's ``uri`` (GO ``pkg/inngest/function_step.go`` ``Step.URI``: "how this function
    is invoked, eg https://example.com/api/inngest?step=foo"), taken from the register body's
    ``steps.step.runtime.url`` (``<app url>?fnId=..&stepId=step``), so a sync from elsewhere
    shows as another URL there. ``repoint()`` stands in for such a sync (or a dashboard edit of
    the app URL): the app and every step then point at the given URL, for read-back and calls.
    **Forgotten crons** (``restart()`` with
    ``faults.forget_crons_after_restart``): the function is still listed but its cron triggers
    are missing from ``config.triggers`` (event triggers stay) and ``fire_cron`` refuses it, until
    a sync that *changes the checksum* re-initialises them; an identical re-sync answers
    ``modified: false`` and leaves them forgotten (R: "modified:false is not proof").

``POST /e/{key}`` (R "Events"; SDK ``client_lib/client.py`` ``_build_send_request``)
    Body: a list of events (one object also accepted); reply ``{"ids": [...], "status": 200}``
    (SDK ``client_lib/models.py`` ``SendEventsResult``). Production: key must equal
    ``event_key`` else 401. An event ``id`` dedupes for 24 h (the duplicate gets the first id).
    Events received over HTTP are recorded, not run; ``send_event_and_run`` records and runs.

Cron fires, reruns, invokes (R "Additions"; GO ``pkg/execution/executor/service.go``)
    ``fire_cron`` sends what the cron service publishes: ``{"id": <scheduled time, RFC 3339>,
    "name": "inngest/scheduled.timer", "data": {"cron", "scheduledAt", "fireAt"}, "ts":
    <fireAt ms>}`` (no jitter: ``fireAt`` = ``scheduledAt``). ``rerun`` is the dashboard's Rerun
    (GO ``coreapi/graph/resolvers/function_run.resolver.go``): the original event, a new run id.
    ``invoke`` is the dashboard's Invoke (GO ``pkg/event/invoke.go``): event
    ``inngest/function.invoked`` with a ULID id, ts now and ``data._inngest``.

Executor (R "Invocation")
    ``POST`` to the synced ``steps.step.runtime.url`` (``stepId`` replaced by the hashed step id
    for planned steps) with a JCS-canonical body shaped as R shows and as SDK
    ``server_lib/execution_request.py`` ``ServerRequest`` parses. Memoised steps are keyed by
    ``sha1(step id)`` with ``:n`` for the n-th repeat (SDK ``step_lib/base.py``
    ``StepBase._parse_step_id``); values are ``{"data": ..}`` or ``{"error": {name, message,
    stack}}`` (``step_lib/base.py`` ``StepMemos.from_raw``/``Output``). Production requests carry
    ``X-Inngest-Signature: t=<unix s>&s=<hmac>`` (SDK ``net.py`` ``sign_request``, checked by
    ``_validate_sig``); response signatures (``CommResponse.sign``) are verified and recorded.
    Responses (SDK ``comm_lib/models.py`` ``CommResponse.from_call_result``; ops in
    ``server_lib/consts.py`` ``Opcode``): 206 + op list -> ``StepRun`` memoise data;
    ``StepPlanned`` call again targeting that step; ``Sleep``/``WaitForEvent`` done at once
    (memo ``null``: the wait timed out); ``StepError`` retry the step while attempts remain, else
    memoise the error; ``StepFailed`` (last attempt, SDK ``step_lib/step_async.py`` ``Step.run``)
    memoise the error. 200 = completed (output = body). Anything else = error: retried up to the
    function's ``retries`` (default 3, i.e. ``max_attempts`` 4) unless ``x-inngest-no-retry:
    true``. Attempts count per step, resetting after progress, as Inngest's queue items do.
    Retries do not wait (``retry-after`` is ignored).

The HTTP side is stdlib ``http.server`` rather than uvicorn because the ``drop_connection``
fault needs to close a socket without any response, which an ASGI app cannot do.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import http.server
import json
import re
import secrets
import socket
import threading
import time
import urllib.parse
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from types import TracebackType
from typing import Any, Literal
from zoneinfo import ZoneInfo

import httpx
import jcs  # type: ignore[import-untyped]  # the SDK's own canonicaliser (transforms.py)

from tests.fakes import robfig_cron
from tests.support import canaries

#: A well-formed signing key for production-mode tests (hex after the ``signkey-<env>-`` prefix);
#: the canary value, so a leak of it into any test output fails the test.
TEST_SIGNING_KEY = canaries.INNGEST_SIGNING_KEY
CRON_EVENT = "inngest/scheduled.timer"
INVOKE_EVENT = "inngest/function.invoked"
GO_ZERO_TIME = "0001-01-01T00:00:00Z"
DEFAULT_RETRIES = 3  # Inngest's default when a function config carries no retries
DEDUPE_SECONDS = 24 * 3600
MAX_CALLS_PER_RUN = 500
_PREFIX = re.compile(r"^signkey-\w+-")
_CRON_TZ = re.compile(r"^(?:CRON_)?TZ=(\S+)\s+(.+)$")

Reply = tuple[int, object] | None  # None: drop the connection without answering


class CronNotScheduledError(LookupError):
    """``fire_cron`` on a function whose crons the server does not hold (forgotten or none)."""


@dataclass
class FakeFaults:
    """Fault knobs. Counters are consumed one per matching request; the rest persist.

    ``drop_connection`` and ``slow_seconds`` apply to every request the fake receives (in that
    order); the register knobs are checked before authentication, 500 before 400."""

    register_500: int = 0  # next N registers answer 500 {"error": ...}
    register_400: int = 0  # next N registers answer 400 {"error": ...} (SDK: PUT 200 + error)
    register_drop: int = 0  # next N registers: close the socket without answering
    list_without_crons: bool = False  # the read-back lists functions without cron triggers
    read_back_500: int = 0  # once a register is accepted, the next N function reads answer 500
    read_back_html: bool = False  # function reads answer 200 with an HTML page (a proxy's)
    slow_seconds: float = 0.0  # delay every response by this much
    drop_connection: int = 0  # next N requests of any kind: close the socket, no response
    forget_crons_after_restart: bool = False  # restart() unschedules every cron
    executor_signing_key: str | None = None  # sign executor calls with this key instead


@dataclass
class FakeFunction:
    """One synced function, keyed by its server-side id (``<app>-<fn>``, R "SDK")."""

    slug: str
    name: str
    config: dict[str, Any]
    internal_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    created_at: str = field(default_factory=lambda: _iso(datetime.now(UTC)))
    archived_at: str | None = None
    crons_scheduled: bool = True
    version: int = 0  # GO's FunctionVersion ("fv"): 1 on first sync, +1 on every changed sync

    @property
    def crons(self) -> list[str]:
        """Cron strings of the synced config, scheduled or not."""
        return [t["cron"] for t in self.config.get("triggers", []) if "cron" in t]

    @property
    def runtime_url(self) -> str:
        steps = self.config["steps"]
        step = steps.get("step") or next(iter(steps.values()))
        return str(step["runtime"]["url"])

    @property
    def max_attempts(self) -> int:
        steps = self.config["steps"]
        step = steps.get("step") or next(iter(steps.values()))
        return int(step.get("retries", {}).get("attempts", DEFAULT_RETRIES)) + 1

    def to_api(self, app: FakeApp, env_id: str, *, crons: bool = True) -> dict[str, Any]:
        """The ``cqrs.Function`` JSON that ``GET /v1/apps/{app}/functions`` lists.

        ``config`` is the server's own function format (GO ``pkg/inngest/function.go``
        ``Function``, ``function_step.go`` ``Step``), not the SDK's register body: ``fv``,
        ``slug``, ``triggers``, and ``steps`` as an *array* of ``{id, name, uri, retries}``.
        """
        scheduled = crons and self.crons_scheduled
        triggers = [t for t in self.config.get("triggers", []) if scheduled or "cron" not in t]
        steps = [
            {
                "id": step_id,
                "name": step.get("name", step_id),
                "uri": step["runtime"]["url"],
                "retries": int(step.get("retries", {}).get("attempts", DEFAULT_RETRIES)),
            }
            for step_id, step in self.config["steps"].items()
        ]
        config: dict[str, Any] = {
            "id": self.internal_id,
            "fv": self.version,
            "name": self.name,
            "slug": self.slug,
            "triggers": triggers,
            "steps": steps,
        }
        for optional in ("concurrency", "singleton", "idempotency", "rateLimit", "throttle"):
            if optional in self.config:
                config[optional] = self.config[optional]
        return {
            "internal_id": self.internal_id,
            "env_id": env_id,
            "app_id": app.internal_id,
            "id": self.slug,
            "name": self.name,
            "config": config,
            "created_at": self.created_at,
            "archived_at": self.archived_at or GO_ZERO_TIME,
        }


@dataclass
class FakeApp:
    """One app as synced: its URL, live and archived functions, and sync bookkeeping."""

    id: str
    url: str
    env: str
    internal_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    functions: dict[str, FakeFunction] = field(default_factory=dict)
    archived: dict[str, FakeFunction] = field(default_factory=dict)
    checksum: str = ""
    sync_count: int = 0  # accepted registers, modified or not
    modified_count: int = 0  # registers that changed the app
    sync_ids: list[str] = field(default_factory=list)
    last_sync_body: dict[str, Any] = field(default_factory=dict)
    last_deploy_id: str | None = None


@dataclass
class FakeCall:
    """One executor request to the app's SDK endpoint and what came back."""

    step_id: str  # "step" (discovery) or the hashed id of a planned step
    attempt: int
    status_code: int
    body: object
    no_retry: bool
    signature_valid: bool | None  # None in dev mode (nothing signed)


@dataclass
class FakeRun:
    """One function run: ``attempts`` is 1 + retries taken over the whole run."""

    function_id: str
    run_id: str
    event: dict[str, Any]
    status: Literal["running", "completed", "failed"] = "running"
    output: object = None
    error: object = None
    attempts: int = 1
    steps: list[str] = field(default_factory=list)  # user-facing ids, in memoisation order
    memos: dict[str, object] = field(default_factory=dict)  # hashed id -> memo sent back
    calls: list[FakeCall] = field(default_factory=list)


def hash_step_id(step_id: str, occurrence: int = 0) -> str:
    """The memo key of the ``occurrence``-th (0-based) use of ``step_id`` (SDK step_lib/base.py)."""
    raw = f"{step_id}:{occurrence}" if occurrence else step_id
    return hashlib.sha1(raw.encode()).hexdigest()  # sha1: the SDK's choice, not a security use


def strip_key_prefix(signing_key: str) -> str:
    match = _PREFIX.match(signing_key)
    return signing_key[match.end() :] if match else signing_key


def hash_signing_key(signing_key: str) -> str:
    """The bearer token the SDK derives from a signing key (SDK transforms.hash_signing_key)."""
    return hashlib.sha256(bytes.fromhex(strip_key_prefix(signing_key))).hexdigest()


def accepted_bearers(signing_key: str) -> frozenset[str]:
    hashed = hash_signing_key(signing_key)
    match = _PREFIX.match(signing_key)
    prefixed = f"{match.group(0)}{hashed}" if match else hashed
    return frozenset({hashed, prefixed, signing_key})


def _mac(signing_key: str, body: bytes, t: int) -> str:
    mac = hmac.new(strip_key_prefix(signing_key).encode(), body, hashlib.sha256)
    mac.update(str(t).encode())
    return mac.hexdigest()


def sign_request_body(body: bytes, signing_key: str, t: int | None = None) -> str:
    """``X-Inngest-Signature`` for a canonical (JCS) body, as SDK net.py ``sign_request``."""
    t = round(time.time()) if t is None else t
    return f"t={t}&s={_mac(signing_key, body, t)}"


def signature_matches(header: str | None, body: bytes, signing_key: str) -> bool:
    """Check a signature header over raw bytes (what SDK net.py ``_validate_sig`` does)."""
    if not header:
        return False
    parsed = urllib.parse.parse_qs(header)
    try:
        t, sig = int(parsed["t"][0]), parsed["s"][0]
    except (KeyError, ValueError):
        return False
    return hmac.compare_digest(sig, _mac(signing_key, body, t))


def canonical_json(value: object) -> bytes:
    return bytes(jcs.canonicalize(value))


def split_cron(cron: str) -> tuple[tzinfo, str]:
    """``"TZ=Europe/Berlin 0 9 * * 1"`` -> (zone, ``"0 9 * * 1"``); no prefix means UTC (R)."""
    match = _CRON_TZ.match(cron.strip())
    if match is None:
        return UTC, cron.strip()
    return ZoneInfo(match.group(1)), match.group(2)


MAX_CRON_LENGTH = 255  # GO pkg/inngest/trigger.go MaxCronLength


def _cron_problem(cron: object) -> str | None:
    """GO ``CronTrigger.Validate``: robfig's standard 5-field parser, no descriptors."""
    if not isinstance(cron, str):
        return "cron must be a string"
    if len(cron) > MAX_CRON_LENGTH:
        return f"cron is too long. maximum length is {MAX_CRON_LENGTH} characters"
    try:
        robfig_cron.parse(cron, robfig_cron.STANDARD)
    except robfig_cron.CronParseError:
        return f"'{cron}' isn't a valid cron schedule"
    return None


def _register_problem(body: object) -> str | None:
    """What is wrong with a register body, or None (a minimal version of GO's Parse)."""
    if not isinstance(body, dict):
        return "body must be a JSON object"
    if not isinstance(body.get("appname"), str) or not body["appname"]:
        return "appname is required"
    if not isinstance(body.get("url"), str) or not body["url"].startswith("http"):
        return "url must be an http(s) URL"
    functions = body.get("functions")
    if not isinstance(functions, list):
        return "functions must be a list"
    seen: set[str] = set()
    for fn in functions:
        if not isinstance(fn, dict) or not isinstance(fn.get("id"), str) or not fn["id"]:
            return "every function needs an id"
        if fn["id"] in seen:
            return f"duplicate function id: {fn['id']}"
        seen.add(fn["id"])
        triggers = fn.get("triggers")
        if not isinstance(triggers, list) or not triggers:
            return f"function {fn['id']} has no triggers"
        crons: set[object] = set()
        for trigger in triggers:
            if isinstance(trigger, dict) and "cron" in trigger:
                if problem := _cron_problem(trigger["cron"]):
                    return problem
                if trigger["cron"] in crons:
                    return f"duplicate cron expression: {trigger['cron']}"
                crons.add(trigger["cron"])
            elif not isinstance(trigger, dict) or not isinstance(trigger.get("event"), str):
                return f"function {fn['id']} has an invalid trigger"
        steps = fn.get("steps")
        if not isinstance(steps, dict) or not steps:
            return f"Function has no steps: {fn['id']}"
        for step in steps.values():
            runtime = step.get("runtime") if isinstance(step, dict) else None
            url = runtime.get("url") if isinstance(runtime, dict) else None
            if not isinstance(url, str) or urllib.parse.urlsplit(url).scheme not in (
                "http",
                "https",
            ):
                return f"function {fn['id']} has a step without an http runtime url"
    return None


_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def new_ulid() -> str:
    """A ULID (time-ordered id) like the ones the server gives events and runs."""
    value = (int(time.time() * 1000) << 80) | secrets.randbits(80)
    return "".join(_CROCKFORD[(value >> shift) & 31] for shift in range(125, -1, -5))


def _rfc3339(moment: datetime) -> str:
    """GO ``time.RFC3339`` of a UTC time: seconds, ``Z``."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


class FakeInngest:
    """The fake server plus its test controls. ``signing_key=None`` is dev mode: no auth checks,
    unsigned executor calls (what the Dev Server does, SDK net.py ``_validate_sig``)."""

    def __init__(
        self, *, signing_key: str | None = None, event_key: str = "test-event-key"
    ) -> None:
        if signing_key is not None:
            hash_signing_key(signing_key)  # fail fast: the SDK needs hex after the prefix
        self.signing_key = signing_key
        self.event_key = event_key
        self.base_url = ""
        # apps per Inngest environment (``x-inngest-env``); ``apps`` is the key's default one
        self.envs: dict[str, dict[str, FakeApp]] = {self.default_env: {}}
        self.apps: dict[str, FakeApp] = self.envs[self.default_env]
        self.events: list[dict[str, Any]] = []
        self.requests: list[tuple[str, str]] = []
        self.registered_urls: list[tuple[str, str]] = []  # (appname, url) of accepted registers
        self.runs: list[FakeRun] = []
        self.faults = FakeFaults()
        self.env_id = str(uuid.uuid4())
        self.restart_count = 0
        self.call_timeout = 30.0
        self.clock: Callable[[], float] = time.time  # for the 24 h event dedupe window
        self._event_ids: dict[str, tuple[float, str]] = {}
        self._synced_since_fault = False  # arms faults.read_back_500
        self._lock = threading.RLock()
        self._server: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def production(self) -> bool:
        return self.signing_key is not None

    @property
    def default_env(self) -> str:
        """The environment a request without ``x-inngest-env`` is about."""
        return "production" if self.production else "dev"

    def _env_apps(self, headers: Mapping[str, str]) -> dict[str, FakeApp]:
        env = headers.get("x-inngest-env") or self.default_env
        return self.envs.setdefault(env, {})

    def _all_apps(self) -> list[FakeApp]:
        return [app for apps in self.envs.values() for app in apps.values()]

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self) -> None:
        if self._server is not None:
            raise RuntimeError("FakeInngest already started")
        self._serve(port=0)

    def stop(self) -> None:
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is None:
            return
        server.shutdown()
        server.close_open_connections()
        server.server_close()
        if thread is not None:
            thread.join(timeout=5)

    def restart(self) -> None:
        """Bounce the HTTP server on the same port (open connections are cut). Apps persist;
        with ``faults.forget_crons_after_restart`` every cron becomes unscheduled."""
        if self._server is None:
            raise RuntimeError("FakeInngest is not running")
        port = self._server.server_address[1]
        self.stop()
        with self._lock:
            self.restart_count += 1
            if self.faults.forget_crons_after_restart:
                for app in self._all_apps():
                    for fn in app.functions.values():
                        fn.crons_scheduled = False
        self._serve(port=port)

    def __enter__(self) -> FakeInngest:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _serve(self, *, port: int) -> None:
        server = _HTTPServer(("127.0.0.1", port), self)
        self.base_url = f"http://127.0.0.1:{server.server_address[1]}"
        thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        thread.start()
        self._server, self._thread = server, thread

    # -- state for tests -------------------------------------------------------------------------

    def functions(self, app_id: str, *, env: str | None = None) -> list[dict[str, Any]]:
        """The live functions ``GET /v1/apps/{app_id}/functions`` lists (module docstring)."""
        with self._lock:
            app = self.envs.get(env or self.default_env, {}).get(app_id)
            if app is None:
                return []
            crons = not self.faults.list_without_crons
            return [fn.to_api(app, self.env_id, crons=crons) for fn in app.functions.values()]

    def repoint(self, app_id: str, url: str, *, env: str | None = None) -> None:
        """Point ``app_id`` and its functions' steps at ``url`` (the server keeps the step URL's
        query, as a sync from ``url`` would register it)."""
        with self._lock:
            app = self.envs[env or self.default_env][app_id]
            app.url = url
            app.checksum = f"synced from {url}"  # the last sync was not the app's own
            for fn in app.functions.values():
                for step in fn.config["steps"].values():
                    old = urllib.parse.urlsplit(step["runtime"]["url"])
                    new = urllib.parse.urlsplit(url)
                    step["runtime"]["url"] = urllib.parse.urlunsplit(new._replace(query=old.query))

    def find_function(self, function_id: str) -> tuple[FakeApp, FakeFunction]:
        with self._lock:
            for app in self._all_apps():
                if function_id in app.functions:
                    return app, app.functions[function_id]
        raise LookupError(f"no live function {function_id!r}")

    # -- HTTP routing (pure: request in, reply out) ----------------------------------------------

    def handle(self, method: str, target: str, headers: Mapping[str, str], body: bytes) -> Reply:
        """Answer one request; ``None`` means drop the connection. Headers are lower-cased."""
        url = urllib.parse.urlsplit(target)
        with self._lock:
            self.requests.append((method, url.path))
            if self.faults.drop_connection > 0:
                self.faults.drop_connection -= 1
                return None
            delay = self.faults.slow_seconds
        if delay:
            time.sleep(delay)
        parts = url.path.strip("/").split("/")
        if method == "POST" and url.path == "/fn/register":
            query = urllib.parse.parse_qs(url.query)
            return self._register(headers, body, query.get("deployId", [None])[0])
        if (
            method == "GET"
            and len(parts) == 4
            and parts[:2] == ["v1", "apps"]
            and parts[3] == "functions"
        ):
            if not self._authorized(headers):
                return 401, {"error": "No auth found", "status": 401}
            with self._lock:
                if self._synced_since_fault and self.faults.read_back_500 > 0:
                    self.faults.read_back_500 -= 1
                    return 500, {"error": "fake inngest: injected read error", "status": 500}
                if self.faults.read_back_html:
                    return 200, b"<html><body>Service temporarily unavailable</body></html>"
            app_id = urllib.parse.unquote(parts[2])
            env = headers.get("x-inngest-env") or self.default_env
            with self._lock:
                known = app_id in self.envs.get(env, {})
            # GO encodes the nil slice of an unknown app as null
            return 200, self.functions(app_id, env=env) if known else None
        if method == "POST" and len(parts) == 2 and parts[0] == "e":
            return self._receive_events(urllib.parse.unquote(parts[1]), body)
        return 404, {"error": f"not found: {method} {url.path}", "status": 404}

    def _authorized(self, headers: Mapping[str, str]) -> bool:
        if self.signing_key is None:
            return True
        scheme, _, token = headers.get("authorization", "").partition(" ")
        return scheme.lower() == "bearer" and token in accepted_bearers(self.signing_key)

    def _register(self, headers: Mapping[str, str], raw: bytes, deploy_id: str | None) -> Reply:
        with self._lock:
            if self.faults.register_500 > 0:
                self.faults.register_500 -= 1
                return 500, {"error": "fake inngest: injected internal error"}
            if self.faults.register_400 > 0:
                self.faults.register_400 -= 1
                return 400, {"error": "fake inngest: injected bad request"}
            if self.faults.register_drop > 0:
                self.faults.register_drop -= 1
                return None
        if not self._authorized(headers):
            return 401, {"error": "authentication failed: signing key mismatch"}
        try:
            body = json.loads(raw)
        except ValueError:
            return 400, {"error": "body is not valid JSON"}
        if problem := _register_problem(body):
            return 400, {"error": problem}
        env = headers.get("x-inngest-env") or self.default_env
        self._synced_since_fault = True
        with self._lock:
            self.registered_urls.append((body["appname"], body["url"]))
        checksum = hashlib.sha256(canonical_json({"request": body, "env": env})).hexdigest()
        with self._lock:
            apps = self._env_apps(headers)
            app = apps.get(body["appname"])
            if app is not None and app.checksum == checksum:
                app.sync_count += 1
                app.sync_ids.append(str(uuid.uuid4()))
                return 200, {
                    "ok": True,
                    "modified": False,
                    "app_id": app.internal_id,
                    "sync_id": app.sync_ids[-1],
                }
            if app is None:
                app = apps[body["appname"]] = FakeApp(id=body["appname"], url="", env=env)
            self._apply_sync(app, body, env)
            app.checksum, app.last_deploy_id = checksum, deploy_id
            app.sync_count += 1
            app.modified_count += 1
            app.sync_ids.append(str(uuid.uuid4()))
            return 200, {
                "ok": True,
                "modified": True,
                "app_id": app.internal_id,
                "sync_id": app.sync_ids[-1],
            }

    def _apply_sync(self, app: FakeApp, body: dict[str, Any], env: str) -> None:
        """Upsert the synced functions, archive the missing ones, re-initialise every cron."""
        app.url, app.env, app.last_sync_body = body["url"], env, body
        synced: dict[str, FakeFunction] = {}
        for config in body["functions"]:
            slug = config["id"]
            known = app.functions.get(slug) or app.archived.pop(slug, None)
            fn = known or FakeFunction(slug=slug, name="", config={})
            fn.name, fn.config = config.get("name") or slug, config
            fn.archived_at, fn.crons_scheduled = None, True
            fn.version += 1
            synced[slug] = fn
        now = _iso(datetime.now(UTC))
        for slug, fn in app.functions.items():
            if slug not in synced:
                fn.archived_at = now
                app.archived[slug] = fn
        app.functions = synced

    def _receive_events(self, key: str, raw: bytes) -> Reply:
        if self.production and key != self.event_key:
            return 401, {"error": "Event key not found", "status": 401}
        try:
            payload = json.loads(raw)
        except ValueError:
            return 400, {"error": "body is not valid JSON", "status": 400}
        events = payload if isinstance(payload, list) else [payload]
        if not events or not all(
            isinstance(e, dict) and isinstance(e.get("name"), str) and e["name"] for e in events
        ):
            return 400, {"error": "every event needs a name", "status": 400}
        return 200, {"ids": [self.record_event(e) for e in events], "status": 200}

    def record_event(self, event: dict[str, Any]) -> str:
        """Store an event (deduping by ``id`` for 24 h) and return its server-side id."""
        with self._lock:
            now = self.clock()
            idem = event.get("id")
            if isinstance(idem, str) and idem:
                seen = self._event_ids.get(idem)
                if seen is not None and now - seen[0] < DEDUPE_SECONDS:
                    return seen[1]
            internal = new_ulid()
            if isinstance(idem, str) and idem:
                self._event_ids[idem] = (now, internal)
            self.events.append({"ts": int(now * 1000), **event})
            return internal

    # -- executor controls -----------------------------------------------------------------------

    def next_slots(self, function_id: str, after: datetime, count: int) -> list[datetime]:
        """When the cron service fires ``function_id`` next (UTC): robfig's ``Next``, chained,
        as ``pkg/execution/cron`` schedules each fire from the previous one."""
        _, fn = self.find_function(function_id)
        return robfig_cron.parse(fn.crons[0], robfig_cron.SCHEDULER).following(after, count)

    def fire_cron(self, function_id: str, slot: datetime, *, cron: str | None = None) -> FakeRun:
        """Run ``function_id`` as Inngest's cron scheduler would at ``slot`` (aware datetime,
        matching the cron in its ``TZ=``), synchronously in the calling thread."""
        if slot.tzinfo is None:
            raise ValueError("slot must be timezone-aware")
        app, fn = self.find_function(function_id)
        if not fn.crons or not fn.crons_scheduled:
            raise CronNotScheduledError(f"{function_id} has no scheduled cron")
        chosen = cron or fn.crons[0]
        if chosen not in fn.crons:
            raise CronNotScheduledError(f"{function_id} has no cron {chosen!r}")
        if not robfig_cron.parse(chosen, robfig_cron.SCHEDULER).fires_at(slot):
            raise ValueError(f"{slot.isoformat()} is not a slot of {chosen!r}")
        scheduled = _rfc3339(slot)
        event = {
            "id": scheduled,  # the idempotency key: one event per scheduled time
            "name": CRON_EVENT,
            "data": {"cron": chosen, "scheduledAt": scheduled, "fireAt": scheduled},
            "user": {},
            "ts": int(slot.timestamp()) * 1000,  # fireAt (no jitter configured)
        }
        return self._execute(app, fn, event)

    def rerun(self, run: FakeRun) -> FakeRun:
        """The dashboard's Rerun (GO ``function_run.resolver.go`` ``Rerun``): a new run of the
        same function with the original event, same id and ts, nothing memoised."""
        app, fn = self.find_function(run.function_id)
        return self._execute(app, fn, dict(run.event))

    def invoke(self, function_id: str, data: dict[str, Any] | None = None) -> FakeRun:
        """The dashboard's Invoke (GO ``event/invoke.go`` ``NewInvocationEvent``): an
        ``inngest/function.invoked`` event with a fresh ULID id, ts now, ``data._inngest``."""
        app, fn = self.find_function(function_id)
        now = self.clock()
        event = {
            "id": new_ulid(),
            "name": INVOKE_EVENT,
            "data": {
                **(data or {}),
                "_inngest": {"fn_id": fn.slug, "source_app_id": "", "gid": ""},
            },
            "user": {},
            "ts": int(now * 1000),
        }
        return self._execute(app, fn, event)

    def send_event_and_run(
        self, name: str, data: dict[str, Any] | None = None, *, event_id: str | None = None
    ) -> list[FakeRun]:
        """Record an event and synchronously run every live function triggered by its name.
        Trigger ``expression``s are not evaluated. A deduped event runs nothing."""
        event: dict[str, Any] = {"name": name, "data": data or {}}
        if event_id is not None:
            event["id"] = event_id
        before = len(self.events)
        internal = self.record_event(event)
        if len(self.events) == before:
            return []
        event = {"id": internal, **self.events[-1]}
        with self._lock:
            targets = [
                (app, fn)
                for app in self._all_apps()
                for fn in app.functions.values()
                if any(t.get("event") == name for t in fn.config.get("triggers", []))
            ]
        return [self._execute(app, fn, event) for app, fn in targets]

    def _execute(self, app: FakeApp, fn: FakeFunction, event: dict[str, Any]) -> FakeRun:
        run = FakeRun(function_id=fn.slug, run_id=new_ulid(), event=event)
        with self._lock:
            self.runs.append(run)
        with httpx.Client(timeout=self.call_timeout) as client:
            _Execution(self, client, app, fn, run).run()
        return run


class _Execution:
    """The step loop of one run (R "Invocation"; op handling per the module docstring)."""

    def __init__(
        self, fake: FakeInngest, client: httpx.Client, app: FakeApp, fn: FakeFunction, run: FakeRun
    ) -> None:
        self.fake, self.client, self.app, self.fn, self.record = fake, client, app, fn, run
        self.stack: list[str] = []
        self.planned: list[str] = []
        self.attempt = 0
        self.disable_immediate = False

    def run(self) -> None:
        run = self.record
        for _ in range(MAX_CALLS_PER_RUN):
            target = self.planned.pop(0) if self.planned else "step"
            call = self._call(target)
            run.calls.append(call)
            if call.status_code == 200:
                run.status, run.output = "completed", call.body
                return
            if call.status_code == 206 and isinstance(call.body, list):
                if not self._apply_ops(call, target):
                    return
                continue
            if call.no_retry or self.attempt + 1 >= self.fn.max_attempts:
                run.status, run.error = "failed", call.body
                return
            self._retry(target)
        run.status, run.error = "failed", {"message": f"fake: over {MAX_CALLS_PER_RUN} calls"}

    def _retry(self, target: str) -> None:
        self.attempt += 1
        self.record.attempts += 1
        if target != "step":
            self.planned.insert(0, target)

    def _memoise(self, op: Mapping[str, Any], memo: object) -> None:
        self.record.memos[op["id"]] = memo
        self.record.steps.append(str(op.get("displayName") or op.get("name") or op["id"]))
        self.stack.append(op["id"])
        self.attempt = 0

    def _apply_ops(self, call: FakeCall, target: str) -> bool:
        """Handle a 206 op list; False when the run ended (failed)."""
        assert isinstance(call.body, list)
        for op in call.body:
            kind = op.get("op")
            if kind == "StepRun":
                self._memoise(op, {"data": op.get("data")})
            elif kind == "StepPlanned":
                self.planned.append(op["id"])
                self.disable_immediate = True
            elif kind in ("Sleep", "WaitForEvent"):
                self._memoise(op, None)
            elif kind == "StepFailed" or (
                kind == "StepError" and (call.no_retry or self.attempt + 1 >= self.fn.max_attempts)
            ):
                error = op.get("error") or {}
                memo = {k: error.get(k) for k in ("name", "message", "stack")}
                self._memoise(op, {"error": memo})
            elif kind == "StepError":
                self._retry(target)
                return True
            else:
                self.record.status = "failed"
                self.record.error = {"message": f"fake inngest: unsupported op {kind!r}", "op": op}
                return False
        return True

    def _call(self, target: str) -> FakeCall:
        fn, fake = self.fn, self.fake
        payload = {
            "event": self.record.event,
            "events": [self.record.event],
            "steps": dict(self.record.memos),
            "use_api": False,
            "version": 1,
            "ctx": {
                "run_id": self.record.run_id,
                "attempt": self.attempt,
                "disable_immediate_execution": self.disable_immediate,
                "use_api": False,
                "fn_id": fn.internal_id,
                "env": self.app.env,
                "step_id": target,
                "max_attempts": fn.max_attempts,
                "stack": {"stack": list(self.stack), "current": len(self.stack)},
            },
        }
        body = canonical_json(payload)
        headers = {
            "content-type": "application/json",
            "x-inngest-server-kind": "cloud" if fake.production else "dev",
            "x-request-id": new_ulid(),
        }
        key = fake.faults.executor_signing_key or fake.signing_key
        if fake.production and key is not None:
            headers["x-inngest-signature"] = sign_request_body(body, key)
        url = _with_step_id(fn.runtime_url, target)
        try:
            res = self.client.post(url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            return FakeCall(target, self.attempt, 0, {"message": repr(exc)}, False, None)
        parsed: object
        try:
            parsed = res.json()
        except ValueError:
            parsed = res.text
        valid = None
        if fake.production and fake.signing_key is not None:
            valid = signature_matches(
                res.headers.get("x-inngest-signature"), res.content, fake.signing_key
            )
        no_retry = res.headers.get("x-inngest-no-retry") == "true"
        return FakeCall(target, self.attempt, res.status_code, parsed, no_retry, valid)


def _with_step_id(url: str, step_id: str) -> str:
    parts = urllib.parse.urlsplit(url)
    query = [(k, v) for k, v in urllib.parse.parse_qsl(parts.query) if k != "stepId"]
    query.append(("stepId", step_id))
    return urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(query)))


class _HTTPServer(http.server.ThreadingHTTPServer):
    """Threaded stdlib server that remembers open connections so ``restart`` can cut them."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], fake: FakeInngest) -> None:
        self.fake = fake
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()
        super().__init__(address, _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._open_lock:
            self._open.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._open_lock:
            self._open.discard(request)
        super().shutdown_request(request)

    def close_open_connections(self) -> None:
        with self._open_lock:
            sockets = list(self._open)
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the SDK's httpx clients expect
    server: _HTTPServer

    def log_message(self, format: str, *args: Any) -> None:
        return  # keep test output quiet

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def _dispatch(self, method: str) -> None:
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        reply = self.server.fake.handle(method, self.path, headers, body)
        if reply is None:
            self.close_connection = True
            return
        status, payload = reply
        raw = isinstance(payload, bytes)  # a page that is not the API's (faults)
        data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("content-type", "text/html" if raw else "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
