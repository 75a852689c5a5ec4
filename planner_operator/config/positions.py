"""Turn a ruamel.yaml round-trip tree into plain data plus a map of where every value came from.

Pydantic reports errors by path (``('planner', 'jobs', 0, 'schedule')``); users need
``agents/x.yaml:12:17``. Converting once to plain ``dict``/``list``/scalars (so the models see
ordinary Python and strict validation behaves) while recording the key and value position of
every path gives the loader that mapping for free.

The conversion is also where hostile input is contained: YAML aliases are expanded here under a
node budget and a depth limit, so an alias bomb or a self-referencing alias becomes a ConfigError
instead of exhausting memory.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ruamel.yaml.comments import CommentedMap, CommentedSeq, TaggedScalar

Path = tuple[str | int, ...]

MAX_NODES = 100_000
MAX_DEPTH = 64


class ConversionError(Exception):
    """Raised inside conversion with the path where it happened; the loader adds the file."""

    def __init__(self, message: str, path: Path) -> None:
        self.path = path
        super().__init__(message)


@dataclass
class Positions:
    """1-based (line, col) of each path's key and value."""

    keys: dict[Path, tuple[int, int]] = field(default_factory=dict)
    values: dict[Path, tuple[int, int]] = field(default_factory=dict)

    def key(self, path: Path) -> tuple[int, int]:
        """Where the key of ``path`` is written (for unknown keys), falling back to the value."""
        return self.keys.get(path) or self.value(path)

    def value(self, path: Path) -> tuple[int, int]:
        """Where the value at ``path`` is, or the nearest enclosing thing that has a position."""
        probe = path
        while probe:
            if probe in self.values:
                return self.values[probe]
            if probe in self.keys:
                return self.keys[probe]
            probe = probe[:-1]
        return self.values.get((), (1, 1))


def dotted(path: Path) -> str:
    """A path as users write it: ``planner.jobs[0].schedule``."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out


class _Budget:
    def __init__(self, limit: int) -> None:
        self.left = limit

    def spend(self, path: Path) -> None:
        self.left -= 1
        if self.left < 0:
            raise ConversionError(
                f"the file expands to more than {MAX_NODES} values (YAML aliases repeating "
                "large blocks?); split it or remove the aliases",
                path,
            )


def to_plain(root: Any) -> tuple[Any, Positions]:
    """Plain data and positions for a ruamel.yaml round-trip document."""
    positions = Positions()
    positions.values[()] = _pos(root) or (1, 1)
    data = _convert(root, (), positions, _Budget(MAX_NODES))
    return data, positions


def _pos(node: Any) -> tuple[int, int] | None:
    lc = getattr(node, "lc", None)
    if lc is None or lc.line is None:
        return None
    return lc.line + 1, lc.col + 1


def _convert(node: Any, path: Path, positions: Positions, budget: _Budget) -> Any:
    budget.spend(path)
    if len(path) > MAX_DEPTH:
        raise ConversionError(f"nesting deeper than {MAX_DEPTH} levels", path)
    if isinstance(node, CommentedMap):
        return _convert_map(node, path, positions, budget)
    if isinstance(node, CommentedSeq):
        items = []
        for index, item in enumerate(node):
            line, col = node.lc.item(index)
            positions.values[(*path, index)] = (line + 1, col + 1)
            items.append(_convert(item, (*path, index), positions, budget))
        return items
    if isinstance(node, Mapping | list):  # plain containers (flow style in some versions)
        raise ConversionError("unsupported YAML structure", path)
    return _scalar(node, path)


def _convert_map(
    node: CommentedMap, path: Path, positions: Positions, budget: _Budget
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in node:
        if isinstance(key, bool) or not isinstance(key, str | int | float):
            raise ConversionError(f"keys must be plain text, not {type(key).__name__}", path)
        text = str(key)
        child = (*path, text)
        key_line, key_col = node.lc.key(key)
        positions.keys[child] = (key_line + 1, key_col + 1)
        value_line, value_col = node.lc.value(key)
        positions.values[child] = (value_line + 1, value_col + 1)
        out[text] = _convert(node[key], child, positions, budget)
    return out


def _scalar(node: Any, path: Path) -> Any:
    if isinstance(node, TaggedScalar):
        raise ConversionError(f"custom YAML tag {node.tag.value!r} is not supported", path)
    if node is None or isinstance(node, bool):
        return node
    if isinstance(node, int):
        return int(node)
    if isinstance(node, float):
        return float(node)
    if isinstance(node, str):
        return str(node)
    if isinstance(node, dt.datetime | dt.date):
        # YAML turns 2026-01-01 into a date; agent files are JSON-shaped, so keep the text.
        return node.isoformat()
    if isinstance(node, bytes):
        raise ConversionError("binary (!!binary) values are not supported", path)
    raise ConversionError(f"unsupported YAML value of type {type(node).__name__}", path)
