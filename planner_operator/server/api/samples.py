"""Sample event payloads for trigger tests, and why a payload fails a trigger's filter.

``POST /api/triggers/{agent}/{trigger}/test`` without a body needs an event that looks like
the real thing and actually reaches the action: every field the trigger type's payload schema
declares, every ``{placeholder}`` the template uses, and every filter condition met where that
is possible. Values are obviously samples (``"sample subject"``), so a chat thread or a
workflow result started by a test is never mistaken for a real event.

The schema comes from Composio when it is the trigger backend, else from a small bundled
catalog (``config/trigger_types.json``, the example agents' trigger types). Generic webhook
triggers have no schema: their sample is built from the placeholders and the filter alone.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from planner_operator.config import catalog as trigger_catalog
from planner_operator.core import specs, templates
from planner_operator.errors import TemplateError
from planner_operator.runtime import events

MAX_DEPTH = 3  # nested object schemas are sampled this deep; deeper ones are {}


def catalog() -> dict[str, Mapping[str, Any]]:
    """Payload schema per Composio trigger slug, from the bundled catalog (config/catalog.py)."""
    return {slug: t.payload for slug, t in trigger_catalog.bundled().items()}


def build(spec: Mapping[str, Any], schema: Mapping[str, Any] | None) -> dict[str, Any]:
    """A payload for ``spec`` (an applied trigger spec) from its type's payload ``schema``."""
    payload = from_schema(schema or {})
    for name in missing_placeholders(spec, payload):
        _put(payload, name, f"sample {name.rsplit('.', 1)[-1]}")
    satisfy(specs.TriggerSpec.from_dict(spec).filter, payload)
    return payload


def from_schema(schema: Mapping[str, Any], depth: int = 0) -> dict[str, Any]:
    properties = schema.get("properties")
    if not isinstance(properties, Mapping):
        return {}
    return {
        str(name): _value(str(name), sub if isinstance(sub, Mapping) else {}, depth)
        for name, sub in properties.items()
    }


def _value(name: str, schema: Mapping[str, Any], depth: int) -> Any:
    for branch_key in ("anyOf", "oneOf"):
        branches = [b for b in schema.get(branch_key) or [] if isinstance(b, Mapping)]
        typed = [b for b in branches if b.get("type") != "null"]
        if typed:
            return _value(name, {**schema, **typed[0], branch_key: None}, depth)
    if isinstance(schema.get("enum"), list) and schema["enum"]:
        return schema["enum"][0]
    if "const" in schema:
        return schema["const"]
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), None)
    examples = schema.get("examples")
    examples = examples if isinstance(examples, list) else []
    if kind in ("integer", "number"):
        numbers = [e for e in examples if isinstance(e, int | float) and not isinstance(e, bool)]
        return numbers[0] if numbers else (1 if kind == "integer" else 1.5)
    if kind == "boolean":
        return True
    if kind == "array":
        return []
    if kind == "object":
        return from_schema(schema, depth + 1) if depth < MAX_DEPTH else {}
    lowered = name.lower()
    if lowered.endswith("url") or lowered.endswith("link"):
        return f"https://example.com/sample-{name}"
    if "email" in lowered:
        return "sample@example.com"
    return f"sample {name}"


def missing_placeholders(spec: Mapping[str, Any], payload: Mapping[str, Any]) -> list[str]:
    """Placeholders of the action that neither its variables nor ``payload`` can fill."""
    action = specs.TriggerSpec.from_dict(spec).action
    if isinstance(action, specs.ChatAction):
        sources = [action.template]
    else:  # a workflow without input gets the payload itself: nothing to fill
        sources = [text for _, text in templates.strings_in(action.input)]
    out: list[str] = []
    for source in sources:
        try:
            names = templates.parse(source).placeholders
        except TemplateError:
            continue
        for name in names:
            known = templates.lookup(action.variables, name)[0]
            if not known and not templates.lookup(payload, name)[0]:
                out.append(name)
    return list(dict.fromkeys(out))


# -- filters ----------------------------------------------------------------------------------


def satisfy(flt: specs.Filter | None, payload: dict[str, Any]) -> None:
    """Change ``payload`` so every condition of ``flt`` holds, where one value can do it."""
    for name, part in (flt.parts if flt is not None else {}).items():
        if isinstance(part, specs.Condition):
            if not events.matches(specs.Filter({name: part}), payload):
                _meet(name, part, payload)
        elif name == "all":
            for sub in part or ():
                satisfy(sub, payload)
        elif part and not any(events.matches(sub, payload) for sub in part):
            satisfy(part[0], payload)


def _meet(name: str, condition: specs.Condition, payload: dict[str, Any]) -> None:
    found, value = templates.lookup(payload, name)
    leaf = name.rsplit(".", 1)[-1]
    op, wanted = condition.op, condition.value
    if op == "exists":
        if wanted:
            _put(payload, name, f"sample {leaf}")
        else:
            _drop(payload, name)
    elif op == "equals":
        _put(payload, name, wanted)
    elif op == "in":
        if wanted:
            _put(payload, name, wanted[0])
    else:  # contains
        needle = str(wanted)
        if isinstance(value, list):
            _put(payload, name, [*value, needle])
        elif found and isinstance(value, str):
            _put(payload, name, f"{value} {needle}")
        else:
            _put(payload, name, f"sample {leaf} {needle}")


def failures(flt: specs.Filter | None, payload: Mapping[str, Any]) -> list[str]:
    """Each condition of ``flt`` that ``payload`` fails, in words (empty when it matches).

    Built on ``events.explain_filter`` (the verdicts ``explain --delivery`` prints), so the
    reason a test event was skipped is the same evaluation the worker applies.
    """
    return _failed(events.explain_filter(flt, payload))


def _failed(checks: Sequence[events.Check]) -> list[str]:
    out: list[str] = []
    for check in checks:
        if check.passed:
            continue
        if check.path == "all":
            for member in check.children:
                out += _failed(member.children)
        elif check.path == "any":
            out.append("none of: " + " or ".join(_words(m.children) for m in check.children))
        else:
            got = _short(check.value) if check.found else "missing"
            out.append(f"{_words([check])} (got {got})")
    return out


def _words(checks: Sequence[events.Check]) -> str:
    parts = []
    for check in checks:
        if check.condition is None:  # an all/any group: its members' conditions
            joiner = " and " if check.path == "all" else " or "
            parts.append("(" + joiner.join(_words(m.children) for m in check.children) + ")")
            continue
        [(op, arg)] = list(check.condition.items())[:1] or [("?", None)]
        parts.append(f"{check.path} {op} {_short(arg)}")
    return " and ".join(parts)


def _short(value: Any) -> str:
    text = json.dumps(value, default=str, ensure_ascii=False)
    return text if len(text) <= 60 else text[:57] + "..."


def _put(payload: dict[str, Any], name: str, value: Any) -> None:
    """Set a (dotted) field; a flat key that already exists wins, as in lookups."""
    if name in payload or "." not in name:
        payload[name] = value
        return
    current = payload
    parts = name.split(".")
    for part in parts[:-1]:
        step = current.get(part)
        if not isinstance(step, dict):
            step = current[part] = {}
        current = step
    current[parts[-1]] = value


def _drop(payload: dict[str, Any], name: str) -> None:
    if name in payload:
        del payload[name]
        return
    current: Any = payload
    parts = name.split(".")
    for part in parts[:-1]:
        current = current.get(part) if isinstance(current, dict) else None
    if isinstance(current, dict):
        current.pop(parts[-1], None)
