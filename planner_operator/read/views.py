"""What the status API and the dashboard show: one read model, two renderings.

The JSON API (``api/status.py``) and the server-rendered dashboard (``dashboard/``) both call
``Reader``, so a page and its API answer can never disagree. Everything is read from the
operator's own state (ledger, run history, inbox, scheduler counters) plus a short-lived cached
read of the backends (``remote_states``), because a dashboard refresh must not spend the
Composio request budget. A resource's ``state`` is ``states.classify``'s, as in the CLI's
``status`` and ``/metrics``. Run rows live in ``runviews`` (re-exported here).

Times are ISO 8601 with their offset: in the job's own timezone for schedules and slots, in UTC
for events the operator recorded (run start/finish, deliveries).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Generic, Literal, TypeVar, get_args

from pydantic import Field

from planner_operator.core import clock as clock_mod
from planner_operator.core import scheduling, specs
from planner_operator.core.records import Delivery, OwnedEntry, Run
from planner_operator.core.settings import Settings
from planner_operator.errors import InvalidRequest, NotFoundError, PlannerError
from planner_operator.read import backlog, paging
from planner_operator.read.backlog import InboxView
from planner_operator.read.catalog import Catalog, Index, Row
from planner_operator.read.nextfires import NextFires
from planner_operator.read.remote_states import RemoteStates
from planner_operator.read.runviews import ReadModel as _Model
from planner_operator.read.runviews import (
    RunDetail,
    RunPage,
    RunStatus,
    RunSummary,
    detail,
    summary,
)
from planner_operator.read.states import ResourceState, State
from planner_operator.state import inbox
from planner_operator.state import open as state_open
from planner_operator.state.runs import JobCounters

__all__ = [
    "AgentView",
    "JobView",
    "LastEvent",
    "NextRun",
    "Page",
    "Reader",
    "ReconcileView",
    "RunDetail",
    "RunPage",
    "RunStatus",
    "RunSummary",
    "State",
    "StatusView",
    "TriggerView",
    "detail",
    "summary",
]

MAX_PAGE = 500
T = TypeVar("T")


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a list: ``next_cursor`` asks for the next one (None: this is the last);
    ``total`` is how many match the filters, over all pages."""

    items: list[T]
    next_cursor: str | None
    total: int


class NextRun(_Model):
    at: str = Field(description="Fire time in the job's timezone, with offset.")
    utc: str
    dst_note: str | None = Field(description="Set when DST moved or dropped this slot.")


class JobView(_Model):
    key: str
    agent: str
    name: str
    description: str | None
    schedule: str
    schedule_text: str = Field(description="The schedule in words.")
    timezone: str
    state: State
    detail: str = Field(description="Why the state is what it is (empty when active).")
    enabled: bool = Field(
        description="false: paused in its agent file (`enabled: false`), whatever else its "
        "state says (a frozen file's paused job is still paused)."
    )
    next_runs: list[NextRun] = Field(description="Next 5 fire times (none when paused).")
    last_run: RunSummary | None
    fires: int
    missed: int
    overlap_skipped: int
    action: str = Field(description="chat | workflow")
    action_summary: str = Field(description="Template or workflow id.")
    backend: str
    remote_id: str
    revision: str
    file: str = Field(description="The agent file that declares it (edit this in git).")


class LastEvent(_Model):
    delivery_id: str
    received_at: str
    status: str = Field(description="Inbox status: received, done, ignored, failed, dead...")
    outcome: str | None


class TriggerView(_Model):
    key: str
    agent: str
    name: str
    description: str | None
    source: str = Field(description="composio | webhook")
    toolkit: str | None
    event: str | None
    state: State
    detail: str
    disabled_reason: str | None = Field(description="Why Composio disabled it, when it did.")
    filter: Any = None
    action: str
    action_summary: str
    backend: str
    remote_id: str
    revision: str
    file: str
    last_event: LastEvent | None
    last_run: RunSummary | None


class AgentView(_Model):
    id: str
    name: str
    description: str | None
    file: str
    timezone: str | None
    jobs: int
    triggers: int
    states: dict[str, int] = Field(description="Count of jobs and triggers per state.")


class ReconcileView(_Model):
    at: str | None
    revision: str | None
    counts: dict[str, int]
    blocked: int
    load_errors: list[str]
    failures: list[str]
    last_applied_revision: str | None
    watch_last_cycle: dict[str, Any] | None
    watch_last_error: dict[str, Any] | None


class StatusView(_Model):
    reconcile: ReconcileView
    inbox: InboxView | None = Field(
        description="The webhook inbox's backlog (read.backlog); null before any delivery."
    )


# -- the reader -------------------------------------------------------------------------------


class Reader:
    """The read model over the operator's state; safe to share between request threads.

    Stores are opened per call (local SQLite files, cheap to open), so a reconcile or the
    scheduler in another process is seen at once; only the backend read is cached (see
    ``remote_states``). ``env`` picks the backends, as ``serve`` does (default: the process
    environment).
    """

    def __init__(
        self,
        settings: Settings,
        *,
        backends_ttl: float = 15.0,
        env: Mapping[str, str] | None = None,
        clock: clock_mod.Clock = clock_mod.SYSTEM,
        background: bool = False,
    ) -> None:
        self.settings = settings
        self.clock = clock  # next fires start from its now(); the backend read's TTL runs on it
        self.remote = RemoteStates(settings, ttl=backends_ttl, env=env, clock=clock)
        self.fires = NextFires(clock)  # shared by every request: a cron walk per fire passed
        # background: a backend read past its TTL is redone off the request (serve's reader)
        self.catalog = Catalog(
            settings, self.remote, self.fires, clock=clock, background=background
        )

    # -- agents, jobs, triggers ----------------------------------------------------------------

    def index(self) -> Index:
        """The in-memory index of every applied resource (counts, states, next fires)."""
        return self.catalog.index()

    def agents(self) -> list[AgentView]:
        return [_agent(a) for a in self.index().agents]

    def agent_page(self, query: paging.Query, index: Index | None = None) -> Page[AgentView]:
        """``index``: the one this request already holds (a page reads it once)."""
        index = index or self.index()
        cut = paging.page(index.agents_by(query.sort), query, "agents")
        return Page([_agent(a) for a in cut.rows], cut.next_cursor, cut.total)

    def job_page(self, query: paging.Query, index: Index | None = None) -> Page[JobView]:
        cut = paging.page(_rows(index or self.index(), "job", query), query, "jobs")
        return Page(self._jobs(self._entries(cut.rows), paged=True), cut.next_cursor, cut.total)

    def trigger_page(self, query: paging.Query, index: Index | None = None) -> Page[TriggerView]:
        cut = paging.page(_rows(index or self.index(), "trigger", query), query, "triggers")
        rows = self._triggers(self._entries(cut.rows), paged=True)
        return Page(rows, cut.next_cursor, cut.total)

    def jobs(self, *, agent: str | None = None) -> list[JobView]:
        return self._jobs(self._select("job", agent))

    def job(self, agent: str, name: str) -> JobView:
        return self._jobs([self._entry("job", agent, name)])[0]

    def triggers(self, *, agent: str | None = None) -> list[TriggerView]:
        return self._triggers(self._select("trigger", agent))

    def trigger(self, agent: str, name: str) -> TriggerView:
        return self._triggers([self._entry("trigger", agent, name)])[0]

    def resource_states(self) -> Sequence[tuple[str, State]]:
        """Every applied job's and trigger's key and state, in key order (``/metrics``); the
        same object while the index generation stands."""
        return self.index().resource_states

    def entry(self, kind: Literal["job", "trigger"], agent: str, name: str) -> OwnedEntry:
        """The applied ledger row of one job or trigger (``NotFoundError`` if none)."""
        return self._entry(kind, agent, name)

    # -- runs ----------------------------------------------------------------------------------

    def runs(
        self,
        *,
        agent: str | None = None,
        job: str | None = None,
        trigger: str | None = None,
        status: str | None = None,
        limit: int = 50,
        before: int | None = None,
    ) -> RunPage:
        """Newest first; ``next_before`` pages to older runs (stable while new runs arrive)."""
        for name, value in (("job", job), ("trigger", trigger)):
            if value is not None and not agent:
                raise InvalidRequest(
                    f"`{name}` names a {name} within an agent: add `agent=<id>` "
                    "(GET /api/agents lists the agents)",
                    field=name,
                )
        if job is not None and trigger is not None:
            raise InvalidRequest("filter by `job` or by `trigger`, not both", field="trigger")
        if status is not None and status not in get_args(RunStatus):
            raise InvalidRequest(
                f"unknown status `{status}`: use one of {', '.join(get_args(RunStatus))}",
                field="status",
            )
        if not 1 <= limit <= MAX_PAGE:
            raise InvalidRequest(f"`limit` is 1 to {MAX_PAGE}", field="limit")
        key = prefix = None
        if job is not None:
            key = f"{agent}/jobs/{job}"
        elif trigger is not None:
            key = f"{agent}/triggers/{trigger}"
        elif agent:
            prefix = f"{agent}/"
        with state_open.runs(self.settings) as store:
            found = store.list(
                key=key, prefix=prefix, status=status, limit=limit + 1, before_id=before
            )
        items = [summary(r) for r in found[:limit]]
        more = len(found) > limit
        return RunPage(items=items, next_before=items[-1].id if more and items else None)

    def run(self, run_id: int) -> RunDetail:
        with state_open.runs(self.settings) as store:
            found = store.get(run_id)
        if found is None:
            raise NotFoundError(f"no run {run_id} (GET /api/runs lists the recent runs)")
        return detail(found)

    def reconcile(self) -> ReconcileView:
        with state_open.ledger(self.settings) as ledger:
            last = _json(ledger.get_meta("last_reconcile")) or {}
            revision = ledger.get_meta("last_applied_revision")
            cycle = _json(ledger.get_meta("watch_last_cycle"))
            error = _json(ledger.get_meta("watch_last_error"))
        return ReconcileView(
            at=last.get("at"),
            revision=last.get("revision"),
            counts={str(k): int(v) for k, v in (last.get("counts") or {}).items()},
            blocked=int(last.get("blocked") or 0),
            load_errors=[str(e) for e in last.get("load_errors") or []],
            failures=[str(f) for f in last.get("failures") or []],
            last_applied_revision=revision,
            watch_last_cycle=cycle,
            watch_last_error=error,
        )

    def status(self) -> StatusView:
        """What ``/api/status`` shows: the last reconcile and the webhook backlog."""
        return StatusView(reconcile=self.reconcile(), inbox=self.inbox())

    def inbox(self) -> InboxView | None:
        """The webhook backlog now (``read.backlog``: as ``status`` and ``/metrics`` show it)."""
        return backlog.inbox_view(self.settings, now=clock_mod.epoch(self.clock))

    # -- helpers -------------------------------------------------------------------------------

    def _ledger(self) -> tuple[list[OwnedEntry], dict[str, dict[str, Any]]]:
        with state_open.ledger(self.settings) as ledger:
            entries = ledger.entries(include_retired=False)
            meta = _json(ledger.get_meta("agents")) or {}
        return entries, {str(k): v for k, v in meta.items() if isinstance(v, dict)}

    def _select(self, kind: str, agent: str | None) -> list[OwnedEntry]:
        entries, _ = self._ledger()
        return [e for e in entries if e.kind == kind and (not agent or _split(e.key)[0] == agent)]

    def _entries(self, rows: Sequence[Row]) -> list[OwnedEntry]:
        """The ledger rows of a page (by key: a page is small, the ledger is not)."""
        with state_open.ledger(self.settings) as ledger:
            found = ledger.get_many([r.key for r in rows])
        return [found[r.key] for r in rows if r.key in found]  # deleted since the build: gone

    def _entry(self, kind: Literal["job", "trigger"], agent: str, name: str) -> OwnedEntry:
        key = f"{agent}/{kind}s/{name}"
        with state_open.ledger(self.settings) as ledger:
            found = ledger.get(key)
        if found is None or found.kind != kind:
            raise NotFoundError(
                f"no applied {kind} `{key}` (GET /api/{kind}s?agent={agent} lists that "
                f"agent's {kind}s)"
            )
        return found

    def _jobs(self, entries: list[OwnedEntry], *, paged: bool = False) -> list[JobView]:
        # a page's rows: the catalog just saw to the backend read's age (see Catalog.index)
        states = self.remote.of(entries, ttl=not paged)
        now = self.clock.now()
        with state_open.runs(self.settings, clock=self.clock) as store:
            keys = [e.key for e in entries]
            counters = store.counters(keys=keys)
            last = store.last_of(keys)
        return [
            _job(e, states[e.key], last.get(e.key), counters.get(e.key), self.fires, now)
            for e in entries
        ]

    def _triggers(self, entries: list[OwnedEntry], *, paged: bool = False) -> list[TriggerView]:
        states = self.remote.of(entries, ttl=not paged)
        box = (
            state_open.inbox(self.settings, clock=self.clock)
            if state_open.exists(self.settings, "inbox")
            else None
        )
        try:
            with state_open.runs(self.settings, clock=self.clock) as store:
                last = store.last_of([e.key for e in entries])
            return [
                _trigger(e, states[e.key], last.get(e.key), _last_delivery(box, e.key))
                for e in entries
            ]
        finally:
            if box is not None:
                box.close()


def _rows(index: Index, kind: Literal["job", "trigger"], query: paging.Query) -> Sequence[Row]:
    """The rows a page of ``kind`` is cut from, in the query's order: one agent's few when it
    names one, else the index's kept order (no per-request sort of 10,000 rows)."""
    if query.agent is None:
        return index.ordered(kind, query.sort)
    mine = [r for r in index.of_agent(query.agent) if r.kind == kind]
    return mine if query.sort == "key" else paging.order(mine, query.sort)


def _job(
    e: OwnedEntry,
    state: ResourceState,
    last: Run | None,
    counters: JobCounters | None,
    fires: NextFires,
    now: datetime,
) -> JobView:
    spec = specs.JobSpec.from_dict(e.spec)
    agent, _, name = _split(e.key)
    schedule, tz = spec.schedule, spec.timezone
    words = _describe(schedule)
    upcoming: list[NextRun] = []
    if state.state != "paused" and spec.enabled:
        policy = scheduling.effective_dst(spec.dst, schedule, e.backend)  # as the backend fires
        upcoming = [
            NextRun(
                at=f.at.isoformat(timespec="seconds"),
                utc=f.utc.isoformat(timespec="seconds"),
                dst_note=f.note,
            )
            for f in fires.get(schedule, tz, policy, now=now)
        ]
    action, what = _action(spec.action)
    return JobView(
        key=e.key,
        agent=agent,
        name=name,
        description=spec.description,
        schedule=schedule,
        schedule_text=words,
        timezone=tz,
        state=state.state,
        detail=state.detail,
        enabled=spec.enabled,
        next_runs=upcoming,
        last_run=summary(last) if last else None,
        fires=counters.fires if counters else 0,
        missed=counters.missed if counters else 0,
        overlap_skipped=counters.overlap_skipped if counters else 0,
        action=action,
        action_summary=what,
        backend=e.backend,
        remote_id=e.remote_id,
        revision=e.revision,
        file=e.source,
    )


def _trigger(
    e: OwnedEntry,
    state: ResourceState,
    last: Run | None,
    event: Delivery | None,
) -> TriggerView:
    spec = specs.TriggerSpec.from_dict(e.spec)
    agent, _, name = _split(e.key)
    action, what = _action(spec.action)
    return TriggerView(
        key=e.key,
        agent=agent,
        name=name,
        description=spec.description,
        source=spec.source,
        toolkit=spec.toolkit,
        event=spec.event,
        state=state.state,
        detail=state.detail,
        disabled_reason=state.disabled_reason,
        filter=spec.filter.to_dict() if spec.filter is not None else None,
        action=action,
        action_summary=what,
        backend=e.backend,
        remote_id=e.remote_id,
        revision=e.revision,
        file=e.source,
        last_event=(
            LastEvent(
                delivery_id=event.id,
                received_at=_iso(event.received_at),
                status=event.status,
                outcome=event.outcome or event.last_error,
            )
            if event
            else None
        ),
        last_run=summary(last) if last else None,
    )


@functools.lru_cache(maxsize=8192)
def _describe(schedule: str) -> str:
    """The schedule in words, once per schedule: cron-descriptor loads its locale on every
    call (9 ms each, most of a 100-job page's time)."""
    try:
        return scheduling.describe(schedule)
    except PlannerError:
        return f"cron '{schedule}'"


def _agent(a: Any) -> AgentView:
    return AgentView(
        id=a.id,
        name=a.name,
        description=a.description,
        file=a.file,
        timezone=a.timezone,
        jobs=a.jobs,
        triggers=a.triggers,
        states=dict(a.states),
    )


def _last_delivery(box: inbox.Inbox | None, key: str) -> Delivery | None:
    found = box.list(key=key, limit=1) if box is not None else []
    return found[0] if found else None


def _action(action: specs.Action) -> tuple[str, str]:
    if isinstance(action, specs.ChatAction):
        return "chat", action.template
    return "workflow", action.id


def _split(key: str) -> tuple[str, str, str]:
    agent, _, rest = key.partition("/")
    kind, _, name = rest.partition("/")
    return agent, kind, name


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds")


def _json(text: str | None) -> Any:
    if not text:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return None
