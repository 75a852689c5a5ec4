"""What the package knows offline about Composio trigger types: toolkit and payload schema.

Validation and the plan check a trigger's templates against its type's payload fields before
anything reaches Composio, so `{usr}` in a Slack template is a file:line error instead of a
dead delivery at runtime. The catalog (``trigger_types.json``) holds the example agents' types,
copied from tests/fakes/composio_trigger_types.json (its ``source_notes`` give where each shape
comes from: mostly real ``GET /api/v3/triggers_types`` responses). With Composio configured the
live type is checked as well (``backends/composio/checks.py``). Reading a package resource is
the only I/O here, once per process.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Any

FILE_NAME = "trigger_types.json"


@dataclass(frozen=True)
class TriggerType:
    slug: str
    toolkit: str
    payload: Mapping[str, Any]  # the payload's JSON Schema

    @property
    def fields(self) -> frozenset[str]:
        """Top-level payload fields: what a template placeholder's first name can be."""
        properties = self.payload.get("properties")
        return frozenset(properties) if isinstance(properties, Mapping) else frozenset()


@functools.cache
def bundled() -> Mapping[str, TriggerType]:
    text = resources.files("planner_operator.config").joinpath(FILE_NAME).read_text()
    types = json.loads(text)["trigger_types"]
    return {
        slug: TriggerType(slug, str(t.get("toolkit") or ""), t["payload"])
        for slug, t in types.items()
    }


def source_note() -> str:
    text = resources.files("planner_operator.config").joinpath(FILE_NAME).read_text()
    return str(json.loads(text)["_source"])
