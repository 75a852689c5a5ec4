"""Read YAML into plain data plus positions, through ruamel.yaml's composer (C when available).

Why not ruamel's round-trip loader: it keeps positions, but in pure Python it costs ~25 ms per
agent file, which made a 200-file no-op reconcile take seconds. Composing the node graph with
ruamel's C parser (libyaml, via ruamel.yaml.clib) keeps every node's start mark at a fraction of
the cost, and walking the nodes ourselves is where hostile input is contained anyway:

* duplicate keys are reported at the repeated key, naming where the first one was;
* aliases are expanded under a node budget and a depth limit (alias bombs, self-references);
* custom tags, binary values and sets are refused instead of being silently mangled;
* scalars are converted by ruamel's own safe constructor (YAML 1.2 core schema).
"""

from __future__ import annotations

import datetime as dt
import math
import warnings
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from planner_operator.config.positions import MAX_DEPTH, MAX_NODES, ConversionError, Path, Positions

_TAG = "tag:yaml.org,2002:"
_STR = f"{_TAG}str"
_SCALARS = {f"{_TAG}{t}" for t in ("str", "int", "float", "bool", "null", "timestamp")}


class DuplicateKey(ConversionError):
    """A key repeated in one mapping, reported at the repeat, naming the first occurrence."""

    def __init__(self, key: str, path: Path, line: int, col: int, first_line: int) -> None:
        super().__init__(
            f"duplicate key `{key}` (first defined on line {first_line})",
            path,
            hint="each key may appear once in a mapping; remove or merge the repeats",
            position=(line, col),
        )


def compose(text: str) -> Node | None:
    """The document's node graph (None for an empty document); YAML errors propagate.

    A new YAML object per call: they hold parser state and are not safe to share across threads.
    """
    try:
        yaml = YAML(typ="safe", pure=False)  # C parser when ruamel.yaml.clib is installed
    except (ImportError, AttributeError):  # pragma: no cover - platform without the C parser
        yaml = YAML(typ="safe", pure=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        node: Node | None = yaml.compose(text)
    return node


def to_plain(root: Node) -> tuple[Any, Positions]:
    positions = Positions()
    positions.values[()] = _mark(root)
    walker = _Walker(positions, YAML(typ="safe", pure=True).constructor)
    return walker.convert(root, ()), positions


def _mark(node: Node) -> tuple[int, int]:
    mark = node.start_mark
    return (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)


class _Walker:
    def __init__(self, positions: Positions, constructor: Any) -> None:
        self.positions = positions
        self.constructor = constructor
        self.budget = MAX_NODES

    def convert(self, node: Node, path: Path) -> Any:
        self.budget -= 1
        if self.budget < 0:
            # Report at the top-level key being expanded: the full path of the ten-thousandth
            # repeated value (``e[7][8][8][9]``) says nothing useful to the person fixing it.
            raise ConversionError(
                f"the file expands to more than {MAX_NODES} values",
                path[:1],
                hint="YAML aliases such as `*name` repeating large blocks? remove the aliases "
                "or split the file",
                position=self.positions.value(path[:1]),
            )
        if len(path) > MAX_DEPTH:
            raise ConversionError(
                f"nested more than {MAX_DEPTH} levels deep",
                path[:1],
                hint="flatten the structure",
                position=self.positions.value(path),
            )
        if isinstance(node, MappingNode):
            if node.tag != f"{_TAG}map":
                raise _tag_error(node, path)
            return self._mapping(node, path)
        if isinstance(node, SequenceNode):
            if node.tag != f"{_TAG}seq":
                raise _tag_error(node, path)
            out = []
            for index, item in enumerate(node.value):
                self.positions.values[(*path, index)] = _mark(item)
                out.append(self.convert(item, (*path, index)))
            return out
        if isinstance(node, ScalarNode):
            value = _scalar(node, path, self.constructor)
            if isinstance(value, float) and not math.isfinite(value):
                # JSON has no NaN or infinity: the stored spec would never equal the desired
                # one again (NaN != NaN: an update on every run), and strict JSON encoders
                # refuse it on the way to Inngest or Composio.
                raise ConversionError(
                    f"`{node.value}` is not a finite number",
                    path,
                    hint="use a finite number, or quote the value to keep it as text",
                    position=_mark(node),
                )
            return value
        raise ConversionError("unsupported YAML structure", path)  # pragma: no cover

    def _mapping(self, node: MappingNode, path: Path) -> dict[str, Any]:
        out: dict[str, Any] = {}
        first_line: dict[str, int] = {}
        merged: list[MappingNode] = []
        for key_node, value_node in node.value:
            if key_node.tag == f"{_TAG}merge":
                merged.extend(_merge_sources(value_node, path, _mark(key_node)))
                continue
            key = self._key(key_node, path)
            child = (*path, key)
            line, col = _mark(key_node)
            if key in first_line:
                raise DuplicateKey(key, child, line, col, first_line[key])
            first_line[key] = line
            self.positions.keys[child] = (line, col)
            self.positions.values[child] = _mark(value_node)
            out[key] = self.convert(value_node, child)
        for source in merged:  # `<<: *defaults`: explicit keys win, earlier sources win
            for key_node, value_node in source.value:
                key = self._key(key_node, path)
                if key not in out:
                    child = (*path, key)
                    self.positions.keys[child] = _mark(key_node)
                    self.positions.values[child] = _mark(value_node)
                    out[key] = self.convert(value_node, child)
        return out

    def _key(self, node: Node, path: Path) -> str:
        if isinstance(node, ScalarNode) and node.tag == _STR:
            return str(node.value)
        if not isinstance(node, ScalarNode) or node.tag not in _SCALARS - {f"{_TAG}null"}:
            kind = (
                "a mapping"
                if isinstance(node, MappingNode)
                else "a list"
                if isinstance(node, SequenceNode)
                else "null"
            )
            raise ConversionError(
                f"keys must be plain text, not {kind}",
                path,
                hint="write the key as a simple word, e.g. `name:`",
                position=_mark(node),
            )
        value = _scalar(node, path, self.constructor)
        if isinstance(value, bool):
            raise ConversionError(
                f"key `{node.value}` must be text, not true/false",
                path,
                hint=f"quote it: '{node.value}'",
                position=_mark(node),
            )
        return str(value)


def _merge_sources(node: Node, path: Path, at: tuple[int, int]) -> list[MappingNode]:
    if isinstance(node, MappingNode):
        return [node]
    if isinstance(node, SequenceNode) and all(isinstance(n, MappingNode) for n in node.value):
        return list(node.value)
    raise ConversionError("`<<` merges a mapping or a list of mappings", path, position=at)


_SPECIAL = {
    f"{_TAG}binary": ("binary (!!binary) values are not supported", "use plain text"),
    f"{_TAG}set": ("sets (!!set) are not supported", "use a list"),
    f"{_TAG}omap": ("ordered maps (!!omap) are not supported", "use a plain mapping"),
    f"{_TAG}pairs": ("pairs (!!pairs) are not supported", "use a plain mapping"),
}


def _tag_error(node: Node, path: Path) -> ConversionError:
    tag = str(node.tag)
    message, hint = _SPECIAL.get(tag, ("", "remove the tag; agent files are plain YAML"))
    if not message:
        shown = "!!" + tag.removeprefix(_TAG) if tag.startswith(_TAG) else tag
        message = f"custom YAML tag `{shown}` is not supported"
    return ConversionError(message, path, hint=hint, position=_mark(node))


def _scalar(node: ScalarNode, path: Path, constructor: Any) -> Any:
    tag = node.tag
    if tag == _STR:  # most values: no conversion needed
        return node.value
    if tag not in _SCALARS:
        raise _tag_error(node, path)
    try:
        value = constructor.construct_object(node, deep=True)
    except Exception as exc:  # ruamel raises assorted types for odd scalars (2001-02-30)
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConversionError(
            f"invalid value `{node.value}`: {first}",
            path,
            hint="check dates (YYYY-MM-DD) and tagged values; quote a value to keep it as text",
            position=_mark(node),
        ) from None
    if isinstance(value, dt.datetime | dt.date):
        # YAML turns 2026-01-01 into a date; agent files are JSON-shaped, so keep the text.
        return value.isoformat()
    return value
