"""The state of each applied job and trigger, from a cached read of the backends.

What the status API, the dashboard and ``/metrics`` show as ``state`` is ``states.classify`` of
the facts gathered here, the same function ``planner-operator status`` calls. A backend read
may be a Composio API call, so it is cached for ``ttl`` seconds, or until a reconcile ran since
(the ledger's record of it changed, or the ledger has a resource the cached read has not seen):
a dashboard refreshing every few seconds must not spend the request budget every reconcile
also needs. A failed read is cached the same way (retrying per request would hammer a remote
already in trouble) and makes every resource ``error`` with the failure as its detail.
Composio lifecycle events (a trigger disabled, an account expired) come from the local inbox,
the frozen files from the ledger's last reconcile record, and unset webhook secrets from this
process's environment (the one ``serve`` verifies with): cheap to read, never cached.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from dataclasses import dataclass

from planner_operator.backends import base
from planner_operator.backends.base import RemoteObject
from planner_operator.backends.select import open_backends
from planner_operator.core import canonical
from planner_operator.core import clock as clock_mod
from planner_operator.core.keys import Kind
from planner_operator.core.records import OwnedEntry
from planner_operator.core.settings import Settings
from planner_operator.read import states
from planner_operator.read import status as status_mod
from planner_operator.state import open as state_open


@dataclass(frozen=True, slots=True)
class _Held:
    """A backend object as the snapshot keeps it between reads: its spec as canonical JSON,
    decoded only to classify it. ``serve`` holds the snapshot for its life; 20,000 decoded
    specs were ~47 MB of dicts and strings, the texts a fraction of it. Equal texts are equal
    specs, so comparing two reads stays exact."""

    remote_id: str
    kind: Kind
    text: str
    key: str | None
    state: base.RemoteState
    reason: str | None

    @classmethod
    def of(cls, o: RemoteObject) -> _Held:
        text = canonical.canonical_json(o.spec)
        return cls(o.remote_id, o.kind, text, o.key, o.state, o.reason)

    def object(self) -> RemoteObject:
        spec = json.loads(self.text)
        return RemoteObject(self.remote_id, self.kind, spec, self.key, self.state, self.reason)


@dataclass(frozen=True)
class _Snapshot:
    objects: Mapping[tuple[Kind, str], _Held]  # (kind, remote id) -> what the backend has
    error: str | None
    at: float
    seen: frozenset[tuple[str, str, str]]  # (key, remote id, spec hash) the read covered
    stamp: str | None  # the ledger's last_reconcile record at the time of the read
    versions: tuple[object, ...] | None = None  # the backends' change marks, taken before it


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
        self._changes = 0  # backend reads that found something new (see generation)
        self.listings = 0  # full listings of the backends made (tests and the benchmark)

    def generation(self) -> int:
        """Moves when a backend read found something other than the previous one held
        (``catalog`` rebuilds its rows then, and only then)."""
        return self._changes

    def stale(self) -> bool:
        """The cached read is past its TTL (or there is none): the next ``of`` reads anew."""
        snap = self._snapshot
        return snap is None or self._clock.monotonic() - snap.at >= self.ttl

    def refresh(self) -> None:
        """Read the backends again if the cached read is past its TTL, for the same owned set
        (the caller knows the ledger has not changed since); ``generation`` says whether what
        they hold changed. The read runs outside the lock: readers keep the current snapshot
        meanwhile (``of(..., ttl=False)``)."""
        snap = self._snapshot
        if snap is None or self._clock.monotonic() - snap.at < self.ttl:
            return
        new = self._read(snap.seen, snap.stamp)
        with self._lock:
            if self._snapshot is snap:  # else someone read anew meanwhile: theirs stands
                self._replace(new)

    def of(
        self, entries: list[OwnedEntry], *, complete: bool = False, ttl: bool = True
    ) -> dict[str, states.ResourceState]:
        """The state per key of ``entries``; ``complete``: they are every owned resource (so a
        new read need not list the ledger again); ``ttl`` False: a read past its TTL still
        serves (the caller refreshes it, e.g. the catalog in the background)."""
        wanted = frozenset((e.key, e.remote_id, e.spec_hash) for e in entries)
        with self._lock:
            snap = self._snapshot
            with state_open.ledger(self.settings) as ledger:
                stamp = ledger.get_meta("last_reconcile")
                fresh = snap is not None and snap.stamp == stamp and wanted <= snap.seen
                old = snap is not None and self._clock.monotonic() - snap.at >= self.ttl
                if not fresh or snap is None or (ttl and old):
                    # one read serves every page: it covers every owned resource
                    seen = wanted if complete else _seen(ledger.entries(include_retired=False))
                    self._replace(self._read(seen, stamp))
            snap = self._snapshot
        assert snap is not None
        lifecycle = status_mod.lifecycle(self.settings)
        frozen = states.frozen_files(stamp)
        secrets = status_mod.secret_problems(self.settings, entries, self.env)
        return {
            e.key: states.classify(
                e,
                _object(snap.objects.get((e.kind, e.remote_id))),
                read_error=snap.error,
                lifecycle=lifecycle.get(e.key),
                frozen_by=states.frozen_by(e, frozen),
                secret_problem=secrets.get(e.key),
            )
            for e in entries
        }

    def _replace(self, new: _Snapshot) -> None:
        """Keep ``new``; count a change when it differs from the previous read in substance."""
        old = self._snapshot
        kept = old is not None and new.objects is old.objects  # an unchanged mark: the same read
        if not kept and (old is None or old.error != new.error or old.objects != new.objects):
            self._changes += 1
        self._snapshot = new

    def _read(self, seen: frozenset[tuple[str, str, str]], stamp: str | None) -> _Snapshot:
        """A new read; when every backend has a change mark (``base.Versioned``) and none
        moved since the last good read, that read's objects stand without listing them again
        (listing and decoding 20,000 embedded objects took a second of CPU every TTL, the GIL
        held, so every request and webhook of the server waited behind it)."""
        last = self._snapshot
        try:
            backends = open_backends(self.settings, self.env, clock=self._clock)
            try:
                # taken before the listing: a write during it moves the mark, so the next
                # read lists again
                marks = base.versions(backends.by_kind)
                if last is not None and last.error is None and marks and marks == last.versions:
                    return _Snapshot(
                        last.objects, None, self._clock.monotonic(), seen, stamp, marks
                    )
                self.listings += 1
                # page by page, each object made compact as it comes: the whole decoded listing
                # is never alive at once (its peak stayed in the process as free arenas)
                objects = {
                    (o.kind, o.remote_id): _Held.of(o)
                    for backend in backends.by_kind.values()
                    for o in base.list_all(backend)
                }
            finally:
                backends.close()
        except Exception as exc:  # SDK errors too: the page shows them, it must not fail
            return _Snapshot({}, states.read_failure(exc), self._clock.monotonic(), seen, stamp)
        return _Snapshot(objects, None, self._clock.monotonic(), seen, stamp, marks)


def _object(held: _Held | None) -> RemoteObject | None:
    return None if held is None else held.object()


def _seen(entries: list[OwnedEntry]) -> frozenset[tuple[str, str, str]]:
    return frozenset((e.key, e.remote_id, e.spec_hash) for e in entries)
