"""Load one agent file into a model, or into errors that say file:line:col and what to do.

Each file loads on its own and never raises for bad content: the result carries the errors, so
one broken file cannot hide the results of the others (Flux v1 stalled every sync on one bad
file). Only our ``ConfigError`` values come out of here, whatever bytes go in.
"""

from __future__ import annotations

import difflib
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path as FsPath
from typing import Any

import pydantic
from pydantic_core import ErrorDetails
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.nodes import ScalarNode

from planner_operator.config import models, nodes, positions
from planner_operator.errors import ConfigError

MAX_FILE_BYTES = 1024 * 1024
MAX_ERRORS = 100  # per file: past that, more lines only hide the first (real) mistake

# What a value matching each pattern is called, and how to write one.
_PATTERN_HELP = {
    models.SLUG: (
        "name",
        "use lowercase letters, digits and dashes, at most 63 characters, e.g. `morning-check`",
    ),
    models.WORKFLOW_ID: ("workflow id", "use letters, digits, `_`, `.` and `-`"),
    models.TOOLKIT: ("toolkit", "use the lowercase Composio toolkit slug, e.g. `gmail`"),
    models.EVENT_SLUG: (
        "trigger slug",
        "use the Composio trigger slug in capitals, e.g. `GMAIL_NEW_GMAIL_MESSAGE`",
    ),
    models.VARIABLE_NAME: (
        "variable name",
        "use letters, digits and `_`, not starting with a digit, e.g. `user_name`",
    ),
    models.ENV_NAME: (
        "environment variable name",
        "use capitals, digits and `_`, e.g. `MY_WEBHOOK_SECRET`",
    ),
}

_EXPECTED = {
    "string_type": "text",
    "bool_type": "true/false",
    "int_type": "a whole number",
    "float_type": "a number",
    "dict_type": "a mapping (key: value)",
    "list_type": "a list",
    "model_type": "a mapping (key: value)",
}


@dataclass(frozen=True)
class LoadedFile:
    """The outcome for one file: the model when it validated, and every error found.

    ``warnings`` are problems that do not stop the file (e.g. a trigger type the bundled
    catalog cannot know): shown by validate and the plan, never freezing anything.
    """

    file: str
    agent: models.AgentFile | None
    positions: positions.Positions
    errors: tuple[ConfigError, ...] = ()
    warnings: tuple[ConfigError, ...] = ()
    # The plain data ``agent`` was validated from: what ``config.cached`` keeps, so a cached
    # result is rebuilt by the same validation as a cold one.
    document: dict[str, Any] | None = field(default=None, compare=False, repr=False)
    # The file's ``desired.DesiredResource`` values, when the parse cache kept them with it
    # (``config.desired`` builds them otherwise; they are a function of this file alone).
    resources: tuple[Any, ...] | None = field(default=None, compare=False, repr=False)

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
            return failed(name, _too_big(name, size))
        data = path.read_bytes()
    except OSError as exc:
        return failed(name, ConfigError(f"cannot read file: {exc.strerror}", file=name))
    return load_bytes(data, name)


def load_bytes(data: bytes, file: str) -> LoadedFile:
    """Decode and load; non-UTF-8 input is an error with the byte offset."""
    if len(data) > MAX_FILE_BYTES:
        return failed(file, _too_big(file, len(data)))
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        col = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        return failed(
            file,
            ConfigError(
                f"file is not UTF-8 text (byte 0x{data[exc.start]:02x} cannot be decoded)",
                file=file,
                line=line,
                col=col,
                hint="save the file as UTF-8",
            ),
        )
    return load_text(text, file)


def load_text(text: str, file: str) -> LoadedFile:
    """Parse YAML, convert with positions, validate against the models."""
    if len(text) > MAX_FILE_BYTES:
        return failed(file, _too_big(file, len(text)))
    deep = _flow_too_deep(text)
    if deep is not None:
        return failed(file, _too_deep(file, *deep))
    try:
        root = nodes.compose(text)
    except MarkedYAMLError as exc:
        return failed(file, _yaml_error(exc, file, text))
    except RecursionError:
        return failed(file, _too_deep(file, 1, 1))
    except YAMLError as exc:
        return failed(file, ConfigError(f"invalid YAML: {_first_line(exc)}", file=file))
    except _PARSER_ERRORS as exc:
        # ruamel.yaml's constructor raises plain exceptions for values it cannot build, such as
        # `2001-02-30` or `!!int 1.5`, without a position.
        return failed(
            file,
            ConfigError(
                f"invalid YAML value: {_first_line(exc)}",
                file=file,
                hint="check dates (YYYY-MM-DD) and explicitly tagged values such as `!!int`; "
                "quote a value to keep it as text",
            ),
        )
    if root is None or (
        isinstance(root, ScalarNode) and str(root.tag).endswith(":null") and not root.value
    ):
        return failed(
            file,
            ConfigError(
                "file is empty",
                file=file,
                hint="an agent file needs at least `name:`; delete the file to remove the agent",
            ),
        )
    try:
        data, where = nodes.to_plain(root)
    except positions.ConversionError as exc:
        line, col = exc.position or (1, 1)
        return failed(
            file,
            ConfigError(
                str(exc),
                file=file,
                line=line,
                col=col,
                path=positions.dotted(exc.path),
                hint=exc.hint,
            ),
        )
    except RecursionError:  # MAX_DEPTH stops conversion long before; kept as a safety net
        return failed(file, _too_deep(file, 1, 1))
    if not isinstance(data, dict):
        kind = "a list" if isinstance(data, list) else "a single value"
        return failed(
            file,
            ConfigError(
                f"the file is {kind}, not a mapping",
                file=file,
                hint="an agent file is a mapping with `name:` and `planner:` at the top level",
            ),
        )
    try:
        agent = models.AgentFile.model_validate(data)
    except pydantic.ValidationError as exc:
        raw = exc.errors()
        found = _merge(_from_pydantic(e, file, where, data) for e in raw[: 2 * MAX_ERRORS])
        errors = sorted(found, key=lambda e: (e.position.line, e.position.col))
        if len(errors) > MAX_ERRORS or len(raw) > 2 * MAX_ERRORS:
            errors = errors[:MAX_ERRORS]
            errors.append(
                ConfigError(
                    f"too many errors; only the first {len(errors)} are shown",
                    file=file,
                    line=errors[-1].position.line,
                    col=errors[-1].position.col,
                    hint="fix these and validate again",
                )
            )
        return LoadedFile(file, None, where, tuple(errors))
    return LoadedFile(file, agent, where, document=data)


def revalidate(file: str, document: dict[str, Any], where: positions.Positions) -> LoadedFile:
    """The model of a document that validated before (a cached parse), by the same validation."""
    return LoadedFile(file, models.AgentFile.model_validate(document), where, document=document)


_NULL = "tag:yaml.org,2002:null"

# What ruamel.yaml has raised, besides YAMLError, on malformed input.
_PARSER_ERRORS = (
    ValueError,
    TypeError,
    AttributeError,
    KeyError,
    IndexError,
    AssertionError,
)


_BRACKET = re.compile(r"[\[\]{}]")
MAX_FLOW_DEPTH = 100


def _flow_too_deep(text: str) -> tuple[int, int] | None:
    """Where flow collections (``[[[...``) nest deeper than the parser can take, if anywhere.

    ruamel.yaml's scanner is quadratic in flow depth and its parser recursive, so a few KiB of
    ``[`` would cost seconds before failing. This cheap scan counts only brackets in a place a
    flow collection can start (after ``:``, ``-``, ``,``, ``?``, a counted bracket, or at the
    start), so ordinary text with braces such as templates does not add up.
    """
    depth, last = 0, -1
    for match in _BRACKET.finditer(text):
        at = match.start()
        if match.group() in "]}":
            depth = max(0, depth - 1)
            continue
        before = _skip_back(text, at - 1)
        # After another bracket only if that one counted: `say {{` in a template is text.
        starts = before < 0 or text[before] in ":-,?" or before == last
        if not starts:
            continue
        depth, last = depth + 1, at
        if depth > MAX_FLOW_DEPTH:
            line = text.count("\n", 0, at) + 1
            return line, at - (text.rfind("\n", 0, at) + 1) + 1
    return None


def _skip_back(text: str, at: int) -> int:
    """Index of the last character before ``at`` that is not space, an anchor or a tag."""
    while True:
        while at >= 0 and text[at] in " \t\r\n":
            at -= 1
        start = at
        while start >= 0 and at - start < 128 and text[start] not in " \t\r\n,[{":
            start -= 1
        if start == at or text[start + 1] not in "&!":
            return at
        at = start


def _too_deep(file: str, line: int, col: int) -> ConfigError:
    return ConfigError(
        f"nested more than {MAX_FLOW_DEPTH} levels deep",
        file=file,
        line=line,
        col=col,
        hint="flatten the structure",
    )


def failed(file: str, error: ConfigError) -> LoadedFile:
    """The result for a file that could not be loaded at all, for ``error``."""
    return LoadedFile(file, None, positions.Positions(), (error,))


def oversized(file: str, size: int) -> LoadedFile:
    """The result for a file that was too big to read at all."""
    return failed(file, _too_big(file, size))


def _too_big(file: str, size: int) -> ConfigError:
    return ConfigError(
        f"file is {size} bytes, over the {MAX_FILE_BYTES}-byte limit for an agent file",
        file=file,
        hint="split it into one file per agent",
    )


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _yaml_error(exc: MarkedYAMLError, file: str, text: str) -> ConfigError:
    mark = exc.problem_mark or exc.context_mark
    line, col = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
    problem = exc.problem or exc.context or "invalid YAML"
    context = exc.context or ""
    cause = _likely_cause(text, line)
    if cause is not None:
        cause_line, cause_col, message, hint = cause
        return ConfigError(
            f"invalid YAML: {message}", file=file, line=cause_line, col=cause_col, hint=hint
        )
    if "tab character" in problem:
        return _tab_error(file, line, col)
    start = exc.context_mark
    started = (
        f" that started on line {start.line + 1}, column {start.column + 1}"
        if start is not None and (start.line + 1, start.column + 1) != (line, col)
        else ""
    )
    at = _char_at(text, line, col)
    if "cannot start any token" in problem and at == "\t":
        return _tab_error(file, line, col)
    problem = problem.replace("not allowed in this context", "not allowed here")
    hint = _yaml_hint(problem, context)
    if "duplicate anchor" in context:
        first = f" (first on line {start.line + 1})" if start is not None else ""
        return ConfigError(
            f"invalid YAML: anchor defined twice{first}",
            file=file,
            line=line,
            col=col,
            hint="give each `&anchor` its own name",
        )
    if "did not find expected key" in problem and "block mapping" in context:
        problem = "expected <block end>"
        hint = _yaml_hint(problem, context)
    if "single document" in context:
        message = "a second YAML document (`---`) in the file"
    elif "expected <block end>" in problem:
        message = f"this line's indentation does not match the block{started}"
    elif exc.problem and context.startswith("while ") and "next token" not in context:
        message = f"{problem} ({context}{started})"
    else:
        message = problem
    return ConfigError(f"invalid YAML: {message}", file=file, line=line, col=col, hint=hint)


# `key: "text` with no closing quote on the line: YAML reads on into the next lines, and the
# parser fails later, where it looks like an indentation error.
_OPEN_QUOTE = re.compile(r"""^(\s*(?:-\s+)?[\w.-]+:\s+|\s*-\s+)(["'])""")
# `key: {text} more` or `key: [a] b`: an unquoted value that starts a flow collection.
_FLOW_START = re.compile(r"^(\s*(?:-\s+)?([\w.-]+):\s+)([{\[])")


def _likely_cause(text: str, error_line: int) -> tuple[int, int, str, str] | None:
    """What a person wrote that YAML misread, when its error surfaces somewhere else.

    Two mistakes make the parser fail at a later line with an indentation message: a quote
    left open (the scalar runs on over the following lines) and a value that starts with `{`
    or `[` (read as a mapping or a list, so the rest of the line is a syntax error). A line up
    to the reported one is blamed only when mending it (closing the quote, quoting the value)
    makes the file parse past the reported line, so valid multi-line scalars are left alone.
    """
    lines = text.splitlines()
    for number in range(min(error_line, len(lines)), 0, -1):
        raw = lines[number - 1]
        flow = _FLOW_START.match(raw)
        mended = raw[: flow.end(1)] + "'x'" if flow is not None else ""
        if (
            flow is not None
            and not _closes_at_end(raw[flow.end(1) :])
            and _parses_past(lines, number, mended, error_line)
        ):
            key, bracket = flow.group(2), flow.group(3)
            value = raw[flow.end(1) :].split(" #")[0].strip()
            what = "a mapping" if bracket == "{" else "a list"
            return (
                number,
                flow.end(1) + 1,
                f"the value of `{key}` starts with `{bracket}`, so YAML reads it as {what}",
                f'quote the whole value: `{key}: "{value}"`',
            )
        quote = _OPEN_QUOTE.match(raw)
        if (
            quote is not None
            and not _quote_closed(raw[quote.end(1) :])
            and _parses_past(lines, number, raw[: quote.end(1)] + "'x'", error_line)
        ):
            mark = quote.group(2)
            return (
                number,
                quote.end(1) + 1,
                f"the quote ({mark}) opened here is not closed on this line",
                "close it on the same line; for text on several lines use `|` "
                "(e.g. `template: |` and the text indented below it)",
            )
    return None


def _parses_past(lines: list[str], number: int, replacement: str, error_line: int) -> bool:
    """Whether the file with line ``number`` replaced parses, or fails only after ``error_line``."""
    mended = "\n".join([*lines[: number - 1], replacement, *lines[number:]])
    try:
        nodes.compose(mended)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        return mark is not None and mark.line + 1 > error_line
    except Exception:  # a probe: anything else it meets means "not mended"
        return False
    return True


def _quote_closed(value: str) -> bool:
    """Whether a quoted scalar that starts ``value`` ends on this line."""
    mark, body = value[0], value[1:]
    if mark == "'":
        return "'" in body.replace("''", "")
    escaped = False
    for char in body:
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == '"':
            return True
    return False


def _closes_at_end(value: str) -> bool:
    """Whether a flow collection starting ``value`` closes and nothing but a comment follows."""
    depth = 0
    quote = ""
    for index, char in enumerate(value):
        if quote:
            quote = "" if char == quote else quote
        elif char in "\"'":
            quote = char
        elif char in "{[":
            depth += 1
        elif char in "}]":
            depth -= 1
            if depth == 0:
                rest = value[index + 1 :].strip()
                return not rest or rest.startswith("#")
    return False


def _tab_error(file: str, line: int, col: int) -> ConfigError:
    """YAML forbids tabs in indentation; its own words for that ("cannot start any token",
    "found character '\\t'") do not say so."""
    return ConfigError(
        "invalid YAML: a tab in this line's indentation",
        file=file,
        line=line,
        col=col,
        hint="indent with spaces, not tabs",
    )


def _char_at(text: str, line: int, col: int) -> str:
    lines = text.splitlines()
    if 1 <= line <= len(lines) and 1 <= col <= len(lines[line - 1]):
        return lines[line - 1][col - 1]
    return ""


def _yaml_hint(problem: str, context: str) -> str:
    if "\\t" in problem or "\t" in problem:
        return "indent with spaces, not tabs"
    if "quoted scalar" in context:
        return "close the quote, or escape a quote inside the text"
    if "single document" in context:
        return "an agent file holds one YAML document: remove the `---` line or split the file"
    if "expected <block end>" in problem:
        return (
            "indent the keys of one mapping, and the items of one list, by the same number of "
            "spaces"
        )
    if "mapping values are not allowed" in problem:
        return "check the indentation, or quote a value that contains `: `"
    if "found character" in problem and "cannot start any token" in problem:
        return "quote the value"
    if "flow" in context:
        return "close the `[` or `{`, and separate items with `, `"
    return "check the indentation and quoting around this line"


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
        hint = _missing_hint(path, missing_leaf)
        return ConfigError(message, file=file, line=line, col=col, path=shown, hint=hint)
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
    if kind == models.RULE_ERROR:
        context = error.get("ctx") or {}
        field = context.get("field")
        if isinstance(field, str) and _has(data, (*path, field)):
            path = (*path, field)
            line, col = where.key(path)
        else:
            line, col = where.value(path)
        hint = context.get("hint")
        return ConfigError(
            str(error["msg"]),
            file=file,
            line=line,
            col=col,
            path=positions.dotted(path),
            hint=hint if isinstance(hint, str) else None,
        )
    # A bad mapping key (a variable name) is reported where the key is written.
    on_key = bool(error["loc"]) and error["loc"][-1] == "[key]"
    line, col = where.key(path) if on_key else where.value(path)
    message, hint = _message(error, path[-1] if path else "")
    return ConfigError(
        message, file=file, line=line, col=col, path=positions.dotted(path), hint=hint
    )


def _message(error: ErrorDetails, leaf: str | int) -> tuple[str, str | None]:
    """Plain-words message and hint for a pydantic error on a single value."""
    kind = error["type"]
    value = error.get("input")
    context = error.get("ctx") or {}
    if kind == "string_pattern_mismatch":
        pattern = str(context.get("pattern", ""))
        what, help_text = _PATTERN_HELP.get(pattern, ("value", f"it must match {pattern}"))
        what = "agent id" if pattern == models.SLUG and leaf == "id" else what
        shown = _describe(value)
        shown = shown.removeprefix("text ") if shown.startswith("text `") else "the value"
        return f"{shown} is not a valid {what}", help_text
    if kind == "string_too_short":
        return "the value must not be empty", "write a value or remove the key"
    if kind == "string_too_long":
        limit = context.get("max_length")
        return f"the value is longer than {limit} characters", "shorten it"
    if kind == "literal_error":
        expected = context.get("expected", "")
        options = [o.strip(" '") for o in str(expected).replace(" or ", ",").split(",")]
        message = "expected one of " + ", ".join(f"`{o}`" for o in options)
        message += f", got {_describe(value)}"
        close = difflib.get_close_matches(str(value), options, n=1, cutoff=0.5)
        return message, f"did you mean `{close[0]}`?" if close else None
    if kind == "value_error":
        return str(error["msg"]).removeprefix("Value error, "), None
    expected = _EXPECTED.get(kind)
    if expected is not None:
        return f"expected {expected}, got {_describe(value)}", _type_hint(kind, leaf, value)
    return str(error["msg"]), None


def _type_hint(kind: str, leaf: str | int, value: Any) -> str | None:
    """The usual YAML slip behind a type error: unquoted `{...}`, or an empty key."""
    if kind == "string_type" and isinstance(value, dict):
        inner = ", ".join(str(k) if v is None else f"{k}: {v}" for k, v in value.items())
        return (
            f'quote it: YAML reads an unquoted `{{...}}` as a mapping, e.g. `{leaf}: "{{{inner}}}"`'
        )
    if kind == "list_type" and value is None:
        return f"write `{leaf}: []` for none, or list the items under it with `- `"
    if kind in ("dict_type", "model_type") and value is None:
        return f"write `{leaf}: {{}}` for none, or put its keys under it, indented"
    return None


def _missing_hint(path: positions.Path, key: str) -> str:
    model = _model_at(path)
    field = model.model_fields.get(key) if model is not None else None
    if field is None:
        return f"add `{key}:`"
    examples = field.examples or []
    if examples and isinstance(examples[0], str | int | float):
        return f"add it, e.g. `{key}: {examples[0]}`"
    target = _unwrap(field.annotation)
    if isinstance(target, type) and issubclass(target, pydantic.BaseModel):
        keys = [f.alias or n for n, f in target.model_fields.items()]
        return f"add `{key}:` with " + " or ".join(f"`{k}:`" for k in keys)
    return f"add `{key}:`"


def _describe(value: Any) -> str:
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return f"`{str(value).lower()}` (true/false)"
    if isinstance(value, str):
        shown = value if len(value) <= 40 else value[:37] + "..."
        return f"text `{shown}`" if "`" not in shown and "\n" not in shown else "text"
    if isinstance(value, int | float):
        return f"the number {value}"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


def _has(data: Any, path: positions.Path) -> bool:
    for part in path:
        in_dict = isinstance(data, dict) and part in data
        in_list = isinstance(data, list) and isinstance(part, int) and 0 <= part < len(data)
        if not (in_dict or in_list):
            return False
        data = data[part]
    return True


def _merge(errors: typing.Iterable[ConfigError]) -> list[ConfigError]:
    """One error per value, in plain words.

    A union (``text | number | true/false``) fails once per member at the same place: those
    become one "expected text, a number or true/false". And "missing key `x`" is dropped when an
    unknown key beside it is already reported as a misspelt `x`.
    """
    groups: dict[tuple[str, int, int], list[ConfigError]] = {}
    for error in errors:
        groups.setdefault((error.path, error.position.line, error.position.col), []).append(error)
    merged = [_merge_union(group) for group in groups.values()]
    suggested = {
        _sibling(e.path, e.hint.removeprefix("did you mean `").removesuffix("`?"))
        for e in merged
        if e.hint and e.hint.startswith("did you mean `") and e.message.startswith("unknown key")
    }
    return [
        e
        for e in merged
        if not (e.message.startswith("missing required key") and e.path in suggested)
    ]


def _merge_union(group: list[ConfigError]) -> ConfigError:
    first = group[0]
    parts = [e.message.removeprefix("expected ").rpartition(", got ") for e in group]
    if len(group) == 1 or not all(
        e.message.startswith("expected ") and p[1] for e, p in zip(group, parts, strict=True)
    ):
        return first
    wanted = list(dict.fromkeys(p[0] for p in parts))
    if "a number" in wanted and "a whole number" in wanted:
        wanted.remove("a whole number")
    expected = wanted[0] if len(wanted) == 1 else ", ".join(wanted[:-1]) + " or " + wanted[-1]
    return ConfigError(
        f"expected {expected}, got {parts[0][2]}",
        file=first.file,
        line=first.position.line,
        col=first.position.col,
        path=first.path,
        hint=first.hint,
    )


def _sibling(path: str, name: str) -> str:
    """``planner.jobs[0].schedul`` and ``schedule`` -> ``planner.jobs[0].schedule``."""
    parent, dot, _ = path.rpartition(".")
    return f"{parent}.{name}" if dot else name


def _allowed_keys(path: positions.Path) -> list[str]:
    """The keys the model at ``path`` accepts, for did-you-mean on unknown keys."""
    model = _model_at(path)
    if model is None:
        return []
    return [(f.alias or n) for n, f in model.model_fields.items()]


def _model_at(path: positions.Path) -> type[pydantic.BaseModel] | None:
    """The model that validates the mapping at ``path`` (None for free-form data)."""
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
                return None
        elif typing.get_origin(current) is list:
            current = typing.get_args(current)[0]
        elif typing.get_origin(current) is dict:
            current = typing.get_args(current)[1]
        else:
            return None
    current = _unwrap(current)
    if isinstance(current, type) and issubclass(current, pydantic.BaseModel):
        return current
    return None


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
