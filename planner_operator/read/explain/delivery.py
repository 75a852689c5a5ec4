"""``explain --delivery ID``: one webhook delivery from receipt to its run, step by step.

The worker decides in a fixed order (parse, route through the ledger, enabled, filter, render,
execute), and each step can be why nothing ran. :func:`build` replays the decisions against
today's applied spec, purely, and lists the runs recorded for the delivery (``run_id`` is the
delivery id, or ``<id>~replay<n>`` after a replay), so an operator sees which step said no.

Stored headers never include signatures (ingress drops them); only a few harmless ones are
printed anyway (content type, ids, timestamps), never other values.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from planner_operator.backends.composio import payloads
from planner_operator.core.records import Delivery, Run
from planner_operator.errors import PlannerError
from planner_operator.runtime import events

SHOWN_HEADERS = frozenset(
    {"content-type", "webhook-id", "webhook-timestamp", "x-github-delivery", "x-github-event"}
)


@dataclass(frozen=True)
class Step:
    name: str  # received | payload | route | enabled | filter | preview
    ok: bool  # False: this step is why nothing (more) happened
    text: str
    checks: tuple[events.Check, ...] = ()


@dataclass(frozen=True)
class DeliveryReport:
    delivery_id: str
    status: str
    outcome: str | None
    key: str | None
    steps: tuple[Step, ...]
    runs: tuple[Run, ...]


def build(
    d: Delivery,
    route: events.Route | None,
    runs: Sequence[Run],
    *,
    changed_at: datetime | None = None,
) -> DeliveryReport:
    """What happened to ``d`` and why, with ``route`` the trigger it maps to today (if any).

    ``changed_at``: when the trigger's applied spec last changed, if after the delivery arrived
    (the filter and preview below use today's spec, which then may not be what the worker saw).
    """
    steps = [_received(d)]
    key = route.key if route is not None else d.trigger_key
    try:
        parsed = events.parse(d)
    except payloads.PayloadError as exc:
        steps.append(Step("payload", False, f"the stored body does not parse: {exc}"))
        return _report(d, key, steps, runs)
    envelope = parsed.composio
    if envelope is not None:
        steps.append(Step("payload", True, f"Composio {envelope.version} payload, {envelope.type}"))
        if envelope.is_lifecycle:
            about = envelope.trigger_id or envelope.connected_account_id or "?"
            text = f"lifecycle event about {about}: it updates trigger status, nothing runs"
            steps.append(Step("route", True, text))
            return _report(d, key, steps, runs)
        if not envelope.is_message:
            steps.append(Step("route", False, f"event type {envelope.type} is not handled"))
            return _report(d, key, steps, runs)
        what, via = f"Composio trigger id {envelope.trigger_id}", "by Composio trigger id"
    else:
        steps.append(Step("payload", True, f"{d.source} JSON payload"))
        what, via = f"trigger key {d.trigger_key}", "by key"
    if route is None:
        text = (
            f"no applied trigger has {what} (not applied yet, or deleted since): "
            "`planner-operator status` lists the applied triggers"
        )
        steps.append(Step("route", False, text))
        return _report(d, key, steps, runs)
    target = f"routed {via} to {route.key} ({route.backend} {route.remote_id})"
    if changed_at is not None:
        target += (
            f"\nthe trigger changed at {changed_at.isoformat(timespec='seconds')}, after this "
            "delivery arrived: the steps below use today's spec"
        )
    steps.append(Step("route", True, target))
    spec = route.spec
    if not route.enabled:
        steps.append(Step("enabled", False, "the trigger is disabled (enabled: false)"))
    checks = tuple(events.explain_filter(route.typed.filter, parsed.payload))
    if checks:
        passed = all(c.passed for c in checks)
        failed = [c.path for c in checks if not c.passed]
        text = "filter matches" if passed else f"filter does not match: {', '.join(failed)}"
        steps.append(Step("filter", passed, text, checks))
    else:
        steps.append(Step("filter", True, "no filter: every event runs"))
    if all(step.ok for step in steps[1:]):  # else an earlier step already says why not
        try:
            preview = events.preview(d, route.key, spec)
            steps.append(Step("preview", True, preview))
        except PlannerError as exc:
            steps.append(Step("preview", False, f"the action cannot render: {exc}"))
    return _report(d, key, steps, runs)


def _received(d: Delivery) -> Step:
    at = datetime.fromtimestamp(d.received_at, UTC).isoformat(timespec="seconds")
    parts = [f"received {at} from {d.source}"]
    if d.event_type:
        parts.append(f"event type {d.event_type}")
    parts.append(f"{d.attempts} attempt(s)")
    if d.duplicates:
        parts.append(f"re-sent {d.duplicates} time(s) (counted, not run again)")
    if d.replays:
        parts.append(f"replayed {d.replays} time(s)")
    shown = {k: v for k, v in sorted(d.headers.items()) if _shown(k)}
    if shown:
        parts.append("headers " + ", ".join(f"{k}: {v}" for k, v in shown.items()))
    text = "; ".join(parts) + f"\ninbox status {d.status}"
    if d.outcome:
        text += f": {d.outcome}"
    if d.last_error:
        text += f"\nlast error: {d.last_error}"
    return Step("received", d.status not in ("dead", "failed"), text)


def _shown(header: str) -> bool:
    name = header.lower()
    return name in SHOWN_HEADERS or name.endswith("timestamp")


def _report(d: Delivery, key: str | None, steps: list[Step], runs: Sequence[Run]) -> DeliveryReport:
    ordered = tuple(sorted(runs, key=lambda r: r.id))
    return DeliveryReport(d.id, d.status, d.outcome, key, tuple(steps), ordered)


def describe_check(check: events.Check) -> str:
    """``subject contains "invoice": failed (subject = "Hello")``."""
    if check.condition is None:
        return f"{check.path}: {'passed' if check.passed else 'failed'}"
    [(op, expected)] = list(check.condition.items()) or [("?", None)]
    verdict = "passed" if check.passed else "failed"
    seen = f"{check.path} = {_short(check.value)}" if check.found else f"{check.path} is missing"
    return f"{check.path} {op} {_short(expected)}: {verdict} ({seen})"


def _short(value: Any, limit: int = 80) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def as_dict(report: DeliveryReport) -> Mapping[str, Any]:
    return {
        "delivery_id": report.delivery_id,
        "status": report.status,
        "outcome": report.outcome,
        "key": report.key,
        "steps": [
            {"name": s.name, "ok": s.ok, "text": s.text, "checks": [_check(c) for c in s.checks]}
            for s in report.steps
        ],
        "runs": [_run(r) for r in report.runs],
    }


def _check(c: events.Check) -> dict[str, Any]:
    return {
        "path": c.path,
        "passed": c.passed,
        "condition": dict(c.condition) if c.condition is not None else None,
        "found": c.found,
        "value": c.value,
        "children": [_check(x) for x in c.children],
    }


def _run(r: Run) -> dict[str, Any]:
    keep = ("id", "key", "run_id", "attempt", "origin", "status", "reason", "error", "action")
    out = {k: getattr(r, k) for k in keep}
    out.update(started_at=r.started_at, finished_at=r.finished_at, result=r.trigger_result)
    return out
