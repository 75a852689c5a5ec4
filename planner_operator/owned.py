"""What the ledger says the operator owns, as the planner sees it (no database code here)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from planner_operator.backends.base import Kind


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
