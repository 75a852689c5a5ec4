"""The rows the stores keep, as plain values: what the ledger owns and intends, the history of
applied changes, run history and inbox deliveries.

No database code here. The stores (``state/``) read and write these; the planner, the read
model (``read/``, ``explain``) and the runtime take them as values, so pure code that reasons
about a run or a delivery never imports a store.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from planner_operator.core.keys import Kind


@dataclass(frozen=True)
class OwnedEntry:
    """One ledger row: a remote object the operator created (or adopted) for ``key``.

    ``retired`` rows are old objects left behind by a replace (the new object already owns the
    key); the planner deletes them so a crash between "create new" and "delete old" never leaves
    an untracked object.
    """

    key: str
    kind: Kind
    backend: str
    remote_id: str
    spec_hash: str
    spec: Mapping[str, Any] = field(default_factory=dict)
    revision: str = ""
    source: str = ""
    applied_at: datetime | None = None
    protect: bool = False
    retired: bool = False


@dataclass(frozen=True)
class Intent:
    """A create the applier announced in the ledger before making it (write-ahead).

    The ledger row for a create can only be written after the remote write; a crash or a lost
    response in between leaves an object nobody owns. The intent, committed first, says such an
    object (same backend, same key, not owned by any row) is ours: the planner adopts it while
    its key is desired and deletes it once it is not, instead of reporting it as unmanaged.
    ``id`` is the ledger's row id, so clearing one never clears a newer intent for the same key.
    """

    key: str
    kind: Kind
    backend: str
    spec_hash: str
    spec: Mapping[str, Any] = field(default_factory=dict)
    revision: str = ""
    created_at: datetime | None = None
    id: int = 0


# -- ledger history ---------------------------------------------------------------------------

HistoryOp = Literal["baseline", "create", "update", "delete", "adopt", "forget"]


@dataclass(frozen=True)
class HistoryRow:
    """One applied change to a key. ``delete`` ends the key's life (its object was deleted);
    ``forget`` drops a retired object after a replace and changes nothing the key does;
    ``baseline`` is the spec that was already in effect when history began (a migrated ledger).
    """

    id: int
    at: datetime
    key: str
    kind: str
    op: HistoryOp
    backend: str
    remote_id: str
    spec_hash: str
    enabled: bool
    schedule: str | None
    timezone: str | None
    revision: str
    spec: Mapping[str, Any]


# -- run history ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Run:
    """One attempt of one run of a job or trigger. ``id`` is the row (pages and links use it);
    ``run_id`` names the run across its attempts (Inngest retries share it)."""

    id: int
    key: str
    kind: str
    run_id: str
    attempt: int
    origin: str  # inngest | scheduler | manual | webhook
    slot: str | None
    status: str
    reason: str | None
    action: str | None
    rendered: str | None
    result: Any
    error: str | None
    started_at: str
    finished_at: str | None
    event: Any = None  # TriggerEvent as JSON (trigger runs only)
    trigger_result: Any = None  # TriggerResult as JSON (trigger runs only)


# -- inbox ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class NewDelivery:
    """What ingress stores: verified bytes plus the routing hints read from them."""

    id: str
    source: str  # composio | webhook | local
    body: bytes
    headers: Mapping[str, str] = field(default_factory=dict)  # never signature headers
    trigger_key: str | None = None
    remote_id: str | None = None
    event_type: str | None = None
    received_at: float | None = None  # Unix time; None: the inbox clock's, when stored


@dataclass(frozen=True)
class Delivery:
    """A stored delivery and where it stands: what the worker, ``inbox`` commands and
    ``explain --delivery`` read back."""

    id: str
    source: str
    trigger_key: str | None
    remote_id: str | None
    event_type: str | None
    received_at: float
    headers: Mapping[str, str]
    body: bytes
    status: str
    attempts: int
    next_attempt_at: float
    lease_until: float | None
    lease_owner: str | None
    last_error: str | None
    outcome: str | None
    duplicates: int
    last_duplicate_at: float | None
    replays: int
    updated_at: float

    @property
    def run_key(self) -> str:
        """The idempotency key handed to executors: the delivery id, new per operator replay."""
        return self.id if self.replays == 0 else f"{self.id}~replay{self.replays}"
