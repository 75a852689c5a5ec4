"""`{placeholder}` templates for chat messages and workflow inputs.

A deliberately small language: `{name}` and dotted `{a.b}` look a value up, `{{` and `}}` are
literal braces, nothing else. ``str.format`` was not used because it also accepts `{a[0]}`,
`{a!r}` and `{a:>10}`, and fails on a missing key only at run time; here a template is parsed
once, its placeholders are known before anything runs, and a missing value is an error that
names the placeholder rather than a blank in a message a person reads.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from planner_operator.errors import TemplateError

_NAME = r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z0-9_]+)*"
_TOKEN = re.compile(r"\{\{|\}\}|\{(" + _NAME + r")\}|[{}]")

JOB_BUILTINS: frozenset[str] = frozenset(
    {"date", "time", "datetime", "weekday", "agent", "job", "run_id"}
)


@dataclass(frozen=True)
class Template:
    """A parsed template: literal text and placeholder names, in order."""

    source: str
    parts: tuple[str | Placeholder, ...]

    @property
    def placeholders(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.parts if isinstance(p, Placeholder))


@dataclass(frozen=True)
class Placeholder:
    name: str
    offset: int  # 0-based position of the opening brace in the source


def parse(source: str) -> Template:
    """Split a template into text and placeholders; a stray brace is an error with its column."""
    parts: list[str | Placeholder] = []
    text: list[str] = []
    pos = 0
    for match in _TOKEN.finditer(source):
        text.append(source[pos : match.start()])
        token = match.group(0)
        if token in ("{{", "}}"):
            text.append(token[0])
        elif match.group(1) is not None:
            if text:
                parts.append("".join(text))
                text = []
            parts.append(Placeholder(match.group(1), match.start()))
        else:
            raise TemplateError(_stray_brace_message(source, match.start(), token))
        pos = match.end()
    text.append(source[pos:])
    if "".join(text):
        parts.append("".join(text))
    return Template(source, tuple(parts))


def _stray_brace_message(source: str, offset: int, brace: str) -> str:
    if brace == "{":
        close = source.find("}", offset)
        inner = source[offset + 1 : close] if close != -1 else ""
        if close == offset + 1:
            return (
                f"empty placeholder `{{}}` at column {offset + 1}: put a name inside, or write "
                "`{{}}` for literal braces"
            )
        if close != -1 and inner:
            return (
                f"`{{{inner}}}` at column {offset + 1} is not a placeholder: names are letters, "
                "digits and _ with dots between parts; write `{{` for a literal brace"
            )
        return f"unmatched `{{` at column {offset + 1} (write `{{{{` for a literal brace)"
    return f"unmatched `}}` at column {offset + 1} (write `}}}}` for a literal brace)"


def lookup(values: Mapping[str, Any], name: str) -> tuple[bool, Any]:
    """Resolve a dotted name; a flat key containing dots wins over nesting (payload fields)."""
    if name in values:
        return True, values[name]
    current: Any = values
    for part in name.split("."):
        if isinstance(current, Mapping) and part in current:
            current = current[part]
        elif isinstance(current, list) and part.isdigit() and int(part) < len(current):
            current = current[int(part)]
        else:
            return False, None
    return True, current


def _to_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return ""
    if isinstance(value, list | tuple):
        return ", ".join(_to_text(v) for v in value)
    if isinstance(value, Mapping):  # JSON, not Python's repr ({'a': True}) in a message
        return json.dumps(value, ensure_ascii=False, default=str)
    return str(value)


def render(template: Template | str, values: Mapping[str, Any]) -> str:
    """Fill every placeholder; a missing one raises TemplateError naming all that are missing."""
    parsed = parse(template) if isinstance(template, str) else template
    out: list[str] = []
    missing: list[str] = []
    for part in parsed.parts:
        if isinstance(part, str):
            out.append(part)
            continue
        found, value = lookup(values, part.name)
        if not found:
            missing.append(part.name)
        else:
            out.append(_to_text(value))
    if missing:
        names = ", ".join(f"{{{m}}}" for m in dict.fromkeys(missing))
        raise TemplateError(f"no value for {names}")
    return "".join(out)


def strings_in(value: Any, path: str = "") -> Iterator[tuple[str, str]]:
    """Every string inside a JSON-like value, with its dotted path (for workflow inputs)."""
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield from strings_in(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            yield from strings_in(item, f"{path}.{index}" if path else str(index))


def render_value(value: Any, values: Mapping[str, Any]) -> Any:
    """Render every string inside a JSON-like value (workflow inputs)."""
    if isinstance(value, str):
        return render(value, values)
    if isinstance(value, Mapping):
        return {k: render_value(v, values) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [render_value(v, values) for v in value]
    return value


def job_builtins(*, slot: datetime, agent: str, job: str, run_id: str) -> dict[str, str]:
    """Built-in variables of a job run, from its slot time in the job's own timezone."""
    return {
        "date": slot.strftime("%Y-%m-%d"),
        "time": slot.strftime("%H:%M"),
        "datetime": slot.isoformat(timespec="minutes"),
        "weekday": slot.strftime("%A"),
        "agent": agent,
        "job": job,
        "run_id": run_id,
    }
