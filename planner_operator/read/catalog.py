"""The index behind the paged lists: one small row per applied job and trigger, kept in memory.

Filtering 10,000 resources by agent, state or text, sorting them by next fire and cutting a
page must not mean reading and classifying all of them on every request (11.7 s per
``GET /api/jobs`` before this index). So :class:`Catalog` keeps, per resource, only what a
filter, a sort or a count needs (key, names, state, source, next fire), and per agent its
counts. The full views of the few resources on a page are then built from the ledger by key.

The index is rebuilt when what it was built from changes, checked on every read with two cheap
queries: the ledger (the id of its last history row, which every ownership change writes in
the same transaction, its row count and the last reconcile's record, which also names the
frozen files), the backend snapshot (``remote_states``: a new read replaces it, on its TTL or
after a reconcile) and Composio's lifecycle events in the inbox. Next fires come from
``nextfires`` and are refreshed in place once the earliest of them has passed, so a sort by
next fire is never stale and a refresh recomputes only the jobs whose fire passed.
"""

from __future__ import annotations

import functools
import json
import math
import threading
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from planner_operator.core import clock as clock_mod
from planner_operator.core import scheduling, specs
from planner_operator.core.keys import Kind, split_key
from planner_operator.core.records import OwnedEntry
from planner_operator.core.settings import Settings
from planner_operator.read import states
from planner_operator.read import status as status_mod
from planner_operator.read.nextfires import NextFires
from planner_operator.read.remote_states import RemoteStates
from planner_operator.state import open as state_open

NEVER = math.inf  # the sort value of a job with no next fire (paused, or a date that never comes)


@dataclass(frozen=True, slots=True)
class Row:
    key: str
    kind: Kind
    agent: str
    name: str
    state: states.State
    detail: str  # why (states.classify's), empty when active
    text: str  # key, name and description, case-folded: what `q` searches
    source: str | None  # triggers: composio | webhook
    toolkit: str | None
    job: tuple[str, str, specs.DstPolicy] | None  # (schedule, timezone, dst) of a firing job
    next_utc: float  # epoch seconds of the next fire; NEVER for triggers and paused jobs


@dataclass(frozen=True, slots=True)
class AgentRow:
    id: str
    name: str
    description: str | None
    file: str
    timezone: str | None
    jobs: int
    triggers: int
    states: Mapping[str, int]
    next_utc: float  # its earliest next fire
    text: str


@dataclass(frozen=True)
class Index:
    """One generation of the rows. What a request would otherwise recompute from all 20,000
    rows (the rows of a kind or an agent, the next-fire order, the counts) is derived once per
    generation, on first use, and shared by every request until the next build or fire
    refresh: a page then costs its own rows, not the catalog's size."""

    rows: tuple[Row, ...]  # key order
    agents: tuple[AgentRow, ...]  # id order
    fires_until: float  # the earliest next fire: rows' next fires hold until then

    def of_kind(self, kind: Kind) -> tuple[Row, ...]:
        """The rows of ``kind``, in key order."""
        return self._kinds.get(kind, ())

    def ordered(self, kind: Kind, sort: str) -> tuple[Row, ...]:
        """The rows of ``kind`` in the order ``paging.page`` cuts for ``sort``."""
        return self._by_fire.get(kind, ()) if sort == "next_fire" else self.of_kind(kind)

    def agents_by(self, sort: str) -> tuple[AgentRow, ...]:
        return self._agents_by_fire if sort == "next_fire" else self.agents

    def of_agent(self, agent: str) -> tuple[Row, ...]:
        """One agent's rows, in key order (an agent's page filters nothing else)."""
        return self._agent_rows.get(agent, ())

    def counts(self) -> dict[str, int]:
        return dict(self._counts)

    @functools.cached_property
    def _kinds(self) -> Mapping[str, tuple[Row, ...]]:
        out: dict[str, list[Row]] = {}
        for row in self.rows:
            out.setdefault(row.kind, []).append(row)
        return {kind: tuple(rows) for kind, rows in out.items()}

    @functools.cached_property
    def _by_fire(self) -> Mapping[str, tuple[Row, ...]]:
        return {
            kind: tuple(sorted(rows, key=lambda r: (r.next_utc, r.key)))
            for kind, rows in self._kinds.items()
        }

    @functools.cached_property
    def _agents_by_fire(self) -> tuple[AgentRow, ...]:
        return tuple(sorted(self.agents, key=lambda a: (a.next_utc, a.id)))

    @functools.cached_property
    def _agent_rows(self) -> Mapping[str, tuple[Row, ...]]:
        out: dict[str, list[Row]] = {}
        for row in self.rows:
            out.setdefault(row.agent, []).append(row)
        return {agent: tuple(rows) for agent, rows in out.items()}

    @functools.cached_property
    def resource_states(self) -> tuple[tuple[str, states.State], ...]:
        """Every row's (key, state), key order: one tuple per generation, so ``/metrics``
        can tell by identity that nothing changed since its last scrape."""
        return tuple((r.key, r.state) for r in self.rows)

    @functools.cached_property
    def _counts(self) -> Mapping[str, int]:
        out: dict[str, int] = {}
        for row in self.rows:
            out[row.state] = out.get(row.state, 0) + 1
        return out


@dataclass(frozen=True)
class _Mark:
    ledger: tuple[int, int, str | None, str | None]
    remote: int
    lifecycle: Mapping[str, tuple[str, str]]


class Catalog:
    """Thread-safe: concurrent requests share one build (the others wait for it)."""

    def __init__(
        self,
        settings: Settings,
        remote: RemoteStates,
        fires: NextFires,
        *,
        clock: clock_mod.Clock = clock_mod.SYSTEM,
        background: bool = False,
    ) -> None:
        self.settings = settings
        self.background = background
        self._refreshing = threading.Lock()  # held while a background read runs
        self.remote = remote
        self.fires = fires
        self.clock = clock
        self.builds = 0  # full rebuilds made (tests and the benchmark read it)
        self._lock = threading.Lock()
        self._index: Index | None = None
        self._mark: _Mark | None = None

    def index(self) -> Index:
        """The current index: rebuilt when its sources changed, next fires moved on."""
        with self._lock:
            with state_open.ledger(self.settings) as ledger:
                ledger_mark = ledger.change_mark()
            lifecycle = status_mod.lifecycle(self.settings)
            index, mark = self._index, self._mark
            same = (
                index is not None
                and mark is not None
                and mark.ledger == ledger_mark
                and mark.lifecycle == lifecycle
            )
            if same and self.remote.stale():
                # the TTL passed: read again, rebuild only if it differs; in the background,
                # this answer uses the read before (a backend read of 20,000 objects takes
                # seconds, and a reader must not wait for it every TTL)
                if not self.background:
                    self.remote.refresh()
                elif self._refreshing.acquire(blocking=False):
                    threading.Thread(target=self._refresh, daemon=True).start()
            if not same or index is None or mark is None or mark.remote != self.remote.generation():
                index = self._build()
                self.builds += 1
            # the build may have read the backends anew: remember the read it used
            self._mark = _Mark(ledger_mark, self.remote.generation(), lifecycle)
            now = self.clock.now()
            if now.timestamp() >= index.fires_until:
                index = _refresh_fires(index, self.fires, now)
            self._index = index
            return index

    def _refresh(self) -> None:
        try:
            self.remote.refresh()
        finally:
            self._refreshing.release()

    def _build(self) -> Index:
        with state_open.ledger(self.settings) as ledger:
            entries = ledger.entries(include_retired=False)
            meta = _agents_meta(ledger.get_meta("agents"))
        found = self.remote.of(entries, complete=True)
        now = self.clock.now()
        rows = tuple(_row(e, found[e.key], self.fires, now) for e in entries)
        files: dict[str, str] = {}
        for e in entries:  # an agent the meta record misses (older ledgers): its rows' file
            files.setdefault(split_key(e.key)[0], e.source)
        del entries, found  # the specs are the bulk: only the rows stay
        return Index(rows, _agents(rows, meta, files), _until(rows))


def _row(entry: OwnedEntry, found: states.ResourceState, fires: NextFires, now: datetime) -> Row:
    agent, kind, name = split_key(entry.key)
    spec = entry.spec
    description = spec.get("description")
    text = " ".join(str(p) for p in (entry.key, name, description or "") if p).casefold()
    job = None
    source = toolkit = None
    if kind == "job":
        if found.state != "paused" and specs.enabled(spec):
            schedule = str(spec.get("schedule", ""))
            policy = scheduling.effective_dst(specs.dst(spec), schedule, entry.backend)
            job = (schedule, specs.timezone(spec), policy)  # the policy the backend follows
    else:
        source = "webhook" if spec.get("webhook") else "composio"
        toolkit = str(spec["toolkit"]) if spec.get("toolkit") else None
    return Row(
        key=entry.key,
        kind=kind,
        agent=agent,
        name=name,
        state=found.state,
        detail=found.detail,
        text=text,
        source=source,
        toolkit=toolkit,
        job=job,
        next_utc=_next(job, fires, now),
    )


def _next(job: tuple[str, str, specs.DstPolicy] | None, fires: NextFires, now: datetime) -> float:
    if job is None:
        return NEVER
    first = fires.first(*job, now=now)
    return first.utc.timestamp() if first is not None else NEVER


def _until(rows: tuple[Row, ...]) -> float:
    return min((r.next_utc for r in rows), default=NEVER)


def _refresh_fires(index: Index, fires: NextFires, now: datetime) -> Index:
    """The rows whose next fire has passed, moved to their following one."""
    at = now.timestamp()
    rows = tuple(
        replace(r, next_utc=_next(r.job, fires, now)) if r.next_utc <= at else r for r in index.rows
    )
    earliest: dict[str, float] = {}
    for r in rows:
        if r.next_utc < earliest.get(r.agent, NEVER):
            earliest[r.agent] = r.next_utc
    agents = tuple(
        replace(a, next_utc=earliest.get(a.id, NEVER)) if a.next_utc <= at else a
        for a in index.agents
    )
    return Index(rows, agents, _until(rows))


def _agents_meta(raw: str | None) -> dict[str, dict[str, Any]]:
    try:
        data = json.loads(raw) if raw else {}
    except ValueError:
        return {}
    return (
        {str(k): v for k, v in data.items() if isinstance(v, dict)}
        if isinstance(data, dict)
        else {}
    )


def _agents(
    rows: tuple[Row, ...], meta: Mapping[str, Mapping[str, Any]], files: Mapping[str, str]
) -> tuple[AgentRow, ...]:
    mine: dict[str, list[Row]] = {agent: [] for agent in meta}
    for row in rows:
        mine.setdefault(row.agent, []).append(row)
    out = []
    for agent in sorted(mine):
        items = mine[agent]
        info = meta.get(agent) or {}
        counts: dict[str, int] = {}
        for r in items:
            counts[r.state] = counts.get(r.state, 0) + 1
        name = str(info.get("name") or agent)
        description = info.get("description")
        out.append(
            AgentRow(
                id=agent,
                name=name,
                description=str(description) if description else None,
                file=str(info.get("file") or files.get(agent, "")),
                timezone=info.get("timezone"),
                jobs=sum(1 for r in items if r.kind == "job"),
                triggers=sum(1 for r in items if r.kind == "trigger"),
                states=counts,
                next_utc=min((r.next_utc for r in items), default=NEVER),
                text=" ".join((agent, name, str(description or ""))).casefold(),
            )
        )
    return tuple(out)
