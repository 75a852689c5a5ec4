"""The I/O side of ``explain``: read the ledger, run history and inbox, then call the pure
builders (``explain.build``, ``explain_delivery.build``). Nothing here decides anything.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from planner_operator.backends.composio import payloads
from planner_operator.core.records import Delivery, Run
from planner_operator.core.settings import Settings
from planner_operator.errors import InvalidRequest, NotFoundError
from planner_operator.read.explain import delivery as explain_delivery
from planner_operator.read.explain.delivery import DeliveryReport
from planner_operator.read.explain.model import (
    DEFAULT_MAX_SLOTS,
    DEFAULT_WINDOW,
    Inputs,
    Timeline,
    build,
    resolve_key,
)
from planner_operator.runtime import events
from planner_operator.state import open as state_open


def job(
    settings: Settings,
    key: str,
    *,
    start: datetime | None,
    end: datetime | None,
    now: datetime,
) -> Timeline:
    """Read the ledger and run history for ``key`` and build its timeline."""
    key = resolve_key(key)
    if "/triggers/" in key:
        raise InvalidRequest(
            f"{key} is a trigger: explain one of its deliveries with `explain --delivery ID` "
            f"(`planner-operator inbox list --key {key}` lists them)",
            field="key",
        )
    end = _as_utc(end or now)
    defaulted = start is None
    start = _as_utc(start or end - DEFAULT_WINDOW)
    if not state_open.exists(settings, "ledger"):
        where = state_open.where(settings, "ledger")
        raise NotFoundError(f"no ledger at {where}: nothing was applied yet")
    with state_open.ledger(settings) as ledger:
        current = ledger.get(key)
        history = ledger.history(key)
    if current is None and not history:
        raise NotFoundError(
            f"no applied job `{key}` (run `planner-operator status` to list the applied jobs)"
        )
    runs = _job_runs(settings, key, since=start - timedelta(days=1))
    return build(
        Inputs(
            key,
            current,
            history,
            runs,
            start,
            end,
            now,
            max_slots=DEFAULT_MAX_SLOTS if defaulted else None,
        )
    )


def _job_runs(settings: Settings, key: str, *, since: datetime) -> list[Run]:
    """The key's runs started after ``since``, paging newest first until older ones appear."""
    if not state_open.exists(settings, "runs"):
        return []
    out: list[Run] = []
    with state_open.runs(settings) as store:
        before: int | None = None
        while page := store.list(key=key, limit=500, before_id=before):
            out += [r for r in page if _parsed(r.started_at) >= since]
            if _parsed(page[-1].started_at) < since:
                break
            before = page[-1].id
    return out


def delivery(settings: Settings, delivery_id: str) -> DeliveryReport:
    """Read the delivery, today's route for it and its runs, and explain it."""
    found = None
    if state_open.exists(settings, "inbox"):
        with state_open.inbox(settings) as inbox:
            found = inbox.get(delivery_id)
    if found is None:
        where = state_open.where(settings, "inbox")
        raise NotFoundError(
            f"no delivery {delivery_id} in the inbox at {where} (deliveries are kept 7 days; "
            "`planner-operator inbox list` shows them)"
        )
    route = _route(settings, found)
    changed_at = None
    if route is not None:
        with state_open.ledger(settings) as ledger:
            history = ledger.history(route.key)
        arrived = datetime.fromtimestamp(found.received_at, UTC)
        later = [h.at for h in history if h.op != "forget" and h.at > arrived]
        changed_at = later[-1] if later else None
    return explain_delivery.build(
        found, route, _delivery_runs(settings, delivery_id), changed_at=changed_at
    )


def _route(settings: Settings, d: Delivery) -> events.Route | None:
    """The trigger the worker would route ``d`` to now (same lookup as ``worker.Routes``)."""
    from planner_operator.runtime.worker import Routes

    if not state_open.exists(settings, "ledger"):
        return None
    routes = Routes(settings)
    routes.reload()
    try:
        envelope = events.parse(d).composio
    except payloads.PayloadError:
        envelope = None
    remote_id = envelope.trigger_id if envelope is not None else None
    return routes.find(d.source, remote_id=remote_id, key=d.trigger_key)


def _delivery_runs(settings: Settings, delivery_id: str) -> list[Run]:
    """Runs whose run id is the delivery id or one of its replays (indexed on run_id)."""
    if not state_open.exists(settings, "runs"):
        return []
    with state_open.runs(settings) as store:
        return store.for_delivery(delivery_id)


def _as_utc(value: datetime) -> datetime:
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(UTC)


def _parsed(text: str) -> datetime:
    return _as_utc(datetime.fromisoformat(text.replace("Z", "+00:00")))
