"""Canonical JSON and stable hashes, so the same spec always hashes the same across runs."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any


def canonical_json(value: Any) -> str:
    """Sorted keys, no whitespace, UTF-8 kept: equal values give equal strings."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def spec_hash(spec: Mapping[str, Any]) -> str:
    """Short, stable content hash of a spec (sha256 of its canonical JSON, 16 hex chars)."""
    return text_hash(canonical_json(spec))


def text_hash(text: str) -> str:
    """:func:`spec_hash` of a spec already written as canonical JSON."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def subset(spec: Mapping[str, Any], fields: frozenset[str]) -> dict[str, Any]:
    """The named top-level fields of a spec (missing ones left out)."""
    return {k: spec[k] for k in sorted(fields) if k in spec}


class SpecText:
    """A spec kept as its canonical JSON text, decoded only when read.

    Thousands of applied specs stay resident in ``serve`` (scheduler jobs, webhook routes);
    one string each costs a fraction of the decoded dicts, and equal texts mean equal specs.
    Subclasses name ``text`` in their own ``__slots__``.
    """

    __slots__ = ()
    text: str

    @property
    def spec(self) -> dict[str, Any]:
        """A fresh decoded copy of the spec (a caller may keep or change it)."""
        value: dict[str, Any] = json.loads(self.text)
        return value
