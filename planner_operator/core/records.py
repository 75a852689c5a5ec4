"""What the ledger says the operator owns (and is about to create), as the planner sees it.

No database code here: the planner takes these as plain values.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

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
