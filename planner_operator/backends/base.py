"""The swap point between the planner and the systems that hold actual state.

The planner never imports a backend: it receives ``RemoteObject`` values read through these
Protocols. Every implementation (embedded local, Inngest, Composio, and the test fakes) passes one
contract suite (tests/backends/test_contract.py), so they are interchangeable.

Two rules every implementation keeps, because crash-safety depends on them:

* ``create`` is idempotent for the same ``key`` and identity: calling it again after a crash
  returns the object the first call made (and brings its spec up to date) instead of a duplicate.
  For triggers the identity also covers the fields that cannot change in place
  (``REPLACE_FIELDS``), so a changed config makes a *new* object: a replace.
* Errors are our types: ``RetryableError`` (incl. ``UnknownOutcome`` for a timed-out write),
  ``NotFound`` for an object that is gone, other ``PermanentError`` subclasses otherwise.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

from planner_operator.core.keys import Kind

# Spec fields a backend cannot change in place (Composio: a trigger's config is fixed at upsert).
# A change to any of them is planned as a replace: create the new object, then delete the old.
REPLACE_FIELDS: dict[Kind, frozenset[str]] = {
    "job": frozenset(),
    "trigger": frozenset({"toolkit", "event", "connected_account", "user_id", "config", "webhook"}),
}
RemoteState = Literal["active", "paused", "disabled", "error"]


@dataclass(frozen=True)
class RemoteObject:
    """One object as a backend reports it.

    ``spec`` holds only the fields this backend can observe (the local backend sees all of them;
    Composio sees slug, account and config), so the planner compares just those and trusts the
    ledger's applied spec for the rest. ``key`` is set when the backend can tell which resource the
    object is for (local and Inngest can, Composio cannot).
    """

    remote_id: str
    kind: Kind
    spec: Mapping[str, Any]
    key: str | None = None
    state: RemoteState = "active"
    reason: str | None = None


@dataclass(frozen=True)
class Page:
    """One page of a listing; ``next_cursor`` is None on the last page."""

    items: tuple[RemoteObject, ...]
    next_cursor: str | None = None


@dataclass(frozen=True)
class BackendInfo:
    """What a backend is, for plans and status output."""

    name: str
    kind: Kind
    detail: str = ""
    extra: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Subscription:
    """Where a backend's vendor delivers events (Composio: the project's webhook subscription)."""

    id: str
    url: str
    version: str
    events: tuple[str, ...]


# How the secret that signs deliveries stands: in the environment, in the operator's state, only
# in the vendor's answer (to be stored), or nowhere the receiver can get it.
SecretState = Literal["env", "stored", "fetch", "missing"]


@dataclass(frozen=True)
class SubscriptionState:
    """The delivery subscription as a plan sees it, read before planning like remote objects.

    ``url``/``version``/``events`` are what it should be (``url`` None when no public URL is
    configured); ``remote`` is what it is (None: none exists); ``owned`` says the operator set it
    (it points here, or it is the one this operator last wrote), so changing it takes nothing
    from anyone; ``problems`` are what still stops deliveries, for the plan to show.
    """

    backend: str
    url: str | None
    version: str
    events: tuple[str, ...]
    remote: Subscription | None
    owned: bool = False
    secret: SecretState = "missing"
    problems: tuple[str, ...] = ()

    @property
    def matches(self) -> bool:
        """The remote subscription already is what it should be."""
        r = self.remote
        return r is not None and (r.url, r.version, set(r.events)) == (
            self.url,
            self.version,
            set(self.events),
        )


class RemoteBackend(Protocol):
    """Operations shared by the schedule and trigger backends."""

    @property
    def info(self) -> BackendInfo: ...

    def list(self, *, cursor: str | None = None, limit: int = 100) -> Page:
        """One page of every object of this kind the backend holds, owned or not."""
        ...

    def create(self, key: str, spec: Mapping[str, Any]) -> RemoteObject:
        """Make the object for ``key`` (idempotent, see module docstring)."""
        ...

    def update(self, remote_id: str, key: str, spec: Mapping[str, Any]) -> RemoteObject:
        """Change an object in place (only fields outside ``REPLACE_FIELDS`` change here)."""
        ...

    def delete(self, remote_id: str) -> None:
        """Remove an object; ``NotFound`` when it is already gone."""
        ...


class ScheduleBackend(RemoteBackend, Protocol):
    """Holds scheduled jobs (Inngest cron functions, or the embedded scheduler's table)."""


class TriggerBackend(RemoteBackend, Protocol):
    """Holds event-trigger subscriptions (Composio trigger instances, or the local event source)."""


@runtime_checkable
class Versioned(Protocol):
    """A backend that can say cheaply whether anything changed: ``version`` moves with every
    write (the embedded backend's change counter). A reader that already holds a full listing
    taken at the same version keeps it instead of listing every object again; a backend
    without it (a remote API) is listed every time."""

    def version(self) -> object: ...


def versions(backends: Mapping[Kind, RemoteBackend]) -> tuple[object, ...] | None:
    """Every backend's version, or None when one of them has none (then only a full listing
    tells)."""
    marks: list[object] = []
    for kind in sorted(backends):
        backend = backends[kind]
        if not isinstance(backend, Versioned):
            return None
        marks.append((kind, backend.version()))
    return tuple(marks)


def list_all(backend: RemoteBackend, *, page_size: int = 100) -> Iterator[RemoteObject]:
    """Every object, following cursors; stops on a repeated cursor so a buggy server can't loop."""
    cursor: str | None = None
    seen: set[str] = set()
    while True:
        page = backend.list(cursor=cursor, limit=page_size)
        yield from page.items
        cursor = page.next_cursor
        if not cursor or cursor in seen:
            return
        seen.add(cursor)
