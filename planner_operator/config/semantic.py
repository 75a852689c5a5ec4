"""Checks that the schema alone cannot make: schedules, timezones, templates, uniqueness.

They run after a file matched the models, report at the position of the offending value, and
never stop at the first problem: a user fixing a file wants every error in one run.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path as FsPath
from typing import Protocol

from planner_operator.config import catalog, models
from planner_operator.config.loader import LoadedFile
from planner_operator.config.positions import Path, dotted
from planner_operator.core import scheduling, specs, templates, webhook_secrets
from planner_operator.errors import ConfigError, ScheduleError, TemplateError

CRON_HINT = "cron fields are minute hour day-of-month month day-of-week, e.g. `0 9 * * 1`"


def check_files(files: Sequence[LoadedFile]) -> list[LoadedFile]:
    """Per-file checks, then ids unique across files; returns the files with errors added."""
    return check_across([check_one(f) for f in files])


def check_one(loaded: LoadedFile) -> LoadedFile:
    """The file with its own semantic errors and warnings added: a function of the file alone,
    so the reconcile layer may cache it by content (``check_across`` must still see every file).
    """
    errors, warnings = check_file(loaded)
    found = _with_errors(loaded, errors)
    return dataclasses.replace(found, warnings=(*found.warnings, *warnings))


def check_across(files: Sequence[LoadedFile]) -> list[LoadedFile]:
    """Checks between files (agent ids unique across the repo), over every file every time."""
    first_by_id: dict[str, LoadedFile] = {}
    out: list[LoadedFile] = []
    for loaded in files:
        if loaded.agent is None:
            out.append(loaded)
            continue
        other = first_by_id.setdefault(loaded.agent_id, loaded)
        if other is loaded:
            out.append(loaded)
            continue
        line, col = loaded.positions.value(("id",)) if loaded.agent.id else (1, 1)
        duplicate = ConfigError(
            f"agent id `{loaded.agent_id}` is already used by {other.file}",
            file=loaded.file,
            line=line,
            col=col,
            path="id",
            hint="agent ids must be unique across the repo; set a different `id:`",
        )
        out.append(_with_errors(loaded, [duplicate]))
    return out


def _with_errors(loaded: LoadedFile, errors: Iterable[ConfigError]) -> LoadedFile:
    extra = tuple(errors)
    if not extra:
        return loaded
    merged = sorted(loaded.errors + extra, key=lambda e: (e.position.line, e.position.col))
    return dataclasses.replace(loaded, errors=tuple(merged))


def check_file(loaded: LoadedFile) -> tuple[list[ConfigError], list[ConfigError]]:
    """Every semantic error and warning of one file that matched the models."""
    agent = loaded.agent
    if agent is None:
        return [], []
    errors: list[ConfigError] = []
    warnings: list[ConfigError] = []

    def error(path: Path, message: str, hint: str | None = None) -> None:
        line, col = loaded.positions.value(path)
        errors.append(
            ConfigError(message, file=loaded.file, line=line, col=col, path=dotted(path), hint=hint)
        )

    def finding(path: Path, message: str, hint: str | None, *, fatal: bool) -> None:
        line, col = loaded.positions.value(path)
        found = catalog.CatalogFinding(
            message, file=loaded.file, line=line, col=col, path=dotted(path), hint=hint
        )
        (errors if fatal else warnings).append(found)

    if agent.id is None and not re.fullmatch(models.SLUG, FsPath(loaded.file).stem):
        error(
            (),
            f"file name `{FsPath(loaded.file).name}` is not a valid agent id",
            "rename the file (lowercase letters, digits, dashes) or set `id:`",
        )
    _check_timezone(agent.timezone, ("timezone",), error)
    _check_unique((j.name for j in agent.planner.jobs), ("planner", "jobs"), "job", loaded, error)
    _check_unique(
        (t.name for t in agent.planner.triggers), ("planner", "triggers"), "trigger", loaded, error
    )
    for index, job in enumerate(agent.planner.jobs):
        base: Path = ("planner", "jobs", index)
        if job.timezone is not None:
            _check_timezone(job.timezone, (*base, "timezone"), error)
        try:
            scheduling.validate_schedule(job.schedule)
        except ScheduleError as exc:
            message, hint = _split_hint(exc)
            # A wrong field count already spells the fields out; anything else gets them.
            hint = hint or (None if "expected 5" in message else CRON_HINT)
            error((*base, "schedule"), message, hint)
        known = templates.JOB_BUILTINS | set(agent.variables)
        _check_action(job.action, (*base, "action"), known, error)
    for index, trigger in enumerate(agent.planner.triggers):
        base = ("planner", "triggers", index)
        kind = catalog.bundled().get(trigger.event or "") if trigger.webhook is None else None
        if kind is None and trigger.webhook is None and trigger.event:
            _unknown_type(trigger.event, trigger.toolkit, (*base, "event"), finding)
        if kind is not None and trigger.toolkit and trigger.toolkit != kind.toolkit:
            error(
                (*base, "toolkit"),
                f"`{trigger.event}` is a `{kind.toolkit}` trigger, not `{trigger.toolkit}`",
                f"set `toolkit: {kind.toolkit}`",
            )
        # Only a known type's payload is known; other triggers' placeholders are checked by
        # Composio's preflight (live type) or not at all (a generic webhook's arbitrary JSON).
        # A payload schema that declares no field (Drive's "may include ... in the future") is
        # open, not empty.
        fields = (kind.fields | set(agent.variables)) if kind is not None and kind.fields else None
        source = (
            f"`{trigger.event}` payload fields: " + ", ".join(sorted(kind.fields)) if kind else ""
        )
        _check_action(trigger.action, (*base, "action"), fields, error, source)
    return errors, warnings


def _unknown_type(slug: str, named: str | None, path: Path, finding: _FindingFn) -> None:
    """A slug the catalog does not list: an error with did-you-mean when the catalog covers its
    toolkit, else a warning (only Composio can tell, and preflight asks it when configured)."""
    toolkit = catalog.toolkit_of(slug, named)
    live = f"`planner-operator composio trigger-types --toolkit {toolkit}` lists the live ones"
    if toolkit not in catalog.toolkits():
        close = difflib.get_close_matches(toolkit, sorted(catalog.toolkits()), n=1, cutoff=0.8)
        typo = f"did you mean toolkit `{close[0]}`? " if close else ""
        finding(
            path,
            f"trigger type `{slug}` of toolkit `{toolkit}` cannot be checked offline: the bundled "
            f"catalog does not cover `{toolkit}`",
            f"{typo}Composio checks it at plan time when COMPOSIO_API_KEY is set; {live}",
            fatal=False,
        )
        return
    known = catalog.of_toolkit(toolkit)
    close = catalog.close_matches(slug, known)
    if close:
        hint = "did you mean " + " or ".join(f"`{c}`" for c in close) + "?"
    else:
        more = f" and {len(known) - 8} more" if len(known) > 8 else ""
        hint = f"`{toolkit}` trigger types: {', '.join(known[:8])}{more}; {live}"
    finding(path, f"unknown trigger type `{slug}` for toolkit `{toolkit}`", hint, fatal=True)


def _check_timezone(name: str, path: Path, error: _ErrorFn) -> None:
    try:
        scheduling.validate_timezone(name)
    except ScheduleError as exc:
        error(path, *_split_hint(exc))


def _split_hint(exc: ScheduleError) -> tuple[str, str | None]:
    """``unknown timezone 'X'; did you mean 'Y'?`` -> message and hint, for the error's format.

    Only at a `; ` outside quotes: the user's own text (`'0 9; * *'`) may contain one.
    """
    text = str(exc)
    message, sep, hint = text.rpartition("; ")
    if not sep or message.count("'") % 2:
        return text, None
    return message, hint


def _check_unique(
    names: Iterable[str], path: Path, what: str, loaded: LoadedFile, error: _ErrorFn
) -> None:
    first: dict[str, int] = {}
    for index, name in enumerate(names):
        if name in first:
            line, _ = loaded.positions.value((*path, first[name], "name"))
            error(
                (*path, index, "name"),
                f"duplicate {what} name `{name}` (first defined on line {line})",
                f"{what} names must be unique within an agent",
            )
        else:
            first[name] = index


def _check_action(
    action: models.Action,
    path: Path,
    known: set[str] | frozenset[str] | None,
    error: _ErrorFn,
    source: str = "",
) -> None:
    """Parse every template; with ``known`` given every placeholder must have a value.

    ``source`` says where the values come from besides variables (a trigger's payload fields);
    empty for jobs, whose hint names the built-ins.
    """
    if action.chat is not None:
        names = set(known or ()) | set(action.chat.variables)
        chat_path: Path = (*path, "chat", "template")
        _check_template(
            action.chat.template, chat_path, names if known is not None else None, error, source
        )
        return
    assert action.workflow is not None
    for where, text in _strings(action.workflow.input, (*path, "workflow", "input")):
        _check_template(text, where, known, error, source)


def template_problems(
    text: str, known: set[str] | frozenset[str] | None, source: str = ""
) -> list[tuple[str, str | None]]:
    """What ``check_file`` would say about one template, as (message, hint) pairs: the edit
    dialog checks a template as it is typed with exactly the rules a save is checked by."""
    found: list[tuple[str, str | None]] = []

    def error(path: Path, message: str, hint: str | None = None) -> None:
        found.append((message, hint))

    _check_template(text, (), known, error, source)
    return found


def _strings(value: object, path: Path) -> Iterator[tuple[Path, str]]:
    """Every string in a workflow input with its exact path (keys may contain dots or digits,
    so ``templates.strings_in``'s dotted text cannot be split back into a path)."""
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _strings(item, (*path, str(key)))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _strings(item, (*path, index))


def _check_template(
    text: str,
    path: Path,
    known: set[str] | frozenset[str] | None,
    error: _ErrorFn,
    source: str = "",
) -> None:
    try:
        parsed = templates.parse(text)
    except TemplateError as exc:
        error(path, f"template: {exc}")
        return
    if known is None:
        return
    for name in dict.fromkeys(parsed.placeholders):
        root = name.split(".", 1)[0]
        if root in known:
            continue
        close = difflib.get_close_matches(root, sorted(known), n=1, cutoff=0.75)
        hint = (
            f"did you mean `{{{close[0]}}}`?"
            if close
            else "add it to the action's `variables` or the agent's `variables`; "
            + (source or "built-ins are " + ", ".join(sorted(templates.JOB_BUILTINS)))
        )
        error(path, f"placeholder `{{{name}}}` has no value", hint)


class _FindingFn(Protocol):
    def __call__(self, path: Path, message: str, hint: str | None, *, fatal: bool) -> None: ...


class _ErrorFn(Protocol):
    """Call signature of the local ``error`` closure."""

    def __call__(self, path: Path, message: str, hint: str | None = None) -> None: ...


def secret_warnings(files: Iterable[LoadedFile], env: Mapping[str, str]) -> list[ConfigError]:
    """A warning per webhook trigger whose secret variable is unset or unusable in ``env``.

    ``env`` is the environment validate or the plan runs in, which may not be where ``serve``
    runs: so a warning, never an error. Applied as it is, the trigger is in error and its
    deliveries are answered 503 until the variable is set (``core.webhook_secrets``).
    """
    out: list[ConfigError] = []
    for loaded in files:
        if loaded.agent is None:
            continue
        for index, trigger in enumerate(loaded.agent.planner.triggers):
            if trigger.webhook is None:
                continue
            hook = specs.WebhookSpec(trigger.webhook.secret_env, trigger.webhook.scheme)
            problem = webhook_secrets.problem(hook, env)
            if problem is None:
                continue
            path: Path = ("planner", "triggers", index, "webhook", "secret_env")
            line, col = loaded.positions.value(path)
            out.append(
                ConfigError(
                    f"{problem} here: where `serve` runs without it, this trigger is in error "
                    "and its deliveries are answered 503",
                    file=loaded.file,
                    line=line,
                    col=col,
                    path=dotted(path),
                    hint=f"export {hook.secret_env} where `serve` runs",
                )
            )
    return out


def in_order(problems: Iterable[ConfigError]) -> tuple[ConfigError, ...]:
    """By file, then position: how a reader goes through them."""
    return tuple(sorted(problems, key=lambda p: (p.file, p.position.line, p.position.col)))


def iter_errors(files: Iterable[LoadedFile]) -> Iterator[ConfigError]:
    for loaded in files:
        yield from loaded.errors
