"""Load one agent file into a model, or into errors that say file:line:col and what to do.

Each file loads on its own and never raises for bad content: the result carries the errors, so
one broken file cannot hide the results of the others (Flux v1 stalled every sync on one bad
file). Only our ``ConfigError`` values come out of here, whatever bytes go in.
"""

from __future__ import annotations

import difflib
import io
import types
import typing
from dataclasses import dataclass
from pathlib import Path as FsPath
from typing import Any

import pydantic
from pydantic_core import ErrorDetails
from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from planner_operator.config import models, positions
from planner_operator.errors import ConfigError

MAX_FILE_BYTES = 1024 * 1024

_PATTERN_HELP = {
    models.SLUG: "use lowercase letters, digits and dashes (e.g. `morning-check`), at most 63",
    models.WORKFLOW_ID: "use letters, digits, `_`, `.` and `-`",
    models.TOOLKIT: "use the lowercase Composio toolkit slug (e.g. `gmail`)",
    models.EVENT_SLUG: "use the Composio trigger slug in capitals (e.g. `GMAIL_NEW_GMAIL_MESSAGE`)",
    models.VARIABLE_NAME: "variable names are letters, digits and `_`, not starting with a digit",
    models.ENV_NAME: "use an environment variable name in capitals (e.g. `MY_WEBHOOK_SECRET`)",
}


@dataclass(frozen=True)
class LoadedFile:
    """The outcome for one file: the model when it validated, and every error found."""

    file: str
    agent: models.AgentFile | None
    positions: positions.Positions
    errors: tuple[ConfigError, ...] = ()

    @property
    def agent_id(self) -> str:
        """The effective id: ``id:`` or the file stem."""
        if self.agent is not None and self.agent.id:
            return self.agent.id
        return FsPath(self.file).stem

    @property
    def ok(self) -> bool:
        return self.agent is not None and not self.errors


def load_path(path: FsPath, *, display: str | None = None) -> LoadedFile:
    """Read and load a file from disk, refusing oversized files before reading them."""
    name = display or str(path)
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            return _failed(name, _too_big(name, size))
        data = path.read_bytes()
    except OSError as exc:
        return _failed(name, ConfigError(f"cannot read file: {exc.strerror}", file=name))
    return load_bytes(data, name)


def load_bytes(data: bytes, file: str) -> LoadedFile:
    """Decode and load; non-UTF-8 input is an error with the byte offset."""
    if len(data) > MAX_FILE_BYTES:
        return _failed(file, _too_big(file, len(data)))
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        col = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        return _failed(file, ConfigError("file is not UTF-8 text", file=file, line=line, col=col))
    return load_text(text, file)


def load_text(text: str, file: str) -> LoadedFile:
    """Parse YAML, convert with positions, validate against the models."""
    if len(text) > MAX_FILE_BYTES:
        return _failed(file, _too_big(file, len(text)))
    try:
        root = _yaml().load(io.StringIO(text))
    except MarkedYAMLError as exc:
        return _failed(file, _yaml_error(exc, file))
    except YAMLError as exc:
        return _failed(file, ConfigError(f"invalid YAML: {_first_line(exc)}", file=file))
    except (RecursionError, ValueError, TypeError, AttributeError, KeyError, IndexError) as exc:
        # ruamel.yaml has raised these on some malformed documents (found by fuzzing).
        return _failed(file, ConfigError(f"invalid YAML: {_first_line(exc)}", file=file))
    if root is None:
        return _failed(
            file, ConfigError("file is empty: an agent needs at least `name:`", file=file)
        )
    try:
        data, where = positions.to_plain(root)
    except positions.ConversionError as exc:
        return _failed(file, ConfigError(str(exc), file=file, path=positions.dotted(exc.path)))
    except RecursionError:
        return _failed(file, ConfigError("structure is nested too deeply", file=file))
    if not isinstance(data, dict):
        kind = "a list" if isinstance(data, list) else "a single value"
        return _failed(
            file,
            ConfigError(
                f"the file is {kind}; an agent file is a mapping with `name:` and `planner:`",
                file=file,
            ),
        )
    try:
        agent = models.AgentFile.model_validate(data)
    except pydantic.ValidationError as exc:
        found = _merge(_from_pydantic(e, file, where, data) for e in exc.errors())
        errors = tuple(sorted(found, key=lambda e: (e.position.line, e.position.col)))
        return LoadedFile(file, None, where, errors)
    return LoadedFile(file, agent, where)


def _yaml() -> YAML:
    yaml = YAML(typ="rt", pure=True)
    yaml.allow_duplicate_keys = False
    return yaml


def _failed(file: str, error: ConfigError) -> LoadedFile:
    return LoadedFile(file, None, positions.Positions(), (error,))


def oversized(file: str, size: int) -> LoadedFile:
    """The result for a file that was too big to read at all."""
    return _failed(file, _too_big(file, size))


def _too_big(file: str, size: int) -> ConfigError:
    return ConfigError(
        f"file is {size} bytes, over the {MAX_FILE_BYTES}-byte limit for an agent file",
        file=file,
        hint="split it into one file per agent",
    )


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _yaml_error(exc: MarkedYAMLError, file: str) -> ConfigError:
    mark = exc.problem_mark or exc.context_mark
    line, col = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
    problem = exc.problem or exc.context or "invalid YAML"
    if "duplicate key" in problem or "found duplicate key" in str(exc):
        key = _duplicate_key(str(exc))
        return ConfigError(
            f"duplicate key {key}".rstrip(),
            file=file,
            line=line,
            col=col,
            hint="each key may appear once in a mapping; remove or merge the repeats",
        )
    context = f" ({exc.context})" if exc.context and exc.problem else ""
    return ConfigError(f"invalid YAML: {problem}{context}", file=file, line=line, col=col)


def _duplicate_key(message: str) -> str:
    for line in message.splitlines():
        if "duplicate key" in line and line.count('"') >= 2:
            start = line.index('"') + 1
            return "`" + line[start : line.index('"', start)] + "`"
    return ""


def _data_path(loc: tuple[int | str, ...], data: Any) -> tuple[positions.Path, str | None]:
    """Drop pydantic's union/validator tags from a loc, keeping only parts present in the data."""
    path: list[str | int] = []
    current = data
    missing_leaf: str | None = None
    for part in loc:
        if isinstance(current, dict) and isinstance(part, str):
            if part in current:
                path.append(part)
                current = current[part]
                continue
            if part.isidentifier() and not any(c in part for c in "[]-"):
                missing_leaf = part
            continue
        if isinstance(current, list) and isinstance(part, int) and part < len(current):
            path.append(part)
            current = current[part]
    return tuple(path), missing_leaf


def _from_pydantic(
    error: ErrorDetails, file: str, where: positions.Positions, data: Any
) -> ConfigError:
    kind = error["type"]
    path, missing_leaf = _data_path(tuple(error["loc"]), data)
    hint = None
    if kind == "missing" and missing_leaf:
        line, col = where.key(path) if path else (1, 1)
        message = f"missing required key `{missing_leaf}`"
        shown = positions.dotted((*path, missing_leaf))
        return ConfigError(message, file=file, line=line, col=col, path=shown)
    if kind == "extra_forbidden":
        line, col = where.key(path)
        unknown = str(path[-1]) if path else "?"
        allowed = _allowed_keys(path[:-1])
        close = difflib.get_close_matches(unknown, allowed, n=1, cutoff=0.6)
        message = f"unknown key `{unknown}`"
        if close:
            hint = f"did you mean `{close[0]}`?"
        elif allowed:
            hint = "allowed here: " + ", ".join(f"`{a}`" for a in allowed)
        return ConfigError(
            message, file=file, line=line, col=col, path=positions.dotted(path), hint=hint
        )
    line, col = where.value(path)
    message = _message(error)
    if kind == "literal_error":
        expected = error.get("ctx", {}).get("expected", "")
        options = [o.strip(" '") for o in str(expected).replace(" or ", ",").split(",")]
        message = "expected one of " + ", ".join(f"`{o}`" for o in options)
        message += f", got {_describe(error.get('input'))}"
        close = difflib.get_close_matches(str(error.get("input")), options, n=1, cutoff=0.5)
        hint = f"did you mean `{close[0]}`?" if close else None
    return ConfigError(
        message, file=file, line=line, col=col, path=positions.dotted(path), hint=hint
    )


def _message(error: ErrorDetails) -> str:
    kind = error["type"]
    value = error.get("input")
    if kind == "string_pattern_mismatch":
        pattern = str(error.get("ctx", {}).get("pattern", ""))
        help_text = _PATTERN_HELP.get(pattern, f"must match {pattern}")
        return f"`{value}` is not valid: {help_text}"
    if kind == "value_error":
        return str(error["msg"]).removeprefix("Value error, ")
    expected = {
        "string_type": "text",
        "bool_type": "true or false",
        "int_type": "a whole number",
        "float_type": "a number",
        "dict_type": "a mapping (key: value)",
        "list_type": "a list",
        "model_type": "a mapping (key: value)",
    }.get(kind)
    if expected is not None:
        return f"expected {expected}, got {_describe(value)}"
    return str(error["msg"])


def _describe(value: Any) -> str:
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return f"`{str(value).lower()}` (true/false)"
    if isinstance(value, str):
        return f"text `{value}`" if len(value) <= 40 else "text"
    if isinstance(value, int | float):
        return f"the number {value}"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


def _merge(errors: typing.Iterable[ConfigError]) -> list[ConfigError]:
    """A union reports one error per member; keep the first error per position and path."""
    seen: dict[tuple[str, int, int], ConfigError] = {}
    for error in errors:
        ident = (error.path, error.position.line, error.position.col)
        seen.setdefault(ident, error)
    return list(seen.values())


def _allowed_keys(path: positions.Path) -> list[str]:
    """The keys the model at ``path`` accepts, for did-you-mean on unknown keys."""
    current: Any = models.AgentFile
    for part in path:
        current = _unwrap(current)
        if isinstance(current, type) and issubclass(current, pydantic.BaseModel):
            fields = {(f.alias or n): f for n, f in current.model_fields.items()}
            if isinstance(part, str) and part in fields:
                current = fields[part].annotation
            elif current is models.Filter:
                current = models.Condition
            else:
                return []
        elif typing.get_origin(current) is list:
            current = typing.get_args(current)[0]
        elif typing.get_origin(current) is dict:
            current = typing.get_args(current)[1]
        else:
            return []
    current = _unwrap(current)
    if isinstance(current, type) and issubclass(current, pydantic.BaseModel):
        return [(f.alias or n) for n, f in current.model_fields.items()]
    return []


def _unwrap(annotation: Any) -> Any:
    """Strip Optional/Annotated wrappers to get the container or model type."""
    while True:
        origin = typing.get_origin(annotation)
        if origin is typing.Annotated:
            annotation = typing.get_args(annotation)[0]
        elif origin in (typing.Union, types.UnionType):
            members = [a for a in typing.get_args(annotation) if a is not type(None)]
            if len(members) != 1:
                return annotation
            annotation = members[0]
        else:
            return annotation
