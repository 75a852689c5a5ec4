"""Jobs as Inngest cron functions: the schedule backend for production.

Inngest has no API to create one function: an app declares its whole function set at sync.
So this backend keeps the applied jobs in the served job table (``state.served``, shared by
every process on PostgreSQL or one SQLite file), item writes only change that table, and
``finish()`` asks the *serving* app to sync once per apply and verifies what Inngest now has.
It never registers from its own process: a sync registers the URL of whoever sends it, and a
CI applier that did so re-pointed the app at itself and replaced its function set. With no
serving app answering at the serve URL the apply fails and says what to set.

``list()`` reads Inngest itself (``GET /v1/apps/{app}/functions``), so drift (a function gone,
a cron not scheduled, the app registered at another URL) shows up in plans, ``status`` and
``reconcile --check``. Paused jobs are not registered (Inngest has no pause API); they are
reported from the table as ``paused``.
"""

from __future__ import annotations

import builtins
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from planner_operator.backends.base import BackendInfo, Page, RemoteObject, ScheduleBackend
from planner_operator.backends.inngest import readback
from planner_operator.backends.inngest import sdk as inngest_app
from planner_operator.backends.inngest.sdk import InngestConfig
from planner_operator.core import clock as clock_mod
from planner_operator.core import specs
from planner_operator.core.closing import Closing
from planner_operator.core.settings import Settings
from planner_operator.errors import NotFound
from planner_operator.state import open as state_open
from planner_operator.state import served

NAME = "inngest"


class InngestScheduleBackend(Closing):
    def __init__(
        self,
        config: InngestConfig,
        table: served.ServedJobs | Path | str,
        *,
        clock: clock_mod.Clock = clock_mod.SYSTEM,
    ) -> None:
        """``table`` is the served job table (``state.open.served_jobs``), or a SQLite file;
        ``clock`` dates the signature of the sync request."""
        self.config = config
        self.clock = clock
        self.table = (
            table if isinstance(table, served.ServedJobs) else served.ServedJobs(table, clock=clock)
        )
        self._listed: dict[str, dict[str, Any]] | None = None

    @property
    def info(self) -> BackendInfo:
        where = self.config.api_base_url
        return BackendInfo(name=NAME, kind="job", detail=f"app {self.config.app_id} at {where}")

    def close(self) -> None:
        self.table.close()

    def remote_id(self, key: str) -> str:
        return f"{self.config.app_id}-{inngest_app.function_id(key)}"

    # -- Protocol ----------------------------------------------------------------------------

    def list(self, *, cursor: str | None = None, limit: int = 100) -> Page:
        """Registered functions from Inngest, plus paused jobs from the table."""
        objects = self._objects()
        start = int(cursor) if cursor and cursor.isdigit() else 0
        page = objects[start : start + limit]
        more = start + limit < len(objects)
        return Page(tuple(page), str(start + limit) if more else None)

    def create(self, key: str, spec: Mapping[str, Any]) -> RemoteObject:
        self.table.put(key, inngest_app.function_id(key), spec)
        return self._as_applied(key, spec)

    def update(self, remote_id: str, key: str, spec: Mapping[str, Any]) -> RemoteObject:
        if self.table.get(key) is None:
            self._listed = None
            if remote_id not in self._remote():
                raise NotFound(f"no function {remote_id} to update", backend=NAME)
        self.table.put(key, inngest_app.function_id(key), spec)
        return self._as_applied(key, spec)

    def delete(self, remote_id: str) -> None:
        fn_id = self._short(remote_id)
        removed = self.table.remove_fn(fn_id)
        if not removed and remote_id not in self._remote():
            raise NotFound(f"no function {remote_id}", backend=NAME)

    # -- Finisher ----------------------------------------------------------------------------

    def finish(self) -> builtins.list[str]:
        """Have the serving app sync when the applied set changed since the last good sync, or
        when Inngest does not have it as applied (a cron lost, the app at another URL); then
        verify the read-back. Returns the problems, each of which fails the apply."""
        version, synced = self.table.versions()
        if version == synced and not self.verify():
            return []
        result = inngest_app.request_sync(self.config, clock=self.clock)
        if not result.ok:
            return [self._sync_problem(result)]
        problems = self.verify()
        if not problems:
            self.table.mark_synced(version)
        return problems

    def _sync_problem(self, result: inngest_app.SyncResult) -> str:
        url = self.config.serve_url
        if not result.reached:
            return (
                f"inngest: no serving app answered at {url} ({result.error}). Only the app "
                "that serves the Inngest endpoint registers itself, at the URL it is served "
                "at; this process did not sync. Start `planner-operator serve` there, or set "
                "INNGEST_SERVE_ORIGIN (and INNGEST_SERVE_PATH) to the public URL of the "
                "running `serve`; the applied jobs are in the shared state and sync once it "
                "answers."
            )
        return f"inngest: sync failed (asked the serving app at {url}): {result.error}"

    def verify(self) -> builtins.list[str]:
        """Every enabled job's function with its exact cron, every function at the serve URL."""
        self._listed = None
        return readback.problems(self.config, self.table.jobs(), self._remote())

    # -- internals ---------------------------------------------------------------------------

    def _remote(self) -> dict[str, dict[str, Any]]:
        if self._listed is None:
            listed = readback.read_functions(self.config)
            self._listed = {
                f"{self.config.app_id}-{readback.short_id(self.config, f)}": f for f in listed
            }
        return self._listed

    def _objects(self) -> builtins.list[RemoteObject]:
        self._listed = None
        out: builtins.list[RemoteObject] = []
        for rid, function in sorted(self._remote().items()):
            fn_id = rid[len(self.config.app_id) + 1 :]
            if fn_id == inngest_app.SENTINEL_ID:
                continue
            crons = readback.crons_of(function)
            key = self.table.key_of(fn_id)
            spec = self._observed(key, crons)
            reason = readback.url_problem(self.config, function)
            if not crons:
                reason = "registered without a cron trigger (not scheduled)"
            out.append(
                RemoteObject(
                    rid, "job", spec, key=key, state="error" if reason else "active", reason=reason
                )
            )
        remote_ids = {o.remote_id for o in out}
        for job in self.table.jobs():
            rid = self.remote_id(job.key)
            if not specs.enabled(job.spec) and rid not in remote_ids:
                out.append(self._as_applied(job.key, job.spec))
        return out

    def _observed(self, key: str | None, crons: builtins.list[str]) -> dict[str, Any]:
        """Schedule and timezone as listed; the applied spelling when Inngest has exactly the
        cron we send for it (``cron_of`` may rewrite day-of-week for robfig: not drift)."""
        if not crons:
            return {"schedule": "", "enabled": True}
        applied = self.table.get(key) if key is not None else None
        if applied is not None and crons[0] == inngest_app.cron_of(applied.spec):
            spec = {"schedule": applied.spec["schedule"], "timezone": specs.timezone(applied.spec)}
        else:
            spec = inngest_app.parse_cron(crons[0])
        return {**spec, "enabled": True}  # registered: paused jobs are not registered

    def _as_applied(self, key: str, spec: Mapping[str, Any]) -> RemoteObject:
        enabled = specs.enabled(spec)
        observed = {
            "schedule": spec.get("schedule", ""),
            "timezone": specs.timezone(spec),
            "enabled": enabled,
        }
        return RemoteObject(
            self.remote_id(key), "job", observed, key=key, state="active" if enabled else "paused"
        )

    def _short(self, remote_id: str) -> str:
        prefix = f"{self.config.app_id}-"
        return remote_id[len(prefix) :] if remote_id.startswith(prefix) else remote_id


def from_env(
    settings: Settings, env: Mapping[str, str], *, clock: clock_mod.Clock = clock_mod.SYSTEM
) -> InngestScheduleBackend:
    return InngestScheduleBackend(
        InngestConfig.from_env(env), state_open.served_jobs(settings, clock=clock), clock=clock
    )


_: type[ScheduleBackend] = InngestScheduleBackend
