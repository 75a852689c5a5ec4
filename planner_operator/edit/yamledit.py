"""Change one job or trigger in an agent file's text, leaving the rest of the file as it was.

A save from the dashboard becomes a commit somebody reviews, so the diff must be the edit and
nothing else: the text is loaded in ruamel.yaml's round-trip mode (comments, key order, quoting
and flow style kept) and dumped with the indentation the file already uses. A replaced item is
*merged* into the existing node rather than swapped for a new one: a field whose value did not
change keeps its node (its quoting, its comment, its folded style), a new field goes where the
submitted order puts it, and only the fields that changed are re-emitted.

Pure: text in, text out. Errors are ours (``EditError``, ``NotFoundError``) with a message that
names the item.
"""

from __future__ import annotations

import io
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import YAMLError
from ruamel.yaml.scalarstring import DoubleQuotedScalarString
from ruamel.yaml.util import load_yaml_guess_indent

from planner_operator.errors import EditError, NotFoundError

Kind = Literal["job", "trigger"]
Op = Literal["create", "replace", "delete"]
SECTION: Mapping[Kind, str] = {"job": "jobs", "trigger": "triggers"}
SCHEMA_COMMENT = "# yaml-language-server: $schema=../schemas/agent.schema.json\n"
_KEY_LINE = re.compile(r"^( +)[^\s#-][^:#]*:")
# Characters a plain, single-quoted or block scalar cannot carry as they are (controls, line
# separators, a BOM, tabs and newlines whose folding ruamel.yaml gets wrong): such a string is
# double-quoted, where YAML escapes them.
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\ufeff\ufffe\uffff]")
_TOP_KEY = re.compile(r"^[^\s#-][^:#]*:\s*(#.*)?$")


@dataclass(frozen=True)
class Edit:
    """One change to one item: ``item`` is the whole new job or trigger (None to delete)."""

    kind: Kind
    name: str
    op: Op
    item: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class _Style:
    mapping: int = 2
    sequence: int = 4
    offset: int = 2
    double: bool = True  # new strings that need quotes get the quotes the file mostly uses


def apply(text: str, edit: Edit) -> str:
    """``text`` with ``edit`` made; raises when the item is missing or already there."""
    root, style = _load(text)
    items = _section(root, edit.kind, create=edit.op == "create")
    index = _find(items, edit.name)
    label = f"{edit.kind} `{edit.name}`"
    if edit.op == "create":
        if index is not None:
            raise EditError(f"{label} already exists in this file: edit it (PUT) instead")
        assert edit.item is not None
        items.append(_node(_named(edit.item, edit.name), style))
    elif index is None:
        known = ", ".join(_names(items)) or "none"
        raise NotFoundError(f"no {label} in this file (its {SECTION[edit.kind]}: {known})")
    elif edit.op == "delete":
        del items[index]
    else:
        assert edit.item is not None
        new = _named(edit.item, edit.name)
        renamed = new["name"]
        if renamed != edit.name and _find(items, renamed) is not None:
            raise EditError(f"cannot rename {label} to `{renamed}`: that name is taken")
        current = items[index]
        if isinstance(current, CommentedMap):
            _merge(current, new, style)
        else:
            items[index] = _node(new, style)
    return _dump(root, style)


def item(text: str, kind: Kind, name: str) -> dict[str, Any] | None:
    """The plain data of one job or trigger (for a merge-patch), None when absent."""
    root, _ = _load(text)
    planner = root.get("planner")
    if not isinstance(planner, Mapping):
        return None
    items = planner.get(SECTION[kind])
    if not isinstance(items, list):
        return None
    index = _find(items, name)
    return None if index is None else plain(items[index])


def document(text: str) -> dict[str, Any]:
    """The whole file as plain data: what an edit dialog pre-fills its form from."""
    root, _ = _load(text)
    data = plain(root)
    return data if isinstance(data, dict) else {}


def pause(text: str, kind: Kind, name: str, *, enabled: bool = False) -> str:
    """Pause (``enabled: false``) or resume one item: kept, not fired, not deleted."""
    current = item(text, kind, name)
    if current is None:
        raise NotFoundError(f"no {kind} `{name}` in this file")
    return apply(text, Edit(kind, name, "replace", {**current, "enabled": enabled}))


def new_agent(agent: Mapping[str, Any]) -> str:
    """The text of a new agent file: the schema comment, then ``agent`` in the usual layout."""
    data = dict(agent)
    data.setdefault("planner", {"jobs": [], "triggers": []})
    out = io.StringIO()
    out.write(SCHEMA_COMMENT)
    _yaml(_Style()).dump(_node(data, _Style()), out)
    return out.getvalue()


def merge_patch(target: Mapping[str, Any], patch: Mapping[str, Any]) -> dict[str, Any]:
    """RFC 7396 JSON merge patch: a key set to null is removed, mappings merge, the rest
    replaces (how the Triggers module's PATCH is applied to a trigger)."""
    out = dict(target)
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = merge_patch(out[key], value)
        else:
            out[key] = value
    return out


def same(a: Any, b: Any) -> bool:
    """Equal as YAML values: ``1``, ``1.0`` and ``true`` are three different values."""
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b


def plain(node: Any) -> Any:
    """ruamel's round-trip containers as plain dicts, lists and scalars."""
    if isinstance(node, Mapping):
        return {str(k): plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [plain(v) for v in node]
    if isinstance(node, str):
        return str(node)  # ScalarString subclasses compare equal, but dump by their style
    if isinstance(node, bool):
        return bool(node)
    if isinstance(node, int):
        return int(node)
    if isinstance(node, float):
        return float(node)
    return node


# -- load and dump ------------------------------------------------------------------------------


def _yaml(style: _Style) -> YAML:
    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    yaml.width = 4096  # never re-wrap a long line the user wrote on one line
    yaml.indent(mapping=style.mapping, sequence=style.sequence, offset=style.offset)
    return yaml


def _load(text: str) -> tuple[CommentedMap, _Style]:
    style = _guess(text)
    try:
        root = _yaml(style).load(text) if text.strip() else CommentedMap()
    except YAMLError as exc:
        raise EditError(f"the file is not valid YAML, so it cannot be edited here: {exc}") from None
    if root is None:
        root = CommentedMap()
    if not isinstance(root, CommentedMap):
        raise EditError("the file is not an agent file (its top level is not a mapping)")
    return root, style


def _dump(root: CommentedMap, style: _Style) -> str:
    out = io.StringIO()
    _yaml(style).dump(root, out)
    return out.getvalue()


def _guess(text: str) -> _Style:
    """The file's own indentation: mapping indent from the first nested key, sequence indent
    and dash offset as ruamel guesses them."""
    try:
        _, sequence, offset = load_yaml_guess_indent(text)
    except (YAMLError, ValueError, TypeError, AttributeError):
        return _Style()
    mapping = 2
    previous = ""
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        found = _KEY_LINE.match(line)
        if found and _TOP_KEY.match(previous):  # the first key nested under a top-level key
            mapping = len(found.group(1))
            break
        previous = line
    if offset is None:  # no block sequence yet: the layout of the example files
        return _Style(mapping=mapping, sequence=mapping + 2, offset=mapping)
    sequence = sequence if sequence and sequence > offset else offset + 2
    return _Style(mapping=mapping, sequence=sequence, offset=offset, double=_doubles(text))


def _doubles(text: str) -> bool:
    """Whether the file quotes with double quotes more often than single ones."""
    return text.count('"') >= text.count("'")


# -- finding and changing items -----------------------------------------------------------------


def _section(root: CommentedMap, kind: Kind, *, create: bool) -> CommentedSeq:
    planner = root.get("planner")
    if planner is None:
        if not create:
            raise NotFoundError(f"this file has no `planner.{SECTION[kind]}`")
        planner = root["planner"] = CommentedMap()
    if not isinstance(planner, CommentedMap):
        raise EditError("`planner` in this file is not a mapping: fix the file first")
    items = planner.get(SECTION[kind])
    if items is None:
        if not create:
            raise NotFoundError(f"this file has no `planner.{SECTION[kind]}`")
        items = CommentedSeq()
        _insert_section(planner, kind, items)
    if not isinstance(items, CommentedSeq):
        raise EditError(f"`planner.{SECTION[kind]}` in this file is not a list: fix the file first")
    return items


def _insert_section(planner: CommentedMap, kind: Kind, items: CommentedSeq) -> None:
    """``jobs`` before ``triggers``, as every example file has them."""
    if kind == "job" and "triggers" in planner:
        planner.insert(list(planner).index("triggers"), "jobs", items)
    else:
        planner[SECTION[kind]] = items


def _find(items: Sequence[Any], name: str) -> int | None:
    for index, node in enumerate(items):
        if isinstance(node, Mapping) and node.get("name") == name:
            return index
    return None


def _names(items: Sequence[Any]) -> list[str]:
    return [str(n["name"]) for n in items if isinstance(n, Mapping) and "name" in n]


def _named(data: Mapping[str, Any], name: str) -> dict[str, Any]:
    """``data`` with ``name`` first (the path's name unless the body renames it)."""
    return {"name": data.get("name", name), **{k: v for k, v in data.items() if k != "name"}}


def _merge(target: CommentedMap, new: Mapping[str, Any], style: _Style) -> None:
    """Make ``target`` equal ``new``, touching only what differs (see the module docstring)."""
    for key in [k for k in target if k not in new]:
        del target[key]
    order = list(new)
    for position, key in enumerate(order):
        value = new[key]
        if key in target:
            current = target[key]
            if same(plain(current), value):
                continue
            if isinstance(current, CommentedMap) and isinstance(value, Mapping):
                _merge(current, value, style)
            else:
                target[key] = _node(value, style)
            continue
        before = [k for k in order[:position] if k in target]
        at = list(target).index(before[-1]) + 1 if before else 0
        target.insert(at, key, _node(value, style))


def _node(value: Any, style: _Style) -> Any:
    """A plain value as round-trip containers (so it dumps in the file's block style)."""
    if isinstance(value, Mapping):
        node = CommentedMap()
        for key, inner in value.items():
            node[key] = _node(inner, style)
        return node
    if isinstance(value, list | tuple):
        seq = CommentedSeq()
        seq.extend(_node(v, style) for v in value)
        return seq
    if isinstance(value, str) and (_UNSAFE.search(value) or (style.double and _quoted(value))):
        return DoubleQuotedScalarString(value)
    return value


def _quoted(value: str) -> bool:
    """Whether ruamel.yaml would quote ``value`` as a plain string (``{date}``, ``@daily``)."""
    out = io.StringIO()
    YAML(typ="rt").dump([value], out)
    return out.getvalue()[2:3] in ("'", '"')
