"""A local fake of Composio's v3.1 API; tests point the real ``composio`` SDK at it (``base_url``).

Where each shape comes from (so a reader can check the fake against something real):

* Response bodies: ``composio_shapes.py`` beside this file, built to the generated client's
  models (``composio_client`` 2.0.0rc19, ``_generated/pydantic_gen.py``);
  ``test_composio_server.py`` validates every answer against them and fails on a field they do
  not declare.
* Endpoints and request bodies: /work/shared/reference/composio.md, "HTTP endpoints the SDK hits"
  (recorded from SDK 0.29.0), and the generated resources the SDK calls:
  ``composio_client/resources/trigger_instances/{trigger_instances,manage}.py`` (upsert,
  list_active incl. its ``user_ids`` query, manage PATCH/DELETE), ``resources/triggers_types.py``
  (get one, list per toolkit), ``resources/connected_accounts.py`` (get one, list by user and
  toolkit), ``resources/webhook_subscriptions.py`` (list, get, create, update, delete,
  rotate_secret, event_types).
* Trigger types and example payloads: ``composio_trigger_types.json`` beside this file, a verbatim
  copy of the reference ``composio-trigger-types.json`` (real config/payload JSON Schemas).
* Disabling: the API shows only ``disabled_at``, never why. Composio disables an instance itself
  when its connection expires or its poller fails (:meth:`FakeComposio.expire_account`,
  :meth:`FakeComposio.disable_by_composio`), and says so in the ``composio.connected_account.
  expired`` / ``composio.trigger.disabled`` webhook events (composio.md, "Webhook deliveries";
  their data shape is unverified: neither the SDK nor composio_client models them).
* Upsert semantics (same config -> same instance, re-enabled; config fixed at creation; config
  validated against the type, ComposioHQ/composio#3702) and ``limit`` <= 50: composio.md.
* Webhook URLs must be HTTPS (the generated create/update bodies: "HTTPS URL to receive webhook
  events"); one subscription per project.
* Rate limit: composio.md, per-organisation fixed one-minute window, 429 with ``Retry-After``.
* Webhook signing: composio.md "Webhook deliveries" (key = the raw secret string; message
  ``{id}.{timestamp}.{body}``; ``v1,<base64>``).
"""

from __future__ import annotations

import asyncio
import base64
import email.utils
import hashlib
import hmac
import json
import math
import re
import secrets
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import httpx
import jsonschema  # type: ignore[import-untyped]  # no stubs in the dev extras
import uvicorn
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import Receive, Scope, Send

from tests.fakes import composio_shapes as shapes
from tests.fakes.composio_shapes import Account, ApiError, Instance, now_iso
from tests.support import canaries

TYPES_FILE = Path(__file__).with_name("composio_trigger_types.json")
API_KEY = canaries.COMPOSIO_API_KEY  # a leak of it into any test output fails the test
EVENT_TYPES = (
    "composio.trigger.message",
    "composio.trigger.disabled",
    "composio.connected_account.expired",
)
EVENT_DESCRIPTIONS = [
    {"event_type": EVENT_TYPES[0], "description": "A trigger instance fired"},
    {"event_type": EVENT_TYPES[1], "description": "Composio disabled a trigger instance"},
    {"event_type": EVENT_TYPES[2], "description": "A connected account expired"},
]
# connected account id -> (user id, toolkit): the example agents' accounts and the contract's.
DEFAULT_ACCOUNTS: dict[str, tuple[str, str]] = {
    "ca_gmail_jobsearch": ("user-1", "gmail"),
    "ca_github_eng": ("eng", "github"),
    "ca_slack_eng": ("eng", "slack"),
    "ca_hubspot_sales": ("sales-team", "hubspot"),
    "ca_123": ("user-1", "gmail"),
    "ca_456": ("user-1", "gmail"),
}
FaultKind = Literal["429", "500", "slow", "commit_then_500"]
Result = tuple[int, Any]


def load_types() -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
    """(trigger types by slug, example payload by slug) from the reference data."""
    data = json.loads(TYPES_FILE.read_text(encoding="utf-8"))
    return {t["slug"]: t for t in data["trigger_types"]}, data["example_payloads"]


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """Composio's signature: HMAC-SHA256 keyed by the secret string as-is (``whsec_`` kept)."""
    message = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret.encode("utf-8"), message, hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


@dataclass
class Fault:
    """An injected failure for the next ``times`` requests matching ``method`` and ``path``.

    ``429``/``500`` answer without doing anything; ``slow`` does the work, then holds the
    response for ``delay`` real seconds (past the client's timeout: a write that landed but timed
    out); ``commit_then_500`` does the work and answers 500 (the response is lost).
    """

    kind: FaultKind
    path: str = ""  # regular expression searched in the request path
    method: str | None = None
    times: int = 1
    retry_after: str | None = "1"
    delay: float = 2.0

    def matches(self, method: str, path: str) -> bool:
        return (
            self.times > 0
            and (self.method is None or self.method == method)
            and re.search(self.path, path) is not None
        )


@dataclass(frozen=True)
class Seen:
    """One request as the fake received it (times on the fake's clock)."""

    at: float
    done: float
    method: str
    path: str
    status: int
    host: str
    not_before: float | None = None  # a 429's Retry-After, as a time on the fake's clock


def _pause(retry_after: str | None) -> float | None:
    """Seconds a Retry-After value (delta seconds or HTTP-date) asks for, from now."""
    if retry_after is None:
        return None
    if retry_after.strip().isdigit():
        return float(retry_after)
    return email.utils.parsedate_to_datetime(retry_after).timestamp() - time.time()


class FakeComposio:
    """The fake API, served by uvicorn on 127.0.0.1 (random port) while the context is open.

    ``secret_on_read=False`` answers subscription reads and updates without ``secret``, as
    Composio's docs describe (the generated types mark it required everywhere).
    """

    def __init__(
        self,
        *,
        api_key: str = API_KEY,
        budget_per_minute: int = 2000,
        clock: Callable[[], float] = time.monotonic,
        accounts: Mapping[str, tuple[str, str]] | None = None,
        secret_on_read: bool = True,
    ) -> None:
        self.api_key = api_key
        self.budget_per_minute = budget_per_minute
        self.clock = clock
        self.secret_on_read = secret_on_read
        self.types, self.examples = load_types()
        accounts = DEFAULT_ACCOUNTS if accounts is None else accounts
        self.accounts = {a: Account(a, user, toolkit) for a, (user, toolkit) in accounts.items()}
        self.faults: list[Fault] = []
        self.requests: list[Seen] = []
        self.subscription: dict[str, Any] | None = None
        self._instances: dict[str, Instance] = {}
        self._seq = 0
        self._window = (-1, 0)  # (minute index, requests counted in it)
        self._lock = threading.Lock()
        self.base_url = ""
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._routes: list[tuple[str, re.Pattern[str], Callable[..., Result]]] = [
            (m, re.compile(f"^/api/v3\\.1/{p}$"), fn)
            for m, p, fn in (
                ("GET", "triggers_types", self._list_types),
                ("GET", "triggers_types/(?P<slug>[^/]+)", self._get_type),
                ("POST", "trigger_instances/(?P<slug>[^/]+)/upsert", self._upsert),
                ("GET", "trigger_instances/active", self._list_active),
                ("PATCH", "trigger_instances/manage/(?P<id>[^/]+)", self._manage),
                ("DELETE", "trigger_instances/manage/(?P<id>[^/]+)", self._delete),
                ("GET", "connected_accounts", self._list_accounts),
                ("GET", "connected_accounts/(?P<id>[^/]+)", self._get_account),
                ("GET", "webhook_subscriptions", self._list_subs),
                ("POST", "webhook_subscriptions", self._create_sub),
                ("GET", "webhook_subscriptions/event_types", self._event_types),
                ("POST", "webhook_subscriptions/(?P<id>[^/]+)/rotate_secret", self._rotate),
                ("GET", "webhook_subscriptions/(?P<id>[^/]+)", self._get_sub),
                ("PATCH", "webhook_subscriptions/(?P<id>[^/]+)", self._update_sub),
                ("DELETE", "webhook_subscriptions/(?P<id>[^/]+)", self._delete_sub),
            )
        ]

    # -- lifecycle ---------------------------------------------------------------------------

    def __enter__(self) -> FakeComposio:
        # Port 0 through uvicorn's own bind: a socket bound here and passed in as ``sockets``
        # costs ~40 ms per request (Nagle meets delayed ACK on the accepted connections).
        config = uvicorn.Config(
            self, host="127.0.0.1", port=0, lifespan="off", log_level="warning", access_log=False
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the fake Composio server did not start")
            time.sleep(0.005)
        port = self._server.servers[0].sockets[0].getsockname()[1]
        self.base_url = f"http://127.0.0.1:{port}"
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._server is not None and self._thread is not None
        self._server.should_exit = True
        self._thread.join(timeout=10)

    # -- test controls -------------------------------------------------------------------------

    def inject(self, fault: Fault) -> Fault:
        with self._lock:
            self.faults.append(fault)
        return fault

    def instances(self) -> list[dict[str, Any]]:
        with self._lock:
            return [i.item() for i in sorted(self._instances.values(), key=lambda i: i.seq)]

    def add_instance(self, slug: str, connected_account_id: str, config: dict[str, Any]) -> str:
        """An instance made outside the operator (by the product, a dashboard user...)."""
        with self._lock:
            account = self.accounts[connected_account_id]
            return self._make(slug, account, account.user_id, config).id

    def disable_by_composio(self, trigger_id: str) -> dict[str, Any]:
        """Composio disabling an instance itself (a failing poller): the API says only when."""
        with self._lock:
            inst = self._instances[trigger_id]
            inst.disabled_at = now_iso()
            return inst.item()

    def expire_account(self, account_id: str, status: str = "EXPIRED") -> list[str]:
        """A connection that expired: its status changes and Composio disables its instances."""
        assert status in shapes.ACCOUNT_STATUSES
        with self._lock:
            account = self.accounts[account_id]
            account.status, account.updated_at = status, now_iso()
            hit = [i for i in self._instances.values() if i.account is account]
            for inst in hit:
                inst.disabled_at = inst.disabled_at or now_iso()
            return [i.id for i in hit]

    def reconnect(self, account_id: str) -> None:
        """The user reconnected the account (its instances stay disabled until enabled)."""
        with self._lock:
            self.accounts[account_id].status = "ACTIVE"

    def env(self, **extra: str) -> dict[str, str]:
        """Environment that selects the Composio backend and points it here."""
        return {
            "PLANNER_TRIGGER_BACKEND": "composio",
            "COMPOSIO_API_KEY": self.api_key,
            "COMPOSIO_BASE_URL": self.base_url,
            "PLANNER_PUBLIC_URL": "https://planner.example.com",
            **extra,
        }

    def count(self, method: str, path_re: str = "") -> int:
        return sum(1 for s in self.requests if s.method == method and re.search(path_re, s.path))

    # -- webhook deliveries ---------------------------------------------------------------------

    def deliver(
        self,
        url: str,
        *,
        trigger_id: str,
        data: Mapping[str, Any] | None = None,
        event_type: str = "composio.trigger.message",
        msg_id: str | None = None,
        timestamp: int | None = None,
        secret: str | None = None,
        attempt: int = 1,
        client: httpx.Client | None = None,
    ) -> httpx.Response:
        """POST one signed V3 delivery to the app, as Composio would (through ``client``)."""
        with self._lock:
            inst = self._instances[trigger_id]
            secret = secret or (self.subscription or {}).get("secret", "")
        msg_id = msg_id or f"msg_{secrets.token_hex(12)}"
        timestamp = int(time.time()) if timestamp is None else timestamp
        if data is None:
            data = self.examples.get(inst.slug, {})
        envelope = {
            "id": msg_id,
            "timestamp": now_iso(),
            "type": event_type,
            "metadata": {
                "log_id": f"log_{secrets.token_hex(6)}",
                "trigger_slug": inst.slug,
                "trigger_id": inst.id,
                "connected_account_id": inst.account.id,
                "auth_config_id": "ac_fake",
                "user_id": inst.user_id,
            },
            "data": dict(data),
        }
        body = json.dumps(envelope, separators=(",", ":")).encode()
        headers = {
            "content-type": "application/json",
            "webhook-id": msg_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": f"v1,{sign(str(secret), msg_id, timestamp, body)}",
            "x-composio-webhook-version": "V3",
            "x-composio-delivery-attempt": str(attempt),
        }
        if client is not None:
            return client.post(url, content=body, headers=headers)
        return httpx.post(url, content=body, headers=headers, timeout=10)

    # -- ASGI ----------------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":  # pragma: no cover - lifespan is off
            return
        request = Request(scope, receive)
        arrived = self.clock()
        method, path = request.method, request.url.path
        body = await request.body()
        status, payload, headers, fault = self._respond(request, method, path, body)
        done, host = self.clock(), request.headers.get("host", "")
        pause = _pause(headers.get("retry-after")) if status == 429 else None
        not_before = None if pause is None else done + pause
        with self._lock:  # logged when handled, even if the answer is then held back
            self.requests.append(Seen(arrived, done, method, path, status, host, not_before))
        if fault is not None and fault.kind == "slow":
            await asyncio.sleep(fault.delay)
        response: Response = JSONResponse(payload, status_code=status, headers=headers)
        await response(scope, receive, send)

    def _respond(
        self, request: Request, method: str, path: str, raw: bytes
    ) -> tuple[int, Any, dict[str, str], Fault | None]:
        req = shapes.request_id()
        headers: dict[str, str] = {"x-request-id": req}
        with self._lock:
            fault = next((f for f in self.faults if f.matches(method, path)), None)
            if fault is not None:
                fault.times -= 1
        try:
            if request.headers.get("x-api-key") != self.api_key:
                raise ApiError(401, "Invalid API key provided", "Auth_InvalidApiKey")
            wait = self._spend()
            if wait is not None:
                headers["retry-after"] = str(wait)
                raise ApiError(429, "Rate limit exceeded for this organisation", "RateLimited")
            if fault is not None and fault.kind in ("429", "500"):
                if fault.kind == "429" and fault.retry_after is not None:
                    headers["retry-after"] = fault.retry_after
                raise ApiError(int(fault.kind), "injected failure", "Injected")
            body = json.loads(raw) if raw else None
            status, payload = self._route(method, path, request, body)
            if fault is not None and fault.kind == "commit_then_500":
                raise ApiError(500, "injected failure after commit", "Injected")
        except ApiError as err:
            return err.status, shapes.error_body(err, req), headers, fault
        return status, payload, headers, fault

    def _spend(self) -> int | None:
        """Count a request in the current fixed minute; seconds to wait when over budget."""
        now = self.clock()
        minute = math.floor(now / 60)
        with self._lock:
            index, used = self._window
            used = used if index == minute else 0
            if used >= self.budget_per_minute:
                return max(1, math.ceil((minute + 1) * 60 - now))
            self._window = (minute, used + 1)
        return None

    def _route(self, method: str, path: str, request: Request, body: Any) -> Result:
        for route_method, pattern, handler in self._routes:
            match = pattern.match(path)
            if match and route_method == method:
                query = {k: request.query_params.getlist(k) for k in request.query_params}
                with self._lock:
                    return handler(body=body, query=query, **match.groupdict())
        raise ApiError(404, f"no route {method} {path}", "NotFound")

    # -- trigger types and accounts -----------------------------------------------------------

    def _get_type(self, slug: str, **_: Any) -> Result:
        if slug not in self.types:
            fix = "list the trigger types of the toolkit (GET /api/v3.1/triggers_types)"
            raise ApiError(404, f"Trigger type {slug} not found", "TriggerType_NotFound", fix)
        return 200, shapes.trigger_type_body(self.types[slug])

    def _list_types(self, query: dict[str, list[str]], **_: Any) -> Result:
        toolkits = _values(query, "toolkit_slugs")
        found = [
            shapes.trigger_type_body(t)
            for slug, t in sorted(self.types.items())
            if not toolkits or t["toolkit"]["slug"] in toolkits
        ]
        return 200, shapes.page(found, query)

    def _account(self, id: str) -> Account:
        if id not in self.accounts:
            fix = "check the connected account id, or connect the account first"
            raise ApiError(
                404, f"Connected account {id} not found", "ConnectedAccount_NotFound", fix
            )
        return self.accounts[id]

    def _get_account(self, id: str, **_: Any) -> Result:
        return 200, self._account(id).body()

    def _list_accounts(self, query: dict[str, list[str]], **_: Any) -> Result:
        wanted: list[tuple[set[str], Callable[[Account], str]]] = [
            (_values(query, "user_ids"), lambda a: a.user_id),
            (_values(query, "toolkit_slugs"), lambda a: a.toolkit),
            (_values(query, "statuses"), lambda a: a.status),
            (_values(query, "connected_account_ids"), lambda a: a.id),
        ]
        found = [
            a.body(listed=True)
            for a in sorted(self.accounts.values(), key=lambda a: a.id)
            if all(not w or get(a) in w for w, get in wanted)
        ]
        return 200, shapes.page(found, query)

    # -- trigger instances -------------------------------------------------------------------

    def _make(self, slug: str, account: Account, user: str, config: dict[str, Any]) -> Instance:
        self._seq += 1
        inst = Instance(f"ti_{secrets.token_urlsafe(9)}", self._seq, slug, account, user, config)
        self._instances[inst.id] = inst
        return inst

    def _upsert(self, slug: str, body: Any, **_: Any) -> Result:
        ttype = self.types.get(slug)
        if ttype is None:
            raise ApiError(404, f"Trigger type {slug} not found", "TriggerType_NotFound")
        body = body or {}
        config = body.get("trigger_config") or body.get("triggerConfig") or {}
        account_id, user = body.get("connected_account_id"), body.get("user_id")
        toolkit = ttype["toolkit"]["slug"]
        if account_id is None and user is None:
            raise ApiError(400, "connected_account_id or user_id is required", "BadRequest")
        if account_id is not None:
            if account_id not in self.accounts:
                msg = f"Connected account {account_id} not found"
                raise ApiError(400, msg, "ConnectedAccount_NotFound")
            account = self.accounts[account_id]
        else:
            mine = [
                a
                for a in self.accounts.values()
                if (a.user_id, a.toolkit, a.status) == (user, toolkit, "ACTIVE")
            ]
            if not mine:
                msg = f"No active connected account for user {user} and toolkit {toolkit}"
                raise ApiError(400, msg, "ConnectedAccount_NotFound", "connect the account first")
            account = mine[0]
        user = user or account.user_id
        errors = sorted(jsonschema.Draft7Validator(ttype["config"]).iter_errors(config), key=str)
        if errors:
            msg = f"Invalid trigger config: {errors[0].message}"
            raise ApiError(400, msg, "TriggerInstance_PollingConfigInvalid")
        same = (slug, account.id, user, _canonical(config))
        for inst in self._instances.values():
            if (inst.slug, inst.account.id, inst.user_id, _canonical(inst.config)) == same:
                inst.disabled_at = None
                inst.updated_at = now_iso()
                return 200, {"trigger_id": inst.id}
        return 200, {"trigger_id": self._make(slug, account, user, config).id}

    def _list_active(self, query: dict[str, list[str]], **_: Any) -> Result:
        getters: list[tuple[set[str], Callable[[Instance], str]]] = [
            (_values(query, "trigger_ids", "triggerIds"), lambda i: i.id),
            (_values(query, "trigger_names", "triggerNames"), lambda i: i.slug),
            (
                _values(query, "connected_account_ids", "connectedAccountIds"),
                lambda i: i.account.id,
            ),
            (_values(query, "user_ids"), lambda i: i.user_id),
        ]
        show = {"true", "1"} & _values(query, "show_disabled", "showDisabled")
        items = [
            i.item()
            for i in sorted(self._instances.values(), key=lambda i: i.seq)
            if (show or i.disabled_at is None) and all(not w or get(i) in w for w, get in getters)
        ]
        return 200, shapes.page(items, query)

    def _instance(self, id: str) -> Instance:
        if id not in self._instances:
            raise ApiError(404, f"Trigger instance {id} not found", "TriggerInstance_NotFound")
        return self._instances[id]

    def _manage(self, id: str, body: Any, **_: Any) -> Result:
        inst, body = self._instance(id), body or {}
        if body.get("status") == "enable":
            inst.disabled_at = None
        elif body.get("status") == "disable":
            inst.disabled_at = now_iso()
        if body.get("user_id"):
            inst.user_id = body["user_id"]
        inst.updated_at = now_iso()
        return 200, {"status": "success"}

    def _delete(self, id: str, **_: Any) -> Result:
        del self._instances[self._instance(id).id]
        return 200, {"trigger_id": id}

    # -- webhook subscription (one per project) ----------------------------------------------

    def _sub(self, id: str) -> dict[str, Any]:
        if self.subscription is None or self.subscription["id"] != id:
            raise ApiError(404, f"Webhook subscription {id} not found", "Webhook_NotFound")
        return self.subscription

    def _read(self, sub: dict[str, Any]) -> dict[str, Any]:
        return shapes.subscription_body(sub, with_secret=self.secret_on_read)

    def _list_subs(self, query: dict[str, list[str]], **_: Any) -> Result:
        items = [self._read(self.subscription)] if self.subscription else []
        return 200, shapes.page(items, {"limit": ["20"], **query})

    def _get_sub(self, id: str, **_: Any) -> Result:
        return 200, self._read(self._sub(id))

    def _check_sub(self, body: dict[str, Any]) -> None:
        url = str(body.get("webhook_url", ""))
        if "webhook_url" in body and not url.startswith("https://"):
            fix = "use an https:// URL that Composio can reach"
            raise ApiError(400, "webhook_url must be an HTTPS URL", "BadRequest", fix)
        unknown = set(body.get("enabled_events") or []) - set(EVENT_TYPES)
        if unknown:
            raise ApiError(400, f"unknown event types: {sorted(unknown)}", "BadRequest")

    def _create_sub(self, body: Any, **_: Any) -> Result:
        if self.subscription is not None:
            raise ApiError(409, "a webhook subscription already exists", "Webhook_Exists")
        self._check_sub(body or {})
        now = now_iso()
        self.subscription = {
            "id": f"ws_{secrets.token_hex(6)}",
            "webhook_url": body["webhook_url"],
            "version": body.get("version") or "V3",
            "enabled_events": list(body["enabled_events"]),
            "secret": f"whsec_{secrets.token_urlsafe(24)}",
            "created_at": now,
            "updated_at": now,
        }
        return 201, shapes.subscription_body(self.subscription, with_secret=True)

    def _update_sub(self, id: str, body: Any, **_: Any) -> Result:
        sub, body = self._sub(id), body or {}
        self._check_sub(body)
        sub.update({k: body[k] for k in ("webhook_url", "version", "enabled_events") if k in body})
        sub["updated_at"] = now_iso()
        return 200, self._read(sub)

    def _delete_sub(self, id: str, **_: Any) -> Result:
        self._sub(id)
        self.subscription = None
        return 200, {"success": True}

    def _rotate(self, id: str, **_: Any) -> Result:
        sub = self._sub(id)
        sub["secret"] = f"whsec_{secrets.token_urlsafe(24)}"
        sub["updated_at"] = now_iso()
        return 200, {"id": id, "secret": sub["secret"]}

    def _event_types(self, **_: Any) -> Result:
        return 200, {"items": [{**e, "supported_versions": ["V3"]} for e in EVENT_DESCRIPTIONS]}


def _values(query: dict[str, list[str]], *names: str) -> set[str]:
    """A list parameter, sent repeated or comma-joined."""
    return {s for n in names for v in query.get(n, []) for s in v.split(",") if s}


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))
