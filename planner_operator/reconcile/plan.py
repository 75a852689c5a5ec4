"""The planner: a pure function from (desired, actual, owned, load errors) to an ordered plan.

Every safety rule lives here, where it can be tested as a property without a database or a
network (see tests/test_plan_laws.py):

* a file that fails to load freezes its own resources: no update, no delete;
* a run with load errors, or an empty desired state, deletes nothing;
* more than max(3, 10% of managed) deletions are refused without ``allow_mass_delete``;
* a resource whose ledger entry says ``protect`` is not deleted without ``allow_protected_delete``;
* only what the ledger owns is ever deleted, plus objects an interrupted create left behind
  (same key as a pending write-ahead intent, owned by no row); everything else remote is
  reported as unmanaged.

Refused changes stay in the plan with ``blocked`` set, so the output shows what *would* happen
and which flag allows it; the applier skips them.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from pathlib import PurePath
from typing import Any

from planner_operator.backends.base import REPLACE_FIELDS, RemoteObject, SubscriptionState
from planner_operator.config.desired import DesiredResource
from planner_operator.core import specs
from planner_operator.core.keys import Kind, split_key
from planner_operator.core.records import Intent, OwnedEntry
from planner_operator.core.revision import Revision
from planner_operator.errors import ConfigError
from planner_operator.reconcile import subscription as subscription_mod
from planner_operator.reconcile.subscription import SubscriptionChange


class Op(StrEnum):
    CREATE = "create"
    UPDATE = "update"
    REPLACE = "replace"
    DELETE = "delete"
    NOOP = "no-op"


_ORDER = {Op.CREATE: 0, Op.REPLACE: 1, Op.UPDATE: 2, Op.DELETE: 3, Op.NOOP: 4}


@dataclass(frozen=True)
class FieldChange:
    """One changed field; ``before``/``after`` absent when the field is added/removed."""

    path: str
    before: Any = None
    after: Any = None
    had_before: bool = True
    has_after: bool = True


@dataclass(frozen=True)
class Change:
    op: Op
    key: str
    kind: Kind
    reason: str
    diff: tuple[FieldChange, ...] = ()
    desired: DesiredResource | None = None
    owned: OwnedEntry | None = None
    remote: RemoteObject | None = None
    blocked: str | None = None
    notes: tuple[str, ...] = ()
    # The pending intent this change settles (see owned.Intent), and the unowned object a create
    # is expected to take over: apply clears the intent only once such changes are done.
    intent: Intent | None = None
    takes_over: str | None = None

    @property
    def agent(self) -> str:
        return split_key(self.key)[0]

    @property
    def name(self) -> str:
        return split_key(self.key)[2]

    @property
    def actionable(self) -> bool:
        return self.op is not Op.NOOP and self.blocked is None


@dataclass(frozen=True)
class Drift:
    """The remote differs from what the ledger says was applied (changed outside the operator)."""

    key: str
    remote_id: str
    what: str


@dataclass(frozen=True)
class PlanOptions:
    allow_mass_delete: bool = False
    allow_protected_delete: bool = False
    allow_empty: bool = False
    take_over_subscription: bool = False  # point another app's webhook subscription here


@dataclass(frozen=True)
class Plan:
    changes: tuple[Change, ...]
    unmanaged: tuple[RemoteObject, ...] = ()
    load_errors: tuple[ConfigError, ...] = ()
    frozen_files: tuple[str, ...] = ()
    drift: tuple[Drift, ...] = ()
    refusals: tuple[str, ...] = ()
    revision: Revision | None = None
    managed: int = 0
    intents: tuple[Intent, ...] = ()  # the pending intents this plan was made with
    subscription: SubscriptionChange | None = None  # the vendor's delivery subscription
    # Problems that stop nothing (a trigger type no catalog covers, a webhook secret unset in
    # the environment the plan ran in): shown by every renderer, never freezing a file.
    warnings: tuple[ConfigError, ...] = ()
    schedule_backend: str = ""  # where jobs run ("inngest", "local"): previews predict for it

    def counts(self) -> dict[Op, int]:
        """Actionable changes per op (blocked and no-op not counted)."""
        out = dict.fromkeys((Op.CREATE, Op.UPDATE, Op.REPLACE, Op.DELETE), 0)
        for change in self.changes:
            if change.actionable:
                out[change.op] += 1
        return out

    @property
    def actionable(self) -> tuple[Change, ...]:
        return tuple(c for c in self.changes if c.actionable)

    @property
    def blocked(self) -> tuple[Change, ...]:
        return tuple(c for c in self.changes if c.blocked is not None)

    @property
    def has_changes(self) -> bool:
        sub = self.subscription
        return any(c.actionable for c in self.changes) or (sub is not None and sub.actionable)

    @property
    def ok(self) -> bool:
        """No load errors and nothing refused: the plan can be applied in full."""
        sub_blocked = self.subscription is not None and self.subscription.blocked is not None
        return not self.load_errors and not self.blocked and not sub_blocked


def deletion_budget(managed: int) -> int:
    """How many deletions one run may make without --allow-mass-delete."""
    return max(3, math.floor(managed * 0.10))


def plan(
    desired: Mapping[str, DesiredResource],
    actual: Iterable[RemoteObject],
    owned: Iterable[OwnedEntry],
    load_errors: Sequence[ConfigError] = (),
    *,
    options: PlanOptions = PlanOptions(),
    revision: Revision | None = None,
    intents: Iterable[Intent] = (),
    subscription: SubscriptionState | None = None,
    warnings: Sequence[ConfigError] = (),
    schedule_backend: str = "",
) -> Plan:
    """``intents`` are the pending ones recorded for the backends ``actual`` was read from;
    ``subscription`` is the delivery subscription as read (``reconcile.subscription``);
    ``warnings`` are passed through to the renderers."""
    owned = list(owned)
    active = {e.key: e for e in owned if not e.retired}
    remote_by_id = {(r.kind, r.remote_id): r for r in actual}
    owned_ids = {(e.kind, e.remote_id) for e in owned}
    intended = {(i.kind, i.key): i for i in intents}
    strays: dict[tuple[Kind, str], list[RemoteObject]] = {}  # unowned objects that name a key
    for r in sorted(remote_by_id.values(), key=lambda r: r.remote_id):
        if r.key and (r.kind, r.remote_id) not in owned_ids:
            strays.setdefault((r.kind, r.key), []).append(r)
    failed_files = tuple(sorted({e.file for e in load_errors}))

    changes: list[Change] = []
    drift: list[Drift] = []
    for key in sorted(set(desired) | set(active)):
        want, entry = desired.get(key), active.get(key)
        have = remote_by_id.get((entry.kind, entry.remote_id)) if entry else None
        if entry is not None:
            drift.extend(drift_of(entry, have))
        if want is None and entry is not None and _frozen(entry, failed_files):
            changes.append(_frozen_change(entry, have, failed_files))
        else:
            changes.append(_change(key, want, entry, have))
    for entry in (e for e in owned if e.retired):
        have = remote_by_id.get((entry.kind, entry.remote_id))
        changes.append(
            Change(
                Op.DELETE,
                entry.key,
                entry.kind,
                "old object left by a replace",
                owned=entry,
                remote=have,
                notes=_gone(have, entry),
            )
        )
    changes = _interrupted(changes, strays, intended)
    claimed = {(c.kind, c.takes_over) for c in changes if c.takes_over} | {
        (c.kind, c.remote.remote_id) for c in changes if c.intent and c.remote and not c.owned
    }
    spoken_for = owned_ids | claimed  # once: inside the loop it cost 0.1 s per 2,000 objects
    unmanaged = tuple(r for r in remote_by_id.values() if (r.kind, r.remote_id) not in spoken_for)
    changes, refusals = _guard(changes, desired, load_errors, len(active), options)
    changes = _mark_renames(changes)
    changes.sort(key=lambda c: (_ORDER[c.op], c.key))
    sub = None
    if subscription is not None:
        sub = subscription_mod.plan_subscription(
            subscription, take_over=options.take_over_subscription
        )
        if sub.blocked is not None:
            refusals.append(f"{subscription.backend} webhook subscription {sub.blocked}")
    return Plan(
        changes=tuple(changes),
        unmanaged=tuple(sorted(unmanaged, key=lambda r: (r.kind, r.remote_id))),
        load_errors=tuple(load_errors),
        frozen_files=failed_files,
        drift=tuple(drift),
        refusals=tuple(refusals),
        revision=revision,
        managed=len(active),
        intents=tuple(intended.values()),
        subscription=sub,
        warnings=tuple(warnings),
        schedule_backend=schedule_backend,
    )


def _interrupted(
    changes: list[Change],
    strays: Mapping[tuple[Kind, str], Sequence[RemoteObject]],
    intended: Mapping[tuple[Kind, str], Intent],
) -> list[Change]:
    """Deal with what interrupted creates left: unowned objects that carry a declared key.

    A create (or the create half of a replace) of that key takes over the one with the same
    identity, as the backend's idempotent create will. Those that match a pending intent and are
    not taken over are deleted: an interrupted create made them, and their key is gone or owned
    by another object. Unowned objects that match no intent are never touched.
    """
    out = [
        _claim(c, strays.get((c.kind, c.key), ()), intended.get((c.kind, c.key))) for c in changes
    ]
    taken = {(c.kind, c.takes_over) for c in out if c.takes_over}
    for (kind, key), intent in sorted(intended.items()):
        for stray in strays.get((kind, key), ()):
            if (kind, stray.remote_id) not in taken:
                reason = _left_by(intent)
                out.append(Change(Op.DELETE, key, kind, reason, remote=stray, intent=intent))
    return out


def _claim(change: Change, found: Sequence[RemoteObject], intent: Intent | None) -> Change:
    """Tie a create or replace to its key's intent and to the object it will take over."""
    if change.op not in (Op.CREATE, Op.REPLACE) or change.desired is None:
        return change
    orphan = _takeover(found, change.desired, intent, change.op)
    if orphan is None:
        return replace(change, intent=intent)
    left = _left_by(intent) if intent else "left by an interrupted apply"
    return replace(
        change,
        remote=orphan if change.op is Op.CREATE else change.remote,
        takes_over=orphan.remote_id,
        notes=(*change.notes, f"takes over {orphan.remote_id}, {left}"),
        intent=intent,
    )


def _takeover(
    found: Sequence[RemoteObject], want: DesiredResource, intent: Intent | None, op: Op
) -> RemoteObject | None:
    """The object a create of ``want`` will return: same key and identity (``REPLACE_FIELDS``).

    Without an intent a create still names the first object with its key (the older rule),
    since the backend's create by key finds it whether or not anything was announced.
    """
    for obj in found:
        if all(obj.spec.get(f) == want.spec.get(f) for f in REPLACE_FIELDS[want.kind]):
            return obj
    return found[0] if found and intent is None and op is Op.CREATE else None


def _left_by(intent: Intent) -> str:
    when = intent.created_at.isoformat(timespec="seconds") if intent.created_at else "?"
    return f"left by an interrupted create at {when}"


def _frozen(entry: OwnedEntry, failed_files: Collection[str]) -> bool:
    return frozen_by(entry, failed_files) is not None


def frozen_by(entry: OwnedEntry, failed_files: Collection[str]) -> str | None:
    """The failed file that declares ``entry`` (its agent's file), if one of them does."""
    agent = split_key(entry.key)[0]
    for file in failed_files:
        path = PurePath(file)
        if path.stem == agent or (entry.source and PurePath(entry.source).name == path.name):
            return file
    return None


def _frozen_change(
    entry: OwnedEntry, have: RemoteObject | None, failed_files: Collection[str]
) -> Change:
    source = entry.source or "its file"
    return Change(
        Op.NOOP,
        entry.key,
        entry.kind,
        f"frozen: {source} failed to load; left exactly as applied",
        owned=entry,
        remote=have,
        notes=("frozen",),
    )


def _change(
    key: str,
    want: DesiredResource | None,
    entry: OwnedEntry | None,
    have: RemoteObject | None,
) -> Change:
    if want is not None and entry is None:
        notes: tuple[str, ...] = (_pause_note(want),) if not want.enabled else ()
        return Change(Op.CREATE, key, want.kind, "new in config", desired=want, notes=notes)
    if want is not None and entry is not None and have is None:
        return Change(
            Op.CREATE,
            key,
            want.kind,
            f"{entry.remote_id} is gone remotely (deleted outside the operator?)",
            desired=want,
            owned=entry,
            notes=("drift",),
        )
    if want is not None and entry is not None and have is not None:
        return _compare(key, want, entry, have)
    assert entry is not None
    return Change(
        Op.DELETE,
        key,
        entry.kind,
        f"no longer declared{f' in {entry.source}' if entry.source else ''}",
        owned=entry,
        remote=have,
        notes=_gone(have, entry),
    )


def observed(entry: OwnedEntry, have: RemoteObject) -> dict[str, Any]:
    """The spec as it stands remotely: applied spec, overlaid with what the backend can see.

    The remote *state* is the truth about ``enabled``: a job paused in a dashboard is paused,
    whatever the spec stored beside it says.
    """
    current = {**entry.spec, **have.spec}
    if have.state in ("paused", "disabled"):
        current["enabled"] = False
    elif have.state == "active":
        current["enabled"] = True
    return current


def _compare(key: str, want: DesiredResource, entry: OwnedEntry, have: RemoteObject) -> Change:
    current = observed(entry, have)
    if want.spec_hash == entry.spec_hash and current == want.spec:  # the common, no-op case
        return Change(Op.NOOP, key, want.kind, "up to date", desired=want, owned=entry, remote=have)
    diff = field_diff(current, want.spec)

    def change(op: Op, reason: str, notes: tuple[str, ...] = ()) -> Change:
        return Change(op, key, want.kind, reason, diff, want, entry, have, notes=notes)

    if not diff:
        if want.spec_hash == entry.spec_hash:
            return Change(
                Op.NOOP, key, want.kind, "up to date", desired=want, owned=entry, remote=have
            )
        return change(Op.UPDATE, "remote already matches; record it")
    changed_top = {d.path.split(".", 1)[0] for d in diff}
    fixed = sorted(changed_top & REPLACE_FIELDS[want.kind])
    if fixed:
        reason = f"{', '.join(fixed)} cannot change in place: create new, then delete old"
        return change(Op.REPLACE, reason)
    notes: tuple[str, ...] = ()
    if "enabled" in changed_top:
        notes = (_pause_note(want),) if not want.enabled else ("resume",)
        if have.state in ("disabled", "error") and want.enabled and have.reason:
            notes += (f"disabled remotely: {have.reason}",)
    return change(Op.UPDATE, "changed: " + ", ".join(sorted(changed_top)), notes)


def _pause_note(want: DesiredResource) -> str:
    return "paused" if want.kind == "job" else "disabled"


def _gone(have: RemoteObject | None, entry: OwnedEntry) -> tuple[str, ...]:
    if have is None:
        return (f"{entry.remote_id} already gone remotely; only the ledger entry is removed",)
    return ()


def drift_of(entry: OwnedEntry, have: RemoteObject | None) -> list[Drift]:
    if entry.retired:
        return []
    if have is None:
        return [Drift(entry.key, entry.remote_id, "missing remotely")]
    out = []
    changed = changed_remotely(entry, have)
    if changed:
        out.append(Drift(entry.key, entry.remote_id, "changed remotely: " + ", ".join(changed)))
    if have.state == "error":
        why = f" ({have.reason})" if have.reason else ""
        out.append(Drift(entry.key, entry.remote_id, f"in error remotely{why}"))
    return out


def changed_remotely(entry: OwnedEntry, have: RemoteObject) -> list[str]:
    """The spec fields that differ remotely from what the ledger says was applied."""
    current = observed(entry, have)
    return [] if current == entry.spec else [d.path for d in field_diff(entry.spec, current)]


def _guard(
    changes: list[Change],
    desired: Mapping[str, DesiredResource],
    load_errors: Sequence[ConfigError],
    managed: int,
    options: PlanOptions,
) -> tuple[list[Change], list[str]]:
    refusals: list[str] = []

    def block_deletes(reason: str, which: Iterable[int]) -> None:
        for i in which:
            if changes[i].blocked is None:
                changes[i] = replace(changes[i], blocked=reason)

    deletes = [i for i, c in enumerate(changes) if c.op is Op.DELETE]
    if load_errors and deletes:
        files = sorted({e.file for e in load_errors})
        reason = f"not deleting while {len(files)} file(s) fail to load: {', '.join(files)}"
        block_deletes(reason, deletes)
        refusals.append(reason)
    if not desired and deletes and not options.allow_empty:
        reason = (
            "desired state is empty (no agent files found): refusing to delete anything; "
            "pass --allow-empty if removing every agent is intended"
        )
        block_deletes(reason, deletes)
        refusals.append(reason)
    if not options.allow_protected_delete:
        protected = [i for i in deletes if _protected(changes[i])]
        block_deletes("protected: pass --allow-protected-delete to delete it", protected)
    live = [i for i in deletes if changes[i].blocked is None and not _is_cleanup(changes[i])]
    budget = deletion_budget(managed)
    if len(live) > budget and not options.allow_mass_delete:
        reason = (
            f"refusing to delete {len(live)} of {managed} managed resources (limit {budget}: "
            "max(3, 10%)); pass --allow-mass-delete if this is intended"
        )
        block_deletes(reason, live)
        refusals.append(reason)
    return changes, refusals


def _protected(change: Change) -> bool:
    if change.owned is not None:
        return change.owned.protect
    return change.intent is not None and specs.protected(change.intent.spec)


def _is_cleanup(change: Change) -> bool:
    return change.owned is not None and change.owned.retired


def _mark_renames(changes: list[Change]) -> list[Change]:
    """A create and a delete of the same agent, kind and spec are a rename: say so."""
    creates = {
        (c.agent, c.kind, c.desired.spec_hash): i
        for i, c in enumerate(changes)
        if c.op is Op.CREATE and c.desired is not None and c.owned is None
    }
    for i, change in enumerate(changes):
        if change.op is not Op.DELETE or change.owned is None or change.owned.retired:
            continue
        j = creates.get((change.agent, change.kind, change.owned.spec_hash))
        if j is None:
            continue
        old, new = change.name, changes[j].name
        changes[i] = replace(change, notes=(*change.notes, f"renamed to {new}"))
        changes[j] = replace(changes[j], notes=(*changes[j].notes, f"renamed from {old}"))
    return changes


def field_diff(
    before: Mapping[str, Any], after: Mapping[str, Any], prefix: str = ""
) -> tuple[FieldChange, ...]:
    """Field-level differences; nested mappings are walked, lists compared whole."""
    out: list[FieldChange] = []
    for name in sorted(set(before) | set(after)):
        path = f"{prefix}{name}"
        if name not in after:
            out.append(FieldChange(path, before[name], None, True, False))
        elif name not in before:
            out.append(FieldChange(path, None, after[name], False, True))
        elif isinstance(before[name], Mapping) and isinstance(after[name], Mapping):
            out.extend(field_diff(before[name], after[name], f"{path}."))
        elif before[name] != after[name] or type(before[name]) is not type(after[name]):
            out.append(FieldChange(path, before[name], after[name]))
    return tuple(out)
