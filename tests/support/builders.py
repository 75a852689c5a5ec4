"""Small builders for planner inputs, so law tests read as the laws they state."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from planner_operator.backends.base import RemoteObject
from planner_operator.config.desired import DesiredResource
from planner_operator.core.canonical import spec_hash
from planner_operator.core.keys import split_key
from planner_operator.core.records import OwnedEntry


def job_spec(schedule: str = "0 9 * * 1", **extra: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "schedule": schedule,
        "timezone": "UTC",
        "enabled": True,
        "overlap": "skip",
        "catchup": "latest",
        "dst": "vixie",
        "protect": False,
        "action": {"chat": {"template": "hello {date}", "variables": {}}},
    }
    spec.update(extra)
    return spec


def trigger_spec(config: Mapping[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "toolkit": "gmail",
        "event": "GMAIL_NEW_GMAIL_MESSAGE",
        "connected_account": "ca_1",
        "config": dict(config or {"labelIds": "INBOX"}),
        "enabled": True,
        "protect": False,
        "action": {"chat": {"template": "mail: {subject}", "variables": {}}},
    }
    spec.update(extra)
    return spec


def desired(key: str, spec: Mapping[str, Any], source: str | None = None) -> DesiredResource:
    agent, kind, name = split_key(key)
    return DesiredResource(
        key=key,
        kind=kind,
        agent=agent,
        name=name,
        source=source or f"agents/{agent}.yaml",
        line=1,
        spec=dict(spec),
        spec_hash=spec_hash(spec),
    )


def desired_map(items: Iterable[DesiredResource]) -> dict[str, DesiredResource]:
    return {d.key: d for d in items}


def owned_for(d: DesiredResource, remote_id: str, **extra: Any) -> OwnedEntry:
    values: dict[str, Any] = {
        "key": d.key,
        "kind": d.kind,
        "backend": "local",
        "remote_id": remote_id,
        "spec_hash": d.spec_hash,
        "spec": d.spec,
        "source": d.source,
        "protect": d.protect,
    }
    values.update(extra)
    return OwnedEntry(**values)


def remote_for(d: DesiredResource, remote_id: str) -> RemoteObject:
    state = "active" if d.enabled else ("paused" if d.kind == "job" else "disabled")
    return RemoteObject(remote_id, d.kind, dict(d.spec), key=d.key, state=state)  # type: ignore[arg-type]


def converged(
    items: Iterable[DesiredResource],
) -> tuple[dict[str, DesiredResource], list[RemoteObject], list[OwnedEntry]]:
    """Desired, actual and ledger of a fully applied state."""
    wanted = desired_map(items)
    ids = {k: f"id-{i}" for i, k in enumerate(sorted(wanted))}
    actual = [remote_for(d, ids[k]) for k, d in wanted.items()]
    owned = [owned_for(d, ids[k]) for k, d in wanted.items()]
    return wanted, actual, owned
