"""What the package knows offline about Composio trigger types: slugs, toolkits, schemas.

Validation and the plan check a trigger against its type before anything reaches Composio, so
`SLACK_NEW_MESSAGE` (no such type) or `{usr}` in a Slack template is a file:line error instead of
a trigger that never fires or a dead delivery. ``trigger_types.json`` holds 94 real types of 26
toolkits (Gmail, Slack, GitHub, HubSpot, Google Calendar, Notion, Linear, Jira, Outlook, ...)
with their config and payload JSON Schemas verbatim, from a snapshot of Composio's own API
answers (its ``_source`` says which; ``scripts/trigger_catalog.py`` regenerates it).

A snapshot ages: Composio adds types and renames some. So an unknown slug is an error only for
a toolkit the catalog covers (the did-you-mean is then worth stopping for), and only a warning
for one it does not; both are :class:`CatalogFinding`, which the reconcile drops when a live
Composio backend checks the same triggers against the real list (``backends/composio/checks``).
Reading a package resource is the only I/O here, once per process.
"""

from __future__ import annotations

import difflib
import functools
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

from planner_operator.errors import ConfigError

FILE_NAME = "trigger_types.json"


class CatalogFinding(ConfigError):
    """A finding against the bundled catalog only; a live check of the same trigger replaces it."""


@dataclass(frozen=True)
class TriggerType:
    slug: str
    toolkit: str
    payload: Mapping[str, Any]  # the payload's JSON Schema
    config: Mapping[str, Any] = field(default_factory=dict)  # the trigger config's JSON Schema
    name: str = ""
    kind: str = ""  # "poll" or "webhook"

    @property
    def fields(self) -> frozenset[str]:
        """Top-level payload fields: what a template placeholder's first name can be."""
        properties = self.payload.get("properties")
        return frozenset(properties) if isinstance(properties, Mapping) else frozenset()


@functools.cache
def _document() -> Mapping[str, Any]:
    text = resources.files("planner_operator.config").joinpath(FILE_NAME).read_text()
    document: Mapping[str, Any] = json.loads(text)
    return document


@functools.cache
def bundled() -> Mapping[str, TriggerType]:
    return {
        slug: TriggerType(
            slug,
            str(t.get("toolkit") or ""),
            t["payload"],
            t.get("config") or {},
            str(t.get("name") or ""),
            str(t.get("type") or ""),
        )
        for slug, t in _document()["trigger_types"].items()
    }


def toolkits() -> frozenset[str]:
    """The toolkits whose trigger types the catalog lists."""
    return frozenset(t.toolkit for t in bundled().values())


def of_toolkit(toolkit: str) -> list[str]:
    """The catalog's slugs of ``toolkit`` (lowercase), sorted."""
    return sorted(t.slug for t in bundled().values() if t.toolkit == toolkit.lower())


def toolkit_of(slug: str, named: str | None = None) -> str:
    """The toolkit a trigger names, else the catalog's for its slug, else the slug's prefix."""
    if named:
        return named.lower()
    known = bundled().get(slug)
    if known is not None:
        return known.toolkit
    longest = max((t for t in toolkits() if slug.lower().startswith(t + "_")), key=len, default="")
    return longest or slug.split("_", 1)[0].lower()


def close_matches(slug: str, known: Sequence[str], n: int = 3) -> list[str]:
    """Did-you-mean candidates for ``slug`` among ``known``, best first: those about as close
    as the closest (within 0.05 of its ratio), so one clear answer is not drowned by siblings
    (`SLACK_NEW_MESSAGE` is 0.79 from `SLACK_RECEIVE_MESSAGE`, 0.71 from `..._BOT_MESSAGE`)."""
    upper = slug.upper()
    close = difflib.get_close_matches(upper, list(known), n=n, cutoff=0.6)
    if not close:
        return []
    best = difflib.SequenceMatcher(None, upper, close[0]).ratio()
    return [c for c in close if difflib.SequenceMatcher(None, upper, c).ratio() >= best - 0.05]


def source_note() -> str:
    return str(_document()["_source"])
