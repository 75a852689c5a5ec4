"""Plan-time checks of a Composio trigger against its trigger type, before anything is written.

A wrong config or a template naming a payload field that does not exist is accepted by Composio
and fails only when an event arrives (an empty placeholder in a chat message, a trigger that
watches the wrong label), so these run in ``preflight`` and stop the file like a load error.
Pure functions over the type's JSON Schemas: the backend supplies the lookups (cached per run).
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import jsonschema  # type: ignore[import-untyped]  # no stubs in the dev extras

from planner_operator.config import catalog
from planner_operator.config.desired import DesiredResource
from planner_operator.core import canonical, specs, templates
from planner_operator.errors import ConfigError, TemplateError

IDENTITY = frozenset({"event", "connected_account", "user_id", "config"})


class TriggerTypeLike(Protocol):
    @property
    def slug(self) -> str: ...
    @property
    def toolkit(self) -> str: ...
    @property
    def config(self) -> Mapping[str, Any]: ...
    @property
    def payload(self) -> Mapping[str, Any]: ...


class AccountLike(Protocol):
    @property
    def id(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def toolkit(self) -> str: ...
    @property
    def is_disabled(self) -> bool: ...


@dataclass(frozen=True)
class Lookups:
    """What the checks ask Composio, supplied (and cached per run) by the backend.

    ``account`` is None for an id Composio does not know; ``user_has(user, toolkit)`` says
    whether the user has an ACTIVE connection for the toolkit; ``slugs(toolkit)`` lists the
    toolkit's trigger types, for suggestions when a slug is unknown.
    """

    trigger_type: Callable[[str], TriggerTypeLike | None]
    account: Callable[[str], AccountLike | None]
    user_has: Callable[[str, str], bool]
    slugs: Callable[[str], Sequence[str]] = lambda toolkit: ()


def toolkit_of(spec: Mapping[str, Any]) -> str:
    """The toolkit a trigger names, else its slug's prefix (``GMAIL_NEW_...`` -> ``gmail``)."""
    named = str(spec.get("toolkit") or "")
    return (named or str(spec.get("event", "")).split("_", 1)[0]).lower()


def check(resource: DesiredResource, lookups: Lookups) -> list[ConfigError]:
    spec = resource.spec

    def error(message: str, path: str, hint: str | None = None) -> ConfigError:
        return ConfigError(message, file=resource.source, line=resource.line, path=path, hint=hint)

    slug = str(spec.get("event", ""))
    found = lookups.trigger_type(slug)
    if found is None:
        message = f"unknown Composio trigger type `{slug}` for toolkit `{toolkit_of(spec)}`"
        return [error(message, "event", _slug_hint(spec, lookups))]
    out: list[ConfigError] = []
    toolkit = spec.get("toolkit")
    if toolkit and found.toolkit and str(toolkit).lower() != found.toolkit.lower():
        out.append(
            error(
                f"`{slug}` belongs to toolkit `{found.toolkit}`, not `{toolkit}`",
                "toolkit",
                f"set `toolkit: {found.toolkit}`",
            )
        )
    out += [error(m, p, h) for p, m, h in owner_problems(spec, found, lookups)]
    config = spec.get("config") or {}
    out += [error(m, p, h) for p, m, h in config_problems(found, config)]
    action = specs.TriggerSpec.from_dict(spec).action
    out += [error(m, p, h) for p, m, h in placeholder_problems(found, action)]
    return out


def owner_problems(
    spec: Mapping[str, Any], found: TriggerTypeLike, lookups: Lookups
) -> Iterator[tuple[str, str, str | None]]:
    """The connected account exists, is ACTIVE and is of the trigger's toolkit; a ``user_id``
    has an ACTIVE connection for it. Each is otherwise accepted by the upsert (or fails only
    then) and the trigger never fires, or Composio disables it again right after a re-enable.
    """
    toolkit = (found.toolkit or toolkit_of(spec)).lower()
    account_id = spec.get("connected_account")
    if account_id:
        account = lookups.account(str(account_id))
        if account is None:
            yield (
                "connected_account",
                f"connected account `{account_id}` does not exist in this Composio project",
                "connect the account in Composio first, or fix the id",
            )
            return
        if account.toolkit and toolkit and account.toolkit.lower() != toolkit:
            yield (
                "connected_account",
                f"connected account `{account_id}` is a `{account.toolkit}` connection, but "
                f"`{found.slug}` is a `{toolkit}` trigger",
                f"use a `{toolkit}` connected account",
            )
        if account.is_disabled or account.status != "ACTIVE":
            state = "disabled" if account.is_disabled else account.status
            yield (
                "connected_account",
                f"connected account `{account_id}` is {state}, not ACTIVE: Composio disables "
                "its triggers",
                "reconnect the account in Composio, then reconcile again",
            )
    elif spec.get("user_id") and toolkit and not lookups.user_has(str(spec["user_id"]), toolkit):
        yield (
            "user_id",
            f"user `{spec['user_id']}` has no ACTIVE `{toolkit}` connection in this Composio "
            "project",
            f"connect a `{toolkit}` account for that user, or name a `connected_account`",
        )


def _slug_hint(spec: Mapping[str, Any], lookups: Lookups) -> str:
    slug = str(spec.get("event", ""))
    toolkit = toolkit_of(spec)
    known = list(lookups.slugs(toolkit)) if toolkit else []
    close = catalog.close_matches(slug, known)
    if close:
        return "did you mean " + " or ".join(f"`{c}`" for c in close) + "?"
    if known:
        shown = sorted(known)
        more = f" and {len(shown) - 8} more" if len(shown) > 8 else ""
        return f"`{toolkit}` trigger types: {', '.join(shown[:8])}{more}"
    return (
        f"no `{toolkit}` trigger types found; list them with `planner-operator composio "
        "trigger-types`"
    )


def shared_instances(resources: Sequence[DesiredResource]) -> list[ConfigError]:
    """Triggers that would be one Composio instance: it keeps one per slug, owner and config.

    Two keys on one instance would fight over enabling it and delete it from under each other.
    """
    first: dict[str, DesiredResource] = {}
    errors: list[ConfigError] = []
    for resource in resources:
        identity = canonical.canonical_json(canonical.subset(resource.spec, IDENTITY))
        other = first.setdefault(identity, resource)
        if other is not resource:
            errors.append(
                ConfigError(
                    f"same Composio trigger instance as `{other.key}` ({other.source}:"
                    f"{other.line}): Composio keeps one instance per trigger type, account and "
                    "config",
                    file=resource.source,
                    line=resource.line,
                    path="config",
                    hint="change the config of one of them, or merge their actions",
                )
            )
    return errors


def config_problems(
    found: TriggerTypeLike, config: Mapping[str, Any]
) -> Iterator[tuple[str, str, str | None]]:
    """Schema violations, plus keys the type does not declare (a typo Composio would ignore)."""
    schema = dict(found.config)
    validator = jsonschema.validators.validator_for(schema, default=jsonschema.Draft7Validator)
    for err in sorted(validator(schema).iter_errors(dict(config)), key=lambda e: list(e.path)):
        where = ".".join(str(p) for p in err.absolute_path)
        yield f"config.{where}" if where else "config", f"invalid config: {err.message}", None
    declared = schema.get("properties")
    if isinstance(declared, Mapping) and declared and schema.get("additionalProperties") is None:
        for key in config:
            if key not in declared:
                yield (
                    f"config.{key}",
                    f"`{key}` is not a config option of `{found.slug}`",
                    _suggest(key, declared),
                )


def placeholder_problems(
    found: TriggerTypeLike, action: specs.Action
) -> Iterator[tuple[str, str, str | None]]:
    """Placeholders that neither a variable nor the event payload can fill.

    Chat templates see the action's variables and the payload; workflow inputs see the payload
    only (the executor renders them that way: executors/actions.py).
    """
    texts: list[tuple[str, str, frozenset[str]]] = []
    if isinstance(action, specs.ChatAction):
        texts.append(("action.chat.template", action.template, frozenset(action.variables)))
    else:
        for path, text in templates.strings_in(action.input):
            texts.append((f"action.workflow.input.{path}", text, frozenset()))
    payload = dict(found.payload)
    for path, text, variables in texts:
        try:
            names = templates.parse(text).placeholders
        except TemplateError:
            continue  # the loader already reported it
        for name in dict.fromkeys(names):
            if name.split(".", 1)[0] in variables or payload_has(payload, name.split(".")):
                continue
            fields = payload.get("properties") or {}
            hint = _suggest(name, fields) or (
                "payload fields: " + ", ".join(sorted(fields)) if fields else None
            )
            message = f"placeholder `{{{name}}}` is not a field of `{found.slug}`'s payload"
            yield path, message, hint


def payload_has(schema: Mapping[str, Any], parts: list[str]) -> bool:
    """Whether a dotted path can resolve in data valid for ``schema``.

    Declared properties are followed (through anyOf/oneOf/allOf); an object or array without a
    declared shape is open, so anything below it may exist; list items take numeric parts.
    """
    if not parts:
        return True
    head, rest = parts[0], parts[1:]
    for branch in _branches(schema):
        props = branch.get("properties")
        if isinstance(props, Mapping) and head in props:
            if payload_has(props[head], rest):
                return True
            continue
        items = branch.get("items")
        is_list = branch.get("type") == "array" or items is not None
        if (
            head.isdigit()
            and is_list
            and (not isinstance(items, Mapping) or payload_has(items, rest))
        ):
            return True
        if not props and (branch.get("type") == "object" or _unconstrained(branch)):
            return True
        if branch.get("additionalProperties") not in (None, False):
            return True
    return False


def _unconstrained(schema: Mapping[str, Any]) -> bool:
    """``{}`` and the like: any value, so any path below it may exist."""
    return not any(
        k in schema for k in ("type", "anyOf", "oneOf", "allOf", "enum", "const", "$ref")
    )


def _branches(schema: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    yield schema
    for key in ("anyOf", "oneOf", "allOf"):
        for sub in schema.get(key) or ():
            if isinstance(sub, Mapping):
                yield from _branches(sub)


def _suggest(name: str, known: Mapping[str, Any]) -> str | None:
    close = difflib.get_close_matches(name.split(".", 1)[0], sorted(known), n=1, cutoff=0.7)
    return f"did you mean `{close[0]}`?" if close else None
