"""The state of each applied job and trigger as the backends report it, cached.

What the status API and dashboard show as ``state``: ``active``, ``paused``, ``error`` (the
backend or Composio says so, or the backend could not be read) or ``drifted`` (it differs from
what was applied). A backend read may be a Composio API call, so it is cached for ``ttl``
seconds, or until a reconcile ran since (the ledger's record of it changed, or the ledger has a
resource the cached read has not seen): a dashboard refreshing every few seconds must not spend
the request budget every reconcile also needs. A failed read is cached the same way (retrying
per request would hammer a remote already in trouble) and makes every resource ``error`` with
the failure as its detail. Composio lifecycle events (a trigger disabled, an account expired)
come from the local inbox, are cheap to read and so are never cached.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from planner_operator.backends.base import RemoteObject
from planner_operator.backends.select import open_backends
from planner_operator.core import clock as clock_mod
from planner_operator.core import specs
from planner_operator.core.records import OwnedEntry
from planner_operator.core.settings import Settings
from planner_operator.errors import PlannerError
from planner_operator.reconcile import plan
from planner_operator.reconcile.engine import read_actual
from planner_operator.state import inbox
from planner_operator.state.ledger import Ledger

State = Literal["active", "paused", "error", "drifted"]


@dataclass(frozen=True)
class Status:
    state: State
    detail: str  # why the state is what it is; empty when active
    disabled_reason: str | None = None  # what Composio (or the backend) said when it stopped it


@dataclass(frozen=True)
class _Snapshot:
    states: Mapping[str, Status]
    error: str | None
    at: float
    seen: frozenset[tuple[str, str, str]]  # (key, remote id, spec hash) the read covered
    stamp: str | None  # the ledger's last_reconcile record at the time of the read


class RemoteStates:
    """Thread-safe: concurrent requests share one read (the others wait for it)."""

    def __init__(
        self,
        settings: Settings,
        *,
        ttl: float = 15.0,
        env: Mapping[str, str] | None = None,
        clock: clock_mod.Clock = clock_mod.SYSTEM,
    ) -> None:
        self.settings = settings
        self.ttl = ttl
        self.env = env
        self._clock = clock
        self._lock = threading.Lock()
        self._snapshot: _Snapshot | None = None

    def of(self, entries: list[OwnedEntry]) -> dict[str, Status]:
        """Status per key of ``entries``: lifecycle events first, then the backend read."""
        wanted = frozenset((e.key, e.remote_id, e.spec_hash) for e in entries)
        with self._lock:
            snap = self._snapshot
            with Ledger(self.settings.ledger_db) as ledger:
                stamp = ledger.get_meta("last_reconcile")
                fresh = snap is not None and snap.stamp == stamp and wanted <= snap.seen
                if not fresh or snap is None or self._clock.monotonic() - snap.at >= self.ttl:
                    owned = ledger.entries(include_retired=False)  # one read serves every page
                    snap = self._snapshot = self._read(owned, stamp)
        lifecycle = inbox.trigger_statuses(self.settings)
        out: dict[str, Status] = {}
        for e in entries:
            if e.key in lifecycle:  # Composio said so: trigger disabled, account expired
                event, why = lifecycle[e.key]
                out[e.key] = Status("error", f"{event}: {why}" if why else event, why or event)
            elif snap.error is not None:
                out[e.key] = Status("error", f"cannot read the backend: {snap.error}")
            else:
                out[e.key] = snap.states.get(e.key) or Status("drifted", "missing remotely")
        return out

    def _read(self, entries: list[OwnedEntry], stamp: str | None) -> _Snapshot:
        seen = frozenset((e.key, e.remote_id, e.spec_hash) for e in entries)
        try:
            backends = open_backends(self.settings, self.env, clock=self._clock)
            try:
                actual = read_actual(backends)
            finally:
                backends.close()
        except Exception as exc:  # SDK errors too: the page shows them, it must not fail
            text = str(exc) if isinstance(exc, PlannerError) else f"{type(exc).__name__}: {exc}"
            return _Snapshot({}, text, self._clock.monotonic(), seen, stamp)
        by_id = {(o.kind, o.remote_id): o for o in actual}
        states = {e.key: state_of(e, by_id.get((e.kind, e.remote_id))) for e in entries}
        return _Snapshot(states, None, self._clock.monotonic(), seen, stamp)


def state_of(entry: OwnedEntry, have: RemoteObject | None) -> Status:
    """As ``status.collect`` does: an object the backend reports in error is ``error`` (with the
    backend's reason), not ``drifted``: nothing was changed, it broke."""
    if have is None:
        return Status("drifted", "missing remotely: the next reconcile re-creates it")
    if have.state == "error":
        return Status("error", have.reason or "in error remotely", have.reason)
    drift = plan.drift_of(entry, have)
    if drift:
        return Status("drifted", "; ".join(d.what for d in drift))
    if have.state in ("paused", "disabled"):
        off = not specs.enabled(entry.spec)
        why = have.reason or ("enabled: false in its file" if off else "paused remotely")
        return Status("paused", why, have.reason if have.state == "disabled" else None)
    return Status("active", "")
