"""The one shape of every JSON document the CLI prints (besides the plan, see docs/plan-json.md).

Scripts read ``status``, ``runs``, ``explain``, ``validate`` and ``next-runs`` output, so each is
an object with ``format_version`` and ``kind`` first: adding a field keeps the version, removing
or changing one bumps it (docs/cli-json.md). Keys are snake_case words (no spaces), times are
ISO 8601 with an offset, and values that are JSON stay JSON (never a JSON string).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import asdict, is_dataclass
from datetime import date, datetime
from typing import Any

FORMAT_VERSION = 1


def document(kind: str, body: Mapping[str, Any]) -> str:
    data = {"format_version": FORMAT_VERSION, "kind": kind, **body}
    return json.dumps(data, indent=2, sort_keys=True, default=_default, ensure_ascii=False)


def key(text: str) -> str:
    """``"other runs"`` -> ``"other_runs"``: keys a script can use as names."""
    return re.sub(r"[^0-9a-zA-Z]+", "_", text).strip("_").lower()


def _default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat(timespec="milliseconds")
    if isinstance(value, date):
        return value.isoformat()
    if is_dataclass(value) and not isinstance(value, type):
        return asdict(value)
    return str(value)
