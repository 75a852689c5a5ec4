"""The state half of ``GET /metrics``: what other processes wrote, read at scrape time.

A CLI ``reconcile``, Inngest-driven runs, a separate ``planner-operator worker`` and the
embedded scheduler all write the stores (SQLite files under the state dir, or the shared
database); :class:`StateCollector` turns them into metrics when Prometheus scrapes, so they show
whichever process did the work.

Reads go through the owning stores' read methods (committed state; none takes a write lock);
a store not written yet means "nothing yet", and an unreadable one sets
``planner_state_read_ok{file}`` to 0 instead of failing the scrape. Run history grows without
bound, so it is tallied incrementally (:class:`RunTally`: only rows added since the last scrape,
plus the few that were still running, are read, in one snapshot).

Per-job families are bounded like ``planner_resource_state`` (``metrics_resources``): past
``resource_series`` keys (``PLANNER_METRICS_RESOURCE_SERIES``) a family keeps its first keys in
key order, so a job's series does not come and go from scrape to scrape, and sums the rest
into one ``agent="(other)", job="(other)"`` series per label set: ``sum()`` over a family
stays the true total.
"""

from __future__ import annotations

import json
import logging
import threading
from collections import Counter as Tally
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    InfoMetricFamily,
    Metric,
)

from planner_operator.core import clock as clock_mod
from planner_operator.core.settings import Settings
from planner_operator.errors import StateError
from planner_operator.read import backlog
from planner_operator.read.metrics_resources import OTHER
from planner_operator.state import open as state_open
from planner_operator.state.open import StoreName
from planner_operator.state.runs import RunStore

log = logging.getLogger("planner_operator.server.metrics")


def _split(key: str) -> tuple[str, str] | None:
    """``agent/jobs/name`` -> (agent, name); None for anything else."""
    parts = key.split("/", 2)
    return (parts[0], parts[2]) if len(parts) == 3 else None


def _timestamp(iso: str | None) -> float | None:
    try:
        return datetime.fromisoformat(iso).timestamp() if iso else None
    except ValueError:
        return None


@dataclass
class RunTally:
    """Finished runs counted so far, read incrementally: rows are append-only, and a row
    changes status once (running -> finished), so each scrape reads only new rows and the few
    that were still running."""

    upto: int = 0
    finished: Tally[tuple[str, str, str, str]] = field(default_factory=Tally)  # key kind origin st
    running: dict[int, tuple[str, str, str]] = field(default_factory=dict)  # id -> key kind origin
    last_success: dict[str, str] = field(default_factory=dict)  # key -> finished_at (ISO, UTC)

    def update(self, store: RunStore) -> None:
        delta = store.delta(upto=self.upto, watching=list(self.running))
        if delta.high < self.upto:  # the history was replaced: start over
            self.upto, self.finished, self.running, self.last_success = 0, Tally(), {}, {}
            delta = store.delta(upto=0, watching=[])
        for row_id, status, at in delta.settled:
            key, kind, origin = self.running.pop(row_id)
            if status is not None:
                self._count(key, kind, origin, status, 1, at)
        for key, kind, origin, status, count, at in delta.finished:
            self._count(key, kind, origin, status, count, at)
        self.running.update({i: (k, kind, o) for i, k, kind, o in delta.started})
        self.upto = delta.high

    def _count(self, key: str, kind: str, origin: str, status: str, n: int, at: str | None) -> None:
        self.finished[(key, kind, origin, status)] += n
        if kind == "job" and status == "succeeded" and at and at > self.last_success.get(key, ""):
            self.last_success[key] = at


class StateCollector:
    """Reads one state dir's SQLite files at scrape time (see the module docstring)."""

    def __init__(
        self,
        settings: Settings,
        *,
        clock: clock_mod.Clock = clock_mod.SYSTEM,
        resource_series: int | None = None,
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.limit = resource_series  # None: every key gets its series
        self.tally = RunTally()
        self._lock = threading.Lock()  # scrapes may overlap; the tally is shared
        self._failing: set[str] = set()

    def collect(self) -> Iterator[Metric]:
        readers: tuple[tuple[StoreName, Callable[[], list[Metric]]], ...] = (
            ("ledger", self._ledger),
            ("inbox", self._inbox),
            ("runs", self._runs),
        )
        ok = GaugeMetricFamily(
            "planner_state_read_ok",
            "1 when the state file was readable at this scrape (or does not exist yet), 0 when "
            "reading it failed: the metrics read from it are missing, see the log.",
            labels=["file"],
        )
        for name, read in readers:
            try:
                families = read() if state_open.exists(self.settings, name) else []
            except (StateError, OSError, ValueError) as exc:
                if name not in self._failing:
                    where = state_open.where(self.settings, name)
                    log.warning("metrics: cannot read %s (%s): %s", name, where, exc)
                self._failing.add(name)
                ok.add_metric([name], 0)
                continue
            self._failing.discard(name)
            ok.add_metric([name], 1)
            yield from families
        yield ok

    def _ledger(self) -> list[Metric]:
        with state_open.ledger(self.settings) as ledger:
            meta = ledger.meta(["last_reconcile", "last_applied_revision"])
            counts = ledger.managed_counts()
        managed = GaugeMetricFamily(
            "planner_managed_resources",
            "Jobs and triggers the ledger says this operator owns (applied), by kind and backend.",
            labels=["kind", "backend"],
        )
        for (kind, backend), count in sorted(counts.items()):
            managed.add_metric([kind, backend], count)
        out: list[Metric] = [managed, *_last_reconcile(meta.get("last_reconcile"))]
        revision = meta.get("last_applied_revision")
        if revision:
            info = InfoMetricFamily(
                "planner_last_applied_revision",
                "The revision the last fully successful reconcile applied (any process).",
            )
            info.add_metric([], {"revision": str(revision)})
            out.append(info)
        return out

    def _inbox(self) -> list[Metric]:
        view = backlog.inbox_view(self.settings, now=clock_mod.epoch(self.clock))
        if view is None:
            return []
        by_status = GaugeMetricFamily(
            "planner_inbox_deliveries",
            "Webhook deliveries kept in the inbox (7 days), by status; dead ones need "
            "`inbox replay` or a fix.",
            labels=["status"],
        )
        for status, count in sorted(view.counts.items()):
            by_status.add_metric([status], count)
        return [
            by_status,
            GaugeMetricFamily(
                "planner_inbox_depth",
                "Deliveries not finished yet (received, processing, or failed and waiting "
                "for a retry): the worker's backlog.",
                value=view.pending,
            ),
            GaugeMetricFamily(
                "planner_inbox_oldest_pending_age_seconds",
                "Age of the oldest unfinished delivery (0 when none): the backlog age, how "
                "late events are acted on.",
                value=view.backlog_age_seconds,
            ),
            GaugeMetricFamily(
                "planner_inbox_oldest_due_age_seconds",
                "How long the longest-waiting due delivery has been due (0 when none): grows "
                "when no worker is taking work (stopped, stuck, or too few).",
                value=view.oldest_due_age_seconds,
            ),
        ]

    def _runs(self) -> list[Metric]:
        labels = ["agent", "job"]
        fires = CounterMetricFamily(
            "planner_job_fires",
            "Fires of the embedded scheduler per job (Inngest-backed jobs: see "
            'planner_job_runs_total{origin="inngest"}).',
            labels=labels,
        )
        missed = CounterMetricFamily(
            "planner_job_missed",
            "Slots the embedded scheduler did not run because the operator was down at the "
            "time (after the job's catchup policy ran what it runs).",
            labels=labels,
        )
        overlap = CounterMetricFamily(
            "planner_job_overlap_skipped",
            "Fires skipped because the job's previous run was still running (overlap: skip).",
            labels=labels,
        )
        with state_open.runs(self.settings) as store, self._lock:
            counters = store.counters()
            self.tally.update(store)
            finished = dict(self.tally.finished)
            open_runs = Tally(kind for _, kind, _ in self.tally.running.values())
            waiting = store.waiting_counts()
            running = Tally({k: max(0, n - waiting.get(k, 0)) for k, n in open_runs.items()})
            last_success = dict(self.tally.last_success)
        kept = _kept(counters, self.limit)
        sums: dict[tuple[str, str], list[int]] = {}
        for key, counted in sorted(counters.items()):
            names = _split(key)
            if names is None:
                continue
            if key not in kept:
                names = (OTHER, OTHER)
            total = sums.setdefault(names, [0, 0, 0])
            total[0] += counted.fires
            total[1] += counted.missed
            total[2] += counted.overlap_skipped
        for names, (n_fires, n_missed, n_skipped) in sums.items():
            fires.add_metric(list(names), n_fires)
            missed.add_metric(list(names), n_missed)
            overlap.add_metric(list(names), n_skipped)
        return [
            fires,
            missed,
            overlap,
            *_run_families(finished, running, last_success, self.limit, waiting),
        ]


def _last_reconcile(raw: str | None) -> list[Metric]:
    last = json.loads(raw) if raw else None
    if not isinstance(last, dict):  # nothing reconciled yet (or a summary we cannot read)
        return []
    at = _timestamp(last.get("at"))
    failures = len(last.get("failures") or [])
    load_errors = len(last.get("load_errors") or [])
    changes = GaugeMetricFamily(
        "planner_last_reconcile_changes",
        "Changes the last reconcile (any process: watcher or CLI) planned to make, by op.",
        labels=["op"],
    )
    for op in ("create", "update", "replace", "delete"):
        changes.add_metric([op], int((last.get("counts") or {}).get(op, 0)))
    gauges = {
        "timestamp_seconds": ("When the last reconcile (any process) finished.", at),
        "success": (
            "1 when the last reconcile applied everything with no load errors, else 0.",
            1 if failures == 0 and load_errors == 0 else 0,
        ),
        "failures": ("Changes the last reconcile failed to apply.", failures),
        "load_errors": (
            "Config errors in the last reconcile (files left as they were).",
            load_errors,
        ),
        "blocked": ("Changes a safety rule refused in the last reconcile.", last.get("blocked", 0)),
    }
    out: list[Metric] = [changes]
    for suffix, (help_text, value) in gauges.items():
        if value is not None:
            out.append(
                GaugeMetricFamily(f"planner_last_reconcile_{suffix}", help_text, value=value)
            )
    return out


def _kept(keys: Iterable[str], limit: int | None) -> set[str]:
    """The keys that keep series of their own: all, or the first ``limit`` in key order."""
    unique = set(keys)
    return unique if limit is None or len(unique) <= limit else set(sorted(unique)[:limit])


def _run_families(
    finished: dict[tuple[str, str, str, str], int],
    running: Tally[str],
    last_success: dict[str, str],
    limit: int | None = None,
    waiting: dict[str, int] | None = None,
) -> list[Metric]:
    jobs = CounterMetricFamily(
        "planner_job_runs",
        "Finished job run attempts in run history (any process), by origin (scheduler, catchup, "
        "inngest, manual, dst: a DST repeat skipped) and status (succeeded, failed, cancelled, "
        "skipped): "
        "fires per job whichever scheduler made them, Inngest included.",
        labels=["agent", "job", "origin", "status"],
    )
    triggers = CounterMetricFamily(
        "planner_trigger_runs",
        "Finished trigger run attempts in run history (any process), by origin and status "
        "(skipped: filter did not match or trigger disabled).",
        labels=["agent", "trigger", "origin", "status"],
    )
    kept = {
        kind: _kept((k for k, of, _, _ in finished if of == kind), limit)
        for kind in ("job", "trigger")
    }
    sums: dict[tuple[str, str, str, str, str], int] = {}
    for (key, kind, origin, status), count in sorted(finished.items()):
        names = _split(key)
        if names is None or kind not in kept:
            continue
        if key not in kept[kind]:
            names = (OTHER, OTHER)
        label = (kind, *names, origin, status)
        sums[label] = sums.get(label, 0) + count
    for (kind, *labels), count in sums.items():
        (jobs if kind == "job" else triggers).add_metric(labels, count)
    in_progress = _by_kind(
        "planner_runs_running",
        "Runs in run history still marked running, by kind; one that stays long after its "
        "executor timeout was cut off by a crash.",
        running,
    )
    suspended = _by_kind(
        "planner_runs_waiting",
        "Runs their platform suspended (a Mastra workflow waiting to be resumed), by kind: "
        "polled until they end; one that stays is waiting for a person.",
        waiting or {},
    )
    success = GaugeMetricFamily(
        "planner_job_last_success_timestamp_seconds",
        "When each job's last successful run finished: alert when it is older than the "
        "schedule allows.",
        labels=["agent", "job"],
    )
    shown = _kept(last_success, limit)
    for key, at in sorted(last_success.items()):
        if key not in shown:  # a latest time of many jobs answers nothing: left out
            continue
        names = _split(key)
        stamp = _timestamp(at)
        if names is not None and stamp is not None:
            success.add_metric(list(names), stamp)
    return [jobs, triggers, in_progress, suspended, success]


def _by_kind(name: str, text: str, counts: Mapping[str, int]) -> GaugeMetricFamily:
    """A gauge with one sample per resource kind, zero where nothing is counted."""
    gauge = GaugeMetricFamily(name, text, labels=["kind"])
    for kind in ("job", "trigger"):
        gauge.add_metric([kind], counts.get(kind, 0))
    return gauge
