"""The served Inngest endpoint: the one process that registers the app with Inngest.

A sync registers the URL of whoever sends it, so only the serving app syncs, at the URL it is
served at. Its functions come from the shared served-job table (``state.served``), never from
this process's files, so a sync from any replica registers the same set. It syncs at start,
when the table's version moves (a reconcile here or in another process), and whenever a ``PUT``
reaches the endpoint: that is how an applier elsewhere (CI) or Inngest's dashboard asks for a
resync, and the PUT first rebuilds the function set from the table, so the sync is never of a
stale set. The SDK still judges the PUT (with ``INNGEST_ENABLE_UNAUTHED_SYNC=false`` it must be
signed; our own PUTs are).

After each sync, and every ``verify_interval`` seconds, the app is read back from Inngest: a
function missing, a cron lost or the app registered at another URL makes ``last_sync_ok``
false on ``/healthz`` (an accepted sync is not proof). A failed sync is retried with capped
exponential backoff and jitter (2 s doubling to 5 min), not on every tick, so an Inngest outage
does not turn every replica into a register storm; a new applied version is tried at once.
In production mode ``asgi.FreshSignatures`` sits in front: the SDK checks a signature's HMAC
but not its age.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable, Mapping
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from planner_operator.backends.inngest import readback
from planner_operator.backends.inngest import sdk as inngest_app
from planner_operator.backends.inngest.asgi import FreshSignatures, SwappableApp
from planner_operator.backends.inngest.sdk import InngestConfig
from planner_operator.core import clock as clock_mod
from planner_operator.errors import PlannerError
from planner_operator.state.served import ServedJob, ServedJobs

log = logging.getLogger("planner_operator.serve")

RETRY_FIRST = 2.0  # seconds before the first retry of a failed sync
RETRY_MAX = 300.0  # the longest wait between retries


class InngestMount:
    def __init__(
        self,
        config: InngestConfig,
        table: ServedJobs,
        handler: inngest_app.JobHandler,
        *,
        clock: clock_mod.Clock = clock_mod.SYSTEM,
        jitter: Callable[[], float] = random.random,
        verify_interval: float = 60.0,
    ) -> None:
        """``jitter`` returns a number in [0, 1) (a test passes a constant); ``clock`` dates
        signatures and paces retries and read-backs."""
        self.config = config
        self.table = table
        self.handler = handler
        self.clock = clock
        self.verify_interval = verify_interval
        self._jitter = jitter
        config.client()  # fail fast: refuses production mode without a signing key
        self._built: tuple[int, list[ServedJob]] = (-1, [])
        self._swappable = SwappableApp(self._build())
        # what is mounted: the age check first (signed calls only come in production mode)
        entry = _Entry(self)
        self.app: ASGIApp = FreshSignatures(entry, clock) if config.production else entry
        self._endpoint: ASGIApp = entry  # our own PUTs: signed already, dated now
        self.served_version = -1  # the table version last synced successfully
        self.last_sync: inngest_app.SyncResult | None = None
        self.failures = 0  # consecutive failed syncs
        self.retry_at: float | None = None  # monotonic time of the next retry, after a failure
        self._failed_version: int | None = None
        self._synced_jobs: list[ServedJob] = []
        self.read_back: list[str] | None = None  # problems the last read-back found (None: none)
        self.url_ok: bool | None = None  # every function at the serve URL (None: not read)
        self.read_back_error: str | None = None
        self._read_at: float | None = None

    def _build(self) -> ASGIApp:
        """A fresh SDK app for the applied jobs (the app version is the table's version)."""
        version = self.table.versions()[0]
        jobs = self.table.jobs()
        client = self.config.client(applied_version=version)
        functions = inngest_app.build_functions(client, jobs, self.config, self.handler)
        self._built = (version, jobs)
        return inngest_app.build_app(client, functions, self.config)

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Calls go to the SDK app; a PUT (sync) is made against a fresh build and recorded."""
        if scope["type"] != "http" or scope["method"] != "PUT":
            await self._swappable(scope, receive, send)
            return
        self._swappable.swap(self._build())
        version, jobs = self._built
        messages: list[Message] = []

        async def keep(message: Message) -> None:
            messages.append(message)

        await self._swappable(scope, receive, keep)
        status = next((m["status"] for m in messages if m["type"] == "http.response.start"), 500)
        body = b"".join(m.get("body", b"") for m in messages if m["type"] == "http.response.body")
        if status != 401:  # a refused stranger's PUT says nothing about our sync
            await self._record(version, jobs, inngest_app.sync_answer(status, body))
        for message in messages:
            await send(message)

    async def _record(
        self, version: int, jobs: list[ServedJob], result: inngest_app.SyncResult
    ) -> None:
        self.last_sync = result
        if not result.ok:
            self._failed(version)
            wait = (self.retry_at or 0.0) - self.clock.monotonic()
            log.error(
                "inngest: sync failed (%d in a row, next try in %.0f s): %s",
                self.failures,
                wait,
                result.error,
            )
            return
        self.served_version, self._synced_jobs = version, jobs
        self.failures, self.retry_at, self._failed_version = 0, None, None
        log.info("inngest: synced %d job(s) (version %d)", len(jobs), version)
        await self.verify()

    async def refresh(self, *, force: bool = False) -> inngest_app.SyncResult | None:
        """Sync now (in-process, signed) when the applied jobs changed, or when forced."""
        version, _ = self.table.versions()
        if version == self.served_version and not force:
            return None
        await inngest_app.sync_async(self._endpoint, self.config, clock=self.clock)
        return self.last_sync

    def _failed(self, version: int) -> None:
        self.failures = self.failures + 1 if version == self._failed_version else 1
        self._failed_version = version
        delay = min(RETRY_FIRST * 2.0 ** (self.failures - 1), RETRY_MAX)
        self.retry_at = self.clock.monotonic() + delay * (0.5 + self._jitter() / 2)

    async def tick(self) -> inngest_app.SyncResult | None:
        """One watcher step: sync a new applied version now, retry a failed one when due, read
        the app back when that is due. Returns the sync's result when one was made."""
        version, _ = self.table.versions()
        now = self.clock.monotonic()
        if version != self.served_version:
            waiting = version == self._failed_version and self.retry_at is not None
            if not waiting or now >= (self.retry_at or 0.0):
                return await self.refresh()
        elif self._read_at is None or now - self._read_at >= self.verify_interval:
            await self.verify()
        return None

    async def watch(self, interval: float) -> None:
        while True:
            try:
                await self.tick()
            except Exception:  # keep serving; a later tick retries
                log.exception("inngest: refresh failed")
                self._failed(self.table.versions()[0])
            await asyncio.sleep(interval)

    async def verify(self) -> list[str] | None:
        """Read the app back: the synced jobs' functions and crons, every function's URL."""
        self._read_at = self.clock.monotonic()
        try:
            listed = await asyncio.to_thread(readback.read_functions, self.config)
        except PlannerError as exc:
            self.read_back_error = str(exc)
            log.warning("inngest: reading the app back failed: %s", exc)
            return None
        by_id: dict[str, Mapping[str, Any]] = {
            f"{self.config.app_id}-{readback.short_id(self.config, f)}": f for f in listed
        }
        self.read_back_error = None
        self.read_back = readback.problems(self.config, self._synced_jobs, by_id)
        self.url_ok = all(readback.url_problem(self.config, f) is None for f in listed)
        for problem in self.read_back:
            log.warning("%s", problem)
        return self.read_back

    def status(self) -> Mapping[str, object]:
        """``last_sync_ok``: the last sync was accepted *and* the latest read-back found the app
        as synced, at the serve URL (None before the first sync)."""
        last = self.last_sync
        ok = None if last is None else (last.ok and not self.read_back)
        return {
            "app_id": self.config.app_id,
            "served_version": self.served_version,
            "last_sync_ok": ok,
            "last_sync_error": None if last is None else last.error,
            "registered_url_ok": self.url_ok,
            "sync_failures": self.failures,
        }


class _Entry:
    """The mount as an ASGI app (an object: Starlette would take a bound method for an endpoint
    function of a request)."""

    def __init__(self, mount: InngestMount) -> None:
        self.mount = mount

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.mount.handle(scope, receive, send)
