"""Builders for render tests: real plan dataclasses, made small enough to read in a test.

Plans come from the real planner (``planner_operator.reconcile.plan.plan``) fed with desired
resources, ledger entries and remote objects, so the renderers are tested on the shapes they
will meet.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from planner_operator.backends.base import RemoteObject
from planner_operator.config.desired import DesiredResource
from planner_operator.core import canonical
from planner_operator.core.keys import job_key, split_key, trigger_key
from planner_operator.core.records import OwnedEntry
from planner_operator.core.revision import Revision
from planner_operator.errors import ConfigError
from planner_operator.reconcile.plan import Plan, plan

NOW = datetime(2026, 3, 7, 12, 0, tzinfo=UTC)
REVISION = Revision("git", "/repo", sha="0123456789abcdef0123", ref="main")


def chat(template: str = "Good morning from {agent}", **variables: Any) -> dict[str, Any]:
    return {"chat": {"template": template, "variables": variables}}


def job_spec(schedule: str = "0 9 * * 1", timezone: str = "UTC", **fields: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {"schedule": schedule, "timezone": timezone, "enabled": True}
    spec["action"] = fields.pop("action", chat())
    spec.update(fields)
    return spec


def trigger_spec(**fields: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "toolkit": "gmail",
        "event": "GMAIL_NEW_MESSAGE",
        "connected_account": "ca_123",
        "enabled": True,
        "action": chat("New mail: {subject} from {sender.name}"),
    }
    spec.update(fields)
    return spec


def desired(key: str, spec: dict[str, Any]) -> DesiredResource:
    agent, kind, name = split_key(key)
    return DesiredResource(
        key=key,
        kind=kind,
        agent=agent,
        name=name,
        source=f"agents/{agent}.yaml",
        line=3,
        spec=spec,
        spec_hash=canonical.spec_hash(spec),
    )


def job(agent: str, name: str, **fields: Any) -> DesiredResource:
    return desired(job_key(agent, name), job_spec(**fields))


def trigger(agent: str, name: str, **fields: Any) -> DesiredResource:
    return desired(trigger_key(agent, name), trigger_spec(**fields))


def applied(
    resource: DesiredResource, remote_id: str, *, protect: bool = False
) -> tuple[OwnedEntry, RemoteObject]:
    """The ledger entry and remote object of a resource applied exactly as given."""
    entry = OwnedEntry(
        key=resource.key,
        kind=resource.kind,
        backend="local",
        remote_id=remote_id,
        spec_hash=resource.spec_hash,
        spec=resource.spec,
        revision="abc",
        source=resource.source,
        protect=protect,
    )
    remote = RemoteObject(remote_id, resource.kind, resource.spec, key=resource.key)
    return entry, remote


def make_plan(
    want: Iterable[DesiredResource] = (),
    have: Iterable[DesiredResource] = (),
    *,
    errors: Iterable[ConfigError] = (),
    extra_remote: Iterable[RemoteObject] = (),
    protect: bool = False,
) -> Plan:
    """Plan ``want`` against a world where every resource in ``have`` was applied as given."""
    pairs = [applied(r, f"rid-{i}", protect=protect) for i, r in enumerate(have)]
    return plan(
        {r.key: r for r in want},
        [remote for _, remote in pairs] + list(extra_remote),
        [entry for entry, _ in pairs],
        list(errors),
        revision=REVISION,
    )
