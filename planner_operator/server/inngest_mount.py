"""The served Inngest endpoint, rebuilt and re-synced whenever the applied jobs change.

The SDK freezes the function list at ``serve()``; a reconcile (in this process or another)
changes the Inngest backend's job table and bumps its version. A watcher notices the new
version, builds a fresh function set, swaps it in behind the stable route and syncs again, so
the functions Inngest calls are always the applied ones.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping

from starlette.types import ASGIApp

from planner_operator.backends.inngest import sdk as inngest_app
from planner_operator.backends.inngest.sdk import InngestConfig, SwappableApp
from planner_operator.state.served import ServedJobs

log = logging.getLogger("planner_operator.serve")


class InngestMount:
    def __init__(
        self, config: InngestConfig, table: ServedJobs, handler: inngest_app.JobHandler
    ) -> None:
        self.config = config
        self.table = table
        self.handler = handler
        config.client()  # fail fast: refuses production mode without a signing key
        self.app = SwappableApp(self._build())
        self.served_version = -1
        self.last_sync: inngest_app.SyncResult | None = None

    def _build(self) -> ASGIApp:
        """A fresh SDK app for the applied jobs (same app version as the reconcile's sync)."""
        client = self.config.client(applied_version=self.table.versions()[0])
        functions = inngest_app.build_functions(
            client, self.table.jobs(), self.config, self.handler
        )
        return inngest_app.build_app(client, functions, self.config)

    async def refresh(self, *, force: bool = False) -> inngest_app.SyncResult | None:
        """Rebuild and re-sync when the applied jobs changed (or when forced)."""
        version, _ = self.table.versions()
        if version == self.served_version and not force:
            return None
        self.app.swap(self._build())
        result = await inngest_app.sync_async(self.app, self.config)
        self.last_sync = result
        if result.ok:
            self.served_version = version
            log.info("inngest: synced %d job(s) (version %d)", len(self.table.jobs()), version)
        else:
            log.error("inngest: sync failed: %s", result.error)
        return result

    async def watch(self, interval: float) -> None:
        while True:
            try:
                await self.refresh()
            except Exception:  # keep serving; the next tick retries
                log.exception("inngest: refresh failed")
            await asyncio.sleep(interval)

    def status(self) -> Mapping[str, object]:
        last = self.last_sync
        return {
            "app_id": self.config.app_id,
            "served_version": self.served_version,
            "last_sync_ok": None if last is None else last.ok,
            "last_sync_error": None if last is None else last.error,
        }
