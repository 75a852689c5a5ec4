"""A checked file as JSON text and back: what the parse cache keeps per file.

Parsing YAML is most of a load (ruamel.yaml composes ~4 ms of nodes per agent file), and on a
no-op reconcile every file is the same as last time. So the reconcile layer keeps, per file
content, what ``loader`` and ``semantic.check_one`` made of it: the plain document (kept only
when it validated), the positions of every value, the errors with their ``file:line:col`` and,
for a clean file, its desired resources (``desired.of_file``: specs and their hashes).
A record rebuilds the model by running the same validation on the same document
(``loader.revalidate``), so a cached load cannot differ from a cold one by construction; the
property test in ``tests/reconcile/test_parse_cache.py`` checks it for any sequence of edits.

The document is JSON-shaped by the loader's own rules (``config.nodes``: text keys, finite
numbers, dates kept as text), so JSON round-trips it exactly, ints and floats apart. A record is
bound to one file name (errors and the agent id fall back on it) and to the code that made it:
``FORMAT`` is this layout; the caller adds the code's version to the key.
"""

from __future__ import annotations

import json
from typing import Any

from planner_operator.config import catalog, desired, loader, positions
from planner_operator.errors import ConfigError

FORMAT = 2  # 2: warnings


class BadRecord(ValueError):
    """A record that cannot be read back (another layout, a torn write): load the file cold."""


def dumps(loaded: loader.LoadedFile) -> str:
    """The record of a checked file (after ``semantic.check_one``, before cross-file checks)."""
    if loaded.agent is not None and loaded.document is None:
        raise ValueError(f"{loaded.file}: a validated file without its document cannot be kept")
    document = loaded.document if loaded.agent is not None else None
    record: dict[str, Any] = {
        "format": FORMAT,
        "file": loaded.file,
        "document": document,
        "errors": [_error(e) for e in loaded.errors],
        "warnings": [_error(e) for e in loaded.warnings],
    }
    if loaded.ok:
        record["resources"] = [_resource(r) for r in desired.of_file(loaded)]
    at = _compact(document, loaded.positions) if document is not None else None
    if at is not None:
        record["at"] = at
    else:
        record["keys"] = [[list(p), *at] for p, at in loaded.positions.keys.items()]
        record["values"] = [[list(p), *at] for p, at in loaded.positions.values.items()]
    return json.dumps(record, ensure_ascii=False, separators=(",", ":"))


def loads(text: str, file: str) -> loader.LoadedFile:
    """The checked file a record stands for; ``BadRecord`` when it is not one for ``file``."""
    try:
        record = json.loads(text)
        if record.get("format") != FORMAT or record.get("file") != file:
            raise BadRecord(f"{file}: the record is of another format or file")
        document = record["document"]
        if "at" in record:
            compact = record["at"]
            if not isinstance(compact, list) or len(compact) % 2 or not compact:
                raise BadRecord(f"{file}: the positions do not match the document")
            where = positions.Positions(deferred=lambda: _expand(document, compact))
        else:
            where = positions.Positions(
                keys={tuple(p): (int(line), int(col)) for p, line, col in record["keys"]},
                values={tuple(p): (int(line), int(col)) for p, line, col in record["values"]},
            )
        errors = tuple(_unerror(e, file) for e in record["errors"])
        warnings = tuple(_unerror(e, file) for e in record["warnings"])
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise BadRecord(f"{file}: unreadable parse record ({exc})") from exc
    if document is None:
        return loader.LoadedFile(file, None, where, errors, warnings)
    try:
        revalidated = loader.revalidate(file, document, where)
        resources = (
            tuple(_unresource(r, file) for r in record["resources"])
            if "resources" in record
            else None
        )
    except (ValueError, KeyError, TypeError) as exc:  # incl. pydantic's ValidationError
        raise BadRecord(f"{file}: the cached document no longer loads") from exc
    return loader.LoadedFile(
        file, revalidated.agent, where, errors, warnings, document=document, resources=resources
    )


def _resource(resource: desired.DesiredResource) -> list[Any]:
    r = resource
    return [r.key, r.kind, r.agent, r.name, r.line, r.spec, r.spec_hash]


def _unresource(row: list[Any], file: str) -> desired.DesiredResource:
    key, kind, agent, name, line, spec, spec_hash = row
    if kind not in ("job", "trigger") or not isinstance(spec, dict):
        raise ValueError(f"not a resource: {key!r}")
    return desired.DesiredResource(key, kind, agent, name, file, int(line), spec, str(spec_hash))


def _compact(document: Any, where: positions.Positions) -> list[int] | None:
    """The positions as a flat list of line, col in document order (the root's value, then
    depth first per mapping entry its key and value, per list item its value): a fifth of the
    size of path lists, so a cached load spends less time in JSON. None when the positions are
    not exactly the document's paths (then they are kept path by path)."""
    out: list[int] = [*where.values[()]] if () in where.values else []
    if not out:
        return None
    count = 1

    def visit(node: Any, path: positions.Path) -> bool:
        nonlocal count
        items = node.items() if isinstance(node, dict) else enumerate(node)
        for name, value in items:
            child = (*path, name)
            if isinstance(node, dict):
                key = where.keys.get(child)
                if key is None:
                    return False
                out.extend(key)
                count += 1
            at = where.values.get(child)
            if at is None:
                return False
            out.extend(at)
            count += 1
            if isinstance(value, dict | list) and not visit(value, child):
                return False
        return True

    complete = visit(document, ()) and count == len(where.keys) + len(where.values)
    return out if complete else None


def _expand(document: Any, at: list[int]) -> positions.Positions:
    """``_compact`` undone: the same walk, taking two numbers per key and per value."""
    keys: dict[positions.Path, tuple[int, int]] = {}
    values: dict[positions.Path, tuple[int, int]] = {(): (at[0], at[1])}
    index = 2

    def visit(node: Any, path: positions.Path) -> None:
        nonlocal index
        if isinstance(node, dict):
            for name, value in node.items():
                child = (*path, name)
                keys[child] = (at[index], at[index + 1])
                values[child] = (at[index + 2], at[index + 3])
                index += 4
                if isinstance(value, dict | list):
                    visit(value, child)
        else:
            for number, value in enumerate(node):
                child = (*path, number)
                values[child] = (at[index], at[index + 1])
                index += 2
                if isinstance(value, dict | list):
                    visit(value, child)

    visit(document, ())  # a record is written whole from one load: the counts agree
    if index != len(at):
        raise ValueError("parse cache: positions do not match the document")
    return positions.Positions(keys, values)


def _unerror(e: dict[str, Any], file: str) -> ConfigError:
    kind = catalog.CatalogFinding if e.get("catalog") else ConfigError
    return kind(
        str(e["message"]),
        file=file,
        line=int(e["line"]),
        col=int(e["col"]),
        path=str(e["path"]),
        hint=None if e["hint"] is None else str(e["hint"]),
    )


def _error(error: ConfigError) -> dict[str, Any]:
    return {
        "message": error.message,
        "line": error.position.line,
        "col": error.position.col,
        "path": error.path,
        "hint": error.hint,
        "catalog": isinstance(error, catalog.CatalogFinding),  # a live check replaces these
    }
