"""Webhook ingress: verify, store durably, acknowledge. Nothing runs inside the request.

``POST /webhooks/composio`` takes Composio deliveries (any payload version); ``POST
/webhooks/{agent}/{trigger}`` takes generic signed webhooks for triggers with a ``webhook``
spec (Standard Webhooks or GitHub-style, per the trigger). A request is answered 202 only after
its delivery is committed to the inbox (group commit: :class:`GroupCommitter`); a repeat of a
stored delivery id is answered 200 ``duplicate`` (a 4xx could make the sender disable us).

Bad input never gets a 5xx (senders retry those: a 500 would turn garbage into a retry storm):
415 wrong content type, 413 body over the cap (a declared length is refused before reading, a
chunked body is cut at the cap), 400 missing or garbled headers or a body that is no known
payload, 401 bad or stale signature, 404 unknown trigger. 503 is kept for our own trouble (the
inbox cannot commit, a secret went missing): the sender should retry those. A Composio delivery
for a trigger id this operator does not own is stored and later ignored, not refused: Composio
sends every trigger of the project to one URL, unmanaged ones included.

Logs carry the delivery id, trigger and outcome; never secrets, signature headers or bodies.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import logging
from collections import Counter
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from fastapi import APIRouter, Request, Response
from starlette.requests import ClientDisconnect

from planner_operator.backends.composio import payloads
from planner_operator.core import clock as clock_mod
from planner_operator.core import jsonsafe, keys, variables, webhook_secrets
from planner_operator.core.records import NewDelivery
from planner_operator.core.settings import Settings
from planner_operator.errors import StateError, StateUnavailable
from planner_operator.runtime import events
from planner_operator.runtime.executors.base import Executors
from planner_operator.runtime.worker import Routes, Worker, WorkerConfig
from planner_operator.server import metrics, signatures
from planner_operator.server.worker_process import WorkerProcess
from planner_operator.state import inbox as inbox_mod
from planner_operator.state import open as state_open
from planner_operator.state.inbox import Inbox
from planner_operator.state.runs import RunStore

log = logging.getLogger("planner_operator.webhooks")

DEFAULT_MAX_BODY = variables.WEBHOOK_MAX_BODY.default
# stored with a delivery (for replays and `inbox show`); never the signature headers
KEEP_HEADERS = (
    *("webhook-id", "webhook-timestamp", "x-composio-webhook-version"),
    *("x-composio-delivery-attempt", "content-type", "user-agent"),
    *("x-github-event", "x-github-delivery", "x-github-hook-id"),
)


class Rejected(Exception):
    def __init__(self, status: int, message: str) -> None:
        self.status = status
        self.message = message
        super().__init__(message)


def tune_gc() -> None:
    """Keep full garbage collections from pausing acknowledgements.

    With FastAPI, pydantic and the SDKs loaded, a full collection walks a large heap and stalls
    the event loop for tens of ms, which was most of the ack p99 in bench/webhook_bench.py.
    Freezing what exists after startup (CPython's ``gc.freeze``, as pre-fork servers do) takes
    that heap out of every later collection, and a larger young generation makes collections
    rarer. Process-wide, so it is for the ``serve`` process to choose: call it once the app is
    built, or set ``PLANNER_GC_TUNE=1`` to have the app do it at startup.
    """
    gc.collect()
    gc.freeze()
    young, middle, old = gc.get_threshold()
    gc.set_threshold(max(young, 10_000), middle, old)


class GroupCommitter:
    """Group commit: concurrent requests' deliveries share one transaction.

    Each request awaits :meth:`submit`; one writer takes everything pending, commits it in one
    transaction and then resolves every waiter, so the 202 goes out only after the commit. While
    one batch commits the next one gathers, so batches grow with load and the per-delivery cost
    of the commit shrinks. The writer never shares threads with executors, whose runs may take
    minutes, so an acknowledgement never waits for one.

    Where the commit runs is a measured choice (bench/webhook_bench.py). With
    ``synchronous=NORMAL`` a WAL commit is a ``write()`` into the page cache (~0.3 ms for a
    batch), so it runs on the event loop itself: handing it to a thread cost more, because every
    SQLite call in that thread waits up to the GIL's 5 ms switch interval to get the GIL back
    from a busy loop. The expensive part, the checkpoint that fsyncs the database file, is taken
    off the commit path and done every ``checkpoint_every`` seconds in a thread with its own
    connection (it does not block writers). With ``synchronous=FULL`` every commit fsyncs, and a
    PostgreSQL commit is a round trip plus the server's fsync, so those commits go to the writer
    thread instead: on the loop, each one stalled every request and kept batches at ~5
    deliveries (172 req/s against SQLite's 1,721 on the same machine).
    """

    def __init__(
        self,
        inbox: Inbox,
        *,
        max_batch: int = 512,
        on_commit: Callable[[], None] | None = None,
        inline: bool | None = None,
        checkpoint_every: float = 1.0,
    ) -> None:
        self.inbox = inbox
        self.max_batch = max_batch
        self.on_commit = on_commit
        self.inline = inbox.cheap_commits if inline is None else inline
        self.checkpoint_every = checkpoint_every
        self._pending: list[tuple[NewDelivery, asyncio.Future[bool]]] = []
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="inbox-writer")
        self._checkpointing: asyncio.Future[None] | None = None
        self._last_checkpoint = inbox.clock.monotonic()
        self.batches = 0
        self.committed = 0

    async def start(self) -> None:
        if self.inline:
            self.inbox.manual_checkpoints()
        self._wake = asyncio.Event()
        self._task = asyncio.create_task(self._run(), name="inbox-group-commit")

    async def stop(self) -> None:
        """Flush what is pending, then stop the writer."""
        if self._task is None:
            return
        while self._pending and not self._task.done():
            await asyncio.sleep(0.005)
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None
        if self._checkpointing is not None:
            with contextlib.suppress(Exception):
                await self._checkpointing
        self._pool.shutdown(wait=True)
        if self.inline:
            with contextlib.suppress(Exception):
                self.inbox.checkpoint()

    async def submit(self, delivery: NewDelivery) -> bool:
        """Commit ``delivery``; ``True`` if new, ``False`` if the id was already stored."""
        if self._wake is None or self._task is None or self._task.done():
            raise StateError("the inbox writer is not running")
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._pending.append((delivery, future))
        self._wake.set()
        return await future

    async def _run(self) -> None:
        assert self._wake is not None
        loop = asyncio.get_running_loop()
        while True:
            if not self._pending:
                self._wake.clear()
                await self._wake.wait()
            batch = self._pending[: self.max_batch]
            del self._pending[: len(batch)]
            try:
                results: list[bool | Exception] = list(
                    await self._insert(loop, [d for d, _ in batch])
                )
            except StateUnavailable as exc:  # the database is away: one by one would wait for
                results = [exc] * len(batch)  # a connection once per delivery; all answer 503
            except Exception:  # one delivery may spoil the transaction: find it, keep the rest
                results = [await self._insert_one(loop, d) for d, _ in batch]
            self.batches += 1
            self.committed += sum(1 for r in results if not isinstance(r, Exception))
            for (_, future), result in zip(batch, results, strict=True):
                if future.done():
                    continue
                if isinstance(result, Exception):  # the request answers 503; senders retry
                    future.set_exception(result)
                else:
                    future.set_result(result)
            if self.on_commit is not None:
                self.on_commit()
            if self.inline:
                self._maybe_checkpoint(loop)
            await asyncio.sleep(0)  # let the woken requests answer before the next batch

    async def _insert(
        self, loop: asyncio.AbstractEventLoop, items: list[NewDelivery]
    ) -> list[bool]:
        if self.inline:
            return self.inbox.insert_many(items)
        return await loop.run_in_executor(self._pool, self.inbox.insert_many, items)

    async def _insert_one(
        self, loop: asyncio.AbstractEventLoop, item: NewDelivery
    ) -> bool | Exception:
        """After a failed batch: each delivery alone, so a delivery the inbox cannot store fails
        only its own request, not the unrelated ones that happened to share its transaction."""
        try:
            [new] = await self._insert(loop, [item])
        except Exception as exc:
            return exc
        return new

    def _maybe_checkpoint(self, loop: asyncio.AbstractEventLoop) -> None:
        now = self.inbox.clock.monotonic()
        if self._checkpointing is not None or now - self._last_checkpoint < self.checkpoint_every:
            return
        self._last_checkpoint = now
        self._checkpointing = loop.run_in_executor(self._pool, self.inbox.checkpoint)
        self._checkpointing.add_done_callback(self._checkpointed)

    def _checkpointed(self, future: asyncio.Future[None]) -> None:
        self._checkpointing = None
        if not future.cancelled() and future.exception() is not None:
            log.warning("inbox: checkpoint failed: %s", future.exception())


class Webhooks:
    """Ingress, inbox writer and (optionally) the worker of one ``serve`` process."""

    def __init__(
        self,
        *,
        settings: Settings,
        env: Mapping[str, str],
        runs: RunStore,
        executors: Executors,
        worker: bool | None = None,
        worker_process: bool = False,
        clock: clock_mod.Clock = clock_mod.SYSTEM,
    ) -> None:
        """``worker_process``: run the worker as a child process (``server/worker_process``),
        which ``serve`` does by default; the app of a test keeps it a thread of this process."""
        self.settings = settings
        self.env = dict(env)
        self.clock = clock  # signature timestamps, arrival times, leases, route ages
        self.routes = Routes(settings, clock=clock)
        self.routes.reload()
        for key, problem in sorted(
            signatures.secret_problems(self.routes.all(), settings, self.env).items()
        ):  # that trigger's deliveries get 503; everything else serves
            log.error("webhooks: %s: %s: its deliveries are refused (503)", key, problem)
        self.composio_secrets = signatures.composio_secrets(settings, self.env)
        self.verifier = signatures.Verifier()
        self.max_body = variables.WEBHOOK_MAX_BODY.read(self.env)
        sync = variables.INBOX_SYNCHRONOUS.read(self.env)
        self.inbox = state_open.inbox(
            settings, synchronous="FULL" if sync == "FULL" else "NORMAL", clock=clock
        )
        self.worker: Worker | None = None
        self.worker_process: WorkerProcess | None = None
        wanted = variables.WORKER.read(self.env) if worker is None else worker
        if wanted and worker_process:
            self.worker_process = WorkerProcess(settings, self.env)
        elif wanted:
            self.worker = Worker(
                inbox=state_open.inbox(settings, clock=clock),
                routes=self.routes,
                runs=runs,
                executors=executors,
                config=WorkerConfig.from_env(self.env),
            )
        self.committer = GroupCommitter(self.inbox, on_commit=self._committed)
        self.stats: Counter[str] = Counter()
        self._tasks: list[asyncio.Task[None]] = []

    def _committed(self) -> None:
        if self.worker is not None:
            self.worker.wake()
        if self.worker_process is not None:
            self.worker_process.wake()

    async def start(self) -> None:
        if variables.GC_TUNE.read(self.env):
            tune_gc()
        await self.committer.start()
        self._tasks.append(asyncio.create_task(self._refresh_routes(), name="webhook-routes"))
        if self.worker is not None:
            self._tasks.append(asyncio.create_task(self.worker.run(), name="inbox-worker"))
        if self.worker_process is not None:
            await self.worker_process.start()

    async def stop(self, grace: float = 10.0) -> None:
        await self.committer.stop()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        if self.worker is not None:
            await self.worker.wait_idle(grace)
        if self.worker_process is not None:
            await self.worker_process.stop(grace)

    async def _refresh_routes(self) -> None:
        """Keep the trigger snapshot and the Composio secret current, off the event loop."""
        while True:
            await asyncio.sleep(self.routes.max_age)
            try:
                await asyncio.to_thread(self.routes.reload)
                self.composio_secrets = await asyncio.to_thread(
                    signatures.composio_secrets, self.settings, self.env
                )
            except Exception:
                log.exception("webhooks: cannot re-read the ledger; keeping the last snapshot")

    # -- requests --------------------------------------------------------------------------------

    async def composio(self, request: Request) -> Response:
        headers = _headers(request)
        hint = headers.get("webhook-id")
        try:
            secret = self.composio_secrets  # the current one, and a rotated-out one in grace
            if not secret:
                if any(r.backend == "composio" for r in self.routes.all()):
                    raise Rejected(503, "the Composio webhook secret is not configured")
                raise Rejected(404, "Composio webhooks are not configured here")
            body = await self._body(request, headers)
            msg_id = self.verifier.composio(
                secret,
                msg_id=headers.get("webhook-id"),
                timestamp=headers.get("webhook-timestamp"),
                signature=headers.get("webhook-signature"),
                body=body,
                now=clock_mod.epoch(self.clock),
            )
            envelope = payloads.normalize_composio(
                _json(body), headers.get("x-composio-webhook-version")
            )
        except (Rejected, signatures.SignatureError, payloads.PayloadError) as exc:
            return self._reject(exc, hint, "composio")
        route = self.routes.find("composio", remote_id=envelope.trigger_id)
        delivery = NewDelivery(
            id=inbox_mod.delivery_id("composio", msg_id),
            source="composio",
            body=body,
            headers=_kept(headers),
            trigger_key=route.key if route else None,
            remote_id=envelope.trigger_id or envelope.connected_account_id,
            event_type=envelope.type,
            received_at=clock_mod.epoch(self.clock),
        )
        return await self._store(delivery, route.key if route else envelope.trigger_id)

    async def generic(self, request: Request, agent: str, trigger: str) -> Response:
        key = keys.trigger_key(agent, trigger)
        headers = _headers(request)
        hint = headers.get("webhook-id") or headers.get("x-github-delivery")
        try:
            route = await self._webhook_route(key)
            assert route.webhook is not None
            if webhook_secrets.problem(route.webhook, self.env) is not None:
                raise Rejected(503, "this trigger's webhook secret is not configured")
            secret = variables.dynamic_secret(self.env, route.webhook.secret_env)
            body = await self._body(request, headers)
            if route.webhook.scheme == "github":
                digest = self.verifier.github(
                    secret, signature=headers.get("x-hub-signature-256"), body=body
                )
                signatures.check_id(headers.get("x-github-delivery"), "X-GitHub-Delivery")
                # X-GitHub-Delivery is not signed: a captured body re-sent under new delivery
                # ids would run each time. The signature is what was signed, so it is the key;
                # the inbox keeps it RETENTION (7 days), the window of this dedupe.
                sent_id = f"sha256={digest}"
            else:
                sent_id = self.verifier.standard(
                    secret,
                    msg_id=headers.get("webhook-id"),
                    timestamp=headers.get("webhook-timestamp"),
                    signature=headers.get("webhook-signature"),
                    body=body,
                    now=clock_mod.epoch(self.clock),
                )
            _json(body)
        except (Rejected, signatures.SignatureError, payloads.PayloadError) as exc:
            return self._reject(exc, hint, key)
        delivery = NewDelivery(
            id=inbox_mod.delivery_id("webhook", f"{agent}/{trigger}:{sent_id}"),  # per sender
            source="webhook",
            body=body,
            headers=_kept(headers),
            trigger_key=key,
            remote_id=route.remote_id,
            event_type=headers.get("x-github-event") or events.WEBHOOK_TYPE,
            received_at=clock_mod.epoch(self.clock),
        )
        return await self._store(delivery, key)

    async def _webhook_route(self, key: str) -> events.Route:
        route = self.routes.find("webhook", key=key)
        if route is None and self.routes.age() > 0.5:
            await asyncio.to_thread(self.routes.refresh, 0.5)  # applied a moment ago?
            route = self.routes.find("webhook", key=key)
        if route is None or route.webhook is None:
            raise Rejected(404, "no webhook trigger here")
        return route

    async def _body(self, request: Request, headers: Mapping[str, str]) -> bytes:
        """The raw body, refused (415/413/400) before or while reading; never past the cap."""
        media = (headers.get("content-type") or "").split(";", 1)[0].strip().lower()
        if media != "application/json" and not media.endswith("+json"):
            raise Rejected(415, "content type must be application/json")
        length = headers.get("content-length")
        if length is not None:
            if not (length.isascii() and length.isdigit()):
                raise Rejected(400, "Content-Length is not a number")
            if int(length) > self.max_body:
                raise Rejected(413, f"body over {self.max_body} bytes")
        chunks: list[bytes] = []
        size = 0
        try:
            async for chunk in request.stream():
                size += len(chunk)
                if size > self.max_body:
                    raise Rejected(413, f"body over {self.max_body} bytes")
                chunks.append(chunk)
        except ClientDisconnect:
            raise Rejected(400, "the client went away mid-body") from None
        return b"".join(chunks)

    async def _store(self, delivery: NewDelivery, trigger: str | None) -> Response:
        try:
            new = await self.committer.submit(delivery)
        except Exception as exc:  # our trouble, not the sender's: 503 makes it retry
            log.error("delivery %s trigger=%s outcome=not-stored (%s)", delivery.id, trigger, exc)
            self.stats["unavailable"] += 1
            metrics.webhook_rejected(delivery.source, "overloaded")
            return _answer(503, {"error": "the inbox is unavailable; retry"}, retry_after=True)
        outcome = "accepted" if new else "duplicate"
        self.stats[outcome] += 1
        metrics.webhook_stored(delivery.source, new)
        log.info("delivery %s trigger=%s outcome=%s", delivery.id, trigger or "-", outcome)
        return _answer(202 if new else 200, {"id": delivery.id, "status": outcome})

    def _reject(self, exc: Exception, hint: str | None, trigger: str) -> Response:
        status = getattr(exc, "status", 400)
        message = exc.message if isinstance(exc, Rejected) else str(exc)
        shown = hint if hint and signatures.check_id_ok(hint) else "-"
        self.stats[f"rejected_{status}"] += 1
        source = "composio" if trigger == "composio" else "webhook"  # else a trigger key
        metrics.webhook_rejected(source, metrics.rejection_reason(status, message))
        level = logging.WARNING if status in (401, 503) else logging.INFO
        log.log(
            level, "delivery %s trigger=%s outcome=rejected %d: %s", shown, trigger, status, message
        )
        return _answer(status, {"error": message}, retry_after=status == 503)

    def state(self) -> dict[str, Any]:
        backlog = self.inbox.backlog()
        return {
            "counts": self.inbox.counts(),
            "backlog": {"count": backlog.count, "age_seconds": round(backlog.age, 3)},
            "ingress": dict(self.stats),
            "batches": self.committer.batches,
            "worker": self.worker is not None or self.worker_process is not None,
            "worker_process": None if self.worker_process is None else self.worker_process.pid,
        }


def _answer(status: int, body: Mapping[str, Any], *, retry_after: bool = False) -> Response:
    headers = {"retry-after": "5"} if retry_after else None
    return Response(
        json.dumps(body), status_code=status, media_type="application/json", headers=headers
    )


def _json(body: bytes) -> Any:
    """The body as the worker will read it (the same reader: depth cap, no surrogates)."""
    try:
        return jsonsafe.loads(body)
    except jsonsafe.InvalidJSON as exc:
        raise payloads.PayloadError(f"body: {exc}") from None


def _headers(request: Request) -> dict[str, str]:
    """The request's headers as a dict, built once (Starlette's ``Headers`` scans the raw list on
    every lookup). Names arrive lowercased; for a repeated name the first wins, as in Starlette.
    """
    out: dict[str, str] = {}
    for name, value in request.scope["headers"]:
        out.setdefault(name.decode("latin-1"), value.decode("latin-1"))
    return out


def _kept(headers: Mapping[str, str]) -> dict[str, str]:
    return {name: headers[name] for name in KEEP_HEADERS if name in headers}


def router(hooks: Webhooks) -> APIRouter:
    """The webhook routes for ``create_app``, which includes them with their body cap
    (``include_router(..., max_body_size=...)``: FastAPI drops a plain route's own cap).

    The two ingress routes are plain Starlette routes: no dependency injection or OpenAPI model
    on the hot path (about a tenth of a request's CPU in the benchmark).
    """
    assert hooks is not None
    api = APIRouter()

    async def generic(request: Request) -> Response:
        params = request.path_params
        return await hooks.generic(request, str(params["agent"]), str(params["trigger"]))

    api.add_route("/webhooks/composio", hooks.composio, methods=["POST"], include_in_schema=False)
    api.add_route("/webhooks/{agent}/{trigger}", generic, methods=["POST"], include_in_schema=False)

    @api.get("/api/inbox")
    def inbox_state() -> dict[str, Any]:
        """Deliveries by status and ingress counters (no bodies)."""
        return hooks.state()

    return api
