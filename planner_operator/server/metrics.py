"""Prometheus metrics for ``GET /metrics``: what this process did, and what the state files say.

The operator is several processes sharing SQLite files (``serve``/``run``, a CLI
``reconcile``, ``planner-operator worker``), so metrics come from two places:

* Things that happen in *this* process (reconciles by its watcher, webhook requests, inbox
  attempts, executor calls) are counted as they happen, in :data:`PROCESS`, one module-level
  registry. Webhooks call the functions below; the reconciler, executors and worker sit below
  the server layer and report through ``telemetry``, whose Prometheus recorder this module
  installs when it builds an app's registry.
* Things other processes write (inbox depth and age, run history, scheduler counters, the last
  reconcile recorded in the ledger) are read from the files at scrape time by
  ``metrics_state.StateCollector``, so a reconcile made by the CLI or a run made by Inngest
  shows too.

Each app gets its own registry (:func:`registry_for`): its ``StateCollector`` plus a proxy of
:data:`PROCESS`. Nothing goes into prometheus_client's global ``REGISTRY``: tests build many apps
in one process, and the global registry refuses a second collector with the same names.

Label values are bounded: enums (op, kind, outcome, reason, status) and the configured agent,
job and trigger names, for at most ``PLANNER_METRICS_RESOURCE_SERIES`` resources (the rest
summed under ``(other)``). Never delivery ids, run ids, URLs or headers.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import Metric
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector

from planner_operator import telemetry
from planner_operator.core import clock as clock_mod
from planner_operator.core import variables
from planner_operator.core.settings import Settings
from planner_operator.read.metrics_resources import ResourceStateCollector, ResourceStates
from planner_operator.read.metrics_state import StateCollector

if TYPE_CHECKING:
    from fastapi import APIRouter

# -- in-process metrics ----------------------------------------------------------------------

PROCESS = CollectorRegistry()
ProcessCollector(registry=PROCESS)
PlatformCollector(registry=PROCESS)
GCCollector(registry=PROCESS)

RECONCILE_RUNS = Counter(
    "planner_reconcile_runs",
    "Reconcile applies made by this process (the watcher of `run`), by result: success; "
    "incomplete (load errors or blocked changes: the rest was applied); failed (a change or the "
    "backend sync failed); error (stopped before the end: lock timeout, unreadable source, "
    "backend down). Alert on failed/error; CLI reconciles show in planner_last_reconcile_*.",
    ["result"],
    registry=PROCESS,
)
RECONCILE_CHANGES = Counter(
    "planner_reconcile_changes",
    "Planned changes handled by this process's reconciles, by op (create, update, replace, "
    "delete, noop), resource kind (job, trigger) and result (applied, failed, blocked by a "
    "safety rule, skipped at shutdown, unchanged for noop): how much churn each apply makes.",
    ["op", "kind", "result"],
    registry=PROCESS,
)
RECONCILE_LOAD_ERRORS = Counter(
    "planner_reconcile_load_errors",
    "Config errors (a file that did not load or failed a backend preflight) met by this "
    "process's reconciles; that file's jobs and triggers were left as they were.",
    registry=PROCESS,
)
RECONCILE_DURATION = Histogram(
    "planner_reconcile_duration_seconds",
    "Wall time of this process's reconcile applies, read to last write (sync included).",
    buckets=(0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0),
    registry=PROCESS,
)
WEBHOOK_DELIVERIES = Counter(
    "planner_webhook_deliveries",
    "Webhook requests answered by this process, by source (composio, webhook), outcome "
    "(accepted, duplicate, rejected) and, for rejections, reason (bad_signature, stale, "
    "too_large, unsupported_media, unknown_trigger, bad_request, not_configured, "
    "overloaded, other): is anyone sending us garbage or being refused?",
    ["source", "outcome", "reason"],
    registry=PROCESS,
)
INBOX_PROCESSED = Counter(
    "planner_inbox_processed",
    "Delivery attempts settled by this process's inbox worker, by outcome: done, ignored "
    "(nothing to run: filter, disabled, unknown trigger), failed (retried later), dead (gave "
    "up; `inbox replay` re-runs it).",
    ["outcome"],
    registry=PROCESS,
)
EXECUTOR_DURATION = Histogram(
    "planner_executor_duration_seconds",
    "Latency of executor calls made by this process (start a chat thread, run a workflow), "
    "for jobs and triggers alike, by action (chat, workflow) and outcome (success, error).",
    ["action", "outcome"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0),
    registry=PROCESS,
)

# series that exist from the start, so rate() and absence alerts work before the first event
for _result in ("success", "incomplete", "failed", "error"):
    RECONCILE_RUNS.labels(_result)
for _source in ("composio", "webhook"):
    for _outcome in ("accepted", "duplicate"):
        WEBHOOK_DELIVERIES.labels(_source, _outcome, "none")
for _status in ("done", "ignored", "failed", "dead"):
    INBOX_PROCESSED.labels(_status)
for _action in ("chat", "workflow"):
    for _outcome in ("success", "error"):
        EXECUTOR_DURATION.labels(_action, _outcome)


class PrometheusRecorder:
    """Turns telemetry reports from the reconciler, executors and worker into :data:`PROCESS`."""

    def reconciled(self, report: telemetry.ReconcileReport) -> None:
        for change in report.changes:
            RECONCILE_CHANGES.labels(change.op, change.kind, change.outcome).inc()
        RECONCILE_RUNS.labels(report.result).inc()
        if report.load_errors:
            RECONCILE_LOAD_ERRORS.inc(report.load_errors)
        RECONCILE_DURATION.observe(report.seconds)

    def executor_called(self, action: str, outcome: str, seconds: float) -> None:
        EXECUTOR_DURATION.labels(action, outcome).observe(seconds)

    def inbox_processed(self, outcome: str) -> None:
        INBOX_PROCESSED.labels(outcome).inc()


RECORDER = PrometheusRecorder()


def webhook_stored(source: str, new: bool) -> None:
    WEBHOOK_DELIVERIES.labels(source, "accepted" if new else "duplicate", "none").inc()


def webhook_rejected(source: str, reason: str) -> None:
    """``reason``: one of :func:`rejection_reason`'s classes (a bounded set)."""
    WEBHOOK_DELIVERIES.labels(source, "rejected", reason).inc()


def rejection_reason(status: int, message: str) -> str:
    """A bounded reason class for a refused webhook request (from its status and message)."""
    if status == 401:  # a timestamp out of the window is a replay or a skewed clock, not a key
        return "stale" if "timestamp" in message else "bad_signature"
    if status == 503:  # our trouble: a secret went missing, or the inbox could not commit
        return "not_configured" if "secret" in message else "overloaded"
    reasons = {
        400: "bad_request",
        404: "unknown_trigger",
        413: "too_large",
        415: "unsupported_media",
        429: "overloaded",
    }
    return reasons.get(status, "other")


# -- serving -------------------------------------------------------------------------------------


class _Proxy:
    """Puts :data:`PROCESS` into an app's registry without registering it twice anywhere."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry

    def collect(self) -> Iterable[Metric]:
        return self.registry.collect()


def registry_for(
    settings: Settings,
    resource_states: ResourceStates | None = None,
    *,
    clock: clock_mod.Clock = clock_mod.SYSTEM,
    resource_series: int = variables.METRICS_RESOURCE_SERIES.default,
) -> CollectorRegistry:
    """One app's registry: this process's metrics plus the state of ``settings.state_dir``
    (ages such as the oldest pending delivery's are measured on ``clock``; given
    ``resource_states``, e.g. the app's ``Reader.resource_states``, each resource's state as
    the API shows it). At most ``resource_series`` resources get series of their own
    (``PLANNER_METRICS_RESOURCE_SERIES``): ``/metrics`` stays bounded at any size."""
    telemetry.install(RECORDER)  # this process's reports feed PROCESS from now on
    registry = CollectorRegistry()
    registry.register(_Proxy(PROCESS))
    registry.register(StateCollector(settings, clock=clock, resource_series=resource_series))
    if resource_states is not None:
        registry.register(ResourceStateCollector(resource_states, limit=resource_series))
    return registry


def router(
    settings: Settings,
    resource_states: ResourceStates | None = None,
    *,
    clock: clock_mod.Clock = clock_mod.SYSTEM,
    resource_series: int = variables.METRICS_RESOURCE_SERIES.default,
) -> APIRouter:
    """``GET /metrics`` as its own router, so auth can be added where it is included.

    fastapi is imported here, not at the top: this module is on the CLI's import path
    (``reconcile``), which never needs it. For the same reason the endpoint's annotations are
    builtins only (FastAPI resolves them in this module's globals) and ``response_model=None``.
    """
    from fastapi import APIRouter, Header, Response
    from prometheus_client.exposition import (
        CONTENT_TYPE_PLAIN_0_0_4,
        choose_encoder,
        generate_latest,
    )

    registry = registry_for(settings, resource_states, clock=clock, resource_series=resource_series)
    api = APIRouter(tags=["metrics"])
    text = {"schema": {"type": "string"}}

    @api.get(
        "/metrics",
        response_class=Response,
        response_model=None,
        responses={
            200: {
                "description": "Prometheus text format (OpenMetrics when the Accept header asks).",
                "content": {"text/plain": text, "application/openmetrics-text": text},
            }
        },
    )
    def metrics(accept: str | None = Header(default=None)) -> Response:
        """Operator metrics for Prometheus: reconciles, webhooks, inbox, executors, jobs, and
        the state other processes wrote (inbox depth and age, runs, last reconcile)."""
        # a plain def: reading the state files runs in the threadpool, off the event loop
        try:
            encode, content_type = choose_encoder(accept or "")
        except (TypeError, ValueError):  # e.g. `version=abc`: compared as a tuple, raises
            encode, content_type = generate_latest, CONTENT_TYPE_PLAIN_0_0_4
        return Response(encode(registry), media_type=content_type)

    return api
