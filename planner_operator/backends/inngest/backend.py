"""Jobs as Inngest cron functions: the schedule backend for production.

Inngest has no API to create one function: an app declares its whole function set at sync.
So this backend keeps the applied jobs in a table of the state database (the function set
``serve`` builds from), item writes only change that table, and ``finish()`` syncs once per
apply and verifies what Inngest now has. ``list()`` reads Inngest itself (``GET
/v1/apps/{app}/functions``), so drift (a function gone, a cron not scheduled) shows up in plans
and in ``reconcile --check``. Paused jobs are not registered (Inngest has no pause API); they
are reported from the table as ``paused``.
"""

from __future__ import annotations

import builtins
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from planner_operator.backends.base import BackendInfo, Page, RemoteObject, ScheduleBackend
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
        """``table`` is the served job table (``state.open.served_jobs``), or a SQLite file."""
        self.config = config
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
        """Sync once if the applied set changed since the last good sync, then verify."""
        version, synced = self.table.versions()
        problems: builtins.list[str] = []
        if version != synced:
            result = self.sync()
            if not result.ok:
                return [f"inngest: sync failed: {result.error}"]
        problems = self.verify()
        if not problems:
            self.table.mark_synced(version)
        return problems

    def sync(self) -> inngest_app.SyncResult:
        client = self.config.client(applied_version=self.table.versions()[0])
        functions = inngest_app.build_functions(client, self.table.jobs(), self.config, None)
        return inngest_app.sync(inngest_app.build_app(client, functions, self.config), self.config)

    def verify(self) -> builtins.list[str]:
        """Every enabled job's function with its exact cron; nothing removed still there."""
        self._listed = None
        remote = self._remote()
        problems = []
        expected: dict[str, str] = {}
        for job in self.table.jobs():
            if specs.enabled(job.spec):
                expected[self.remote_id(job.key)] = inngest_app.cron_of(job.spec)
        for rid, cron in sorted(expected.items()):
            have = remote.get(rid)
            if have is None:
                problems.append(f"inngest: function {rid} is missing after sync")
            elif cron not in inngest_app.crons_of(have):
                got = ", ".join(inngest_app.crons_of(have)) or "no cron"
                problems.append(f"inngest: function {rid} has {got}, expected {cron!r}")
        return problems

    # -- internals ---------------------------------------------------------------------------

    def _remote(self) -> dict[str, dict[str, Any]]:
        if self._listed is None:
            listed = inngest_app.read_functions(self.config)
            self._listed = {
                f"{self.config.app_id}-{inngest_app.short_id(self.config, f)}": f for f in listed
            }
        return self._listed

    def _objects(self) -> builtins.list[RemoteObject]:
        self._listed = None
        out: builtins.list[RemoteObject] = []
        for rid, function in sorted(self._remote().items()):
            fn_id = rid[len(self.config.app_id) + 1 :]
            if fn_id == inngest_app.SENTINEL_ID:
                continue
            crons = inngest_app.crons_of(function)
            key = self.table.key_of(fn_id)
            spec = self._observed(key, crons)
            reason = None if crons else "registered without a cron trigger (not scheduled)"
            out.append(
                RemoteObject(
                    rid,
                    "job",
                    spec,
                    key=key,
                    state="active" if crons else "error",
                    reason=reason,
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
        InngestConfig.from_env(env), state_open.served_jobs(settings, clock=clock)
    )


_: type[ScheduleBackend] = InngestScheduleBackend
