"""Applied specs as typed values: what one job or trigger does, with each default stated once.

A spec travels as a dict wherever it is stored or sent (the ledger's JSON, intents, the local
backend's table, the Inngest job table) because its canonical JSON is what ``spec_hash`` hashes:
two specs that hash the same must mean the same. Inside the product it is read through
:class:`JobSpec` and :class:`TriggerSpec`, so ``enabled`` is ``True`` and ``timezone`` is
``"UTC"`` unless the spec says otherwise *here*, not at every reader that would otherwise
re-state the default (and one day re-state it differently).

``to_dict`` is the canonical form ``config.desired`` hashes and the ledger stores; it keeps
exactly the keys the config models always produced, so no hash moves and no existing ledger
sees its resources as changed. ``from_dict`` reads a stored spec back (a spec stored by an
older version may lack a defaulted key: the default applies); keys it does not know are
ignored, so a spec written by a newer version still reads. A stored spec that cannot be read
raises :class:`StateError` naming the field.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, TypeAlias, get_args

from planner_operator.errors import StateError

DstPolicy = Literal["vixie", "skip", "literal"]
Overlap = Literal["allow", "skip"]
Catchup = Literal["none", "latest"]
WebhookScheme = Literal["standard", "github"]
Operator = Literal["equals", "contains", "in", "exists"]
Group = Literal["all", "any"]
Scalar: TypeAlias = str | int | float | bool

# The defaults, once: the config models (config/models.py) and the JSON Schema use these too.
DEFAULT_TIMEZONE = "UTC"
DEFAULT_ENABLED = True
DEFAULT_PROTECT = False
DEFAULT_OVERLAP: Overlap = "skip"
DEFAULT_CATCHUP: Catchup = "latest"
DEFAULT_DST: DstPolicy = "vixie"
DEFAULT_SCHEME: WebhookScheme = "standard"

OPERATORS: tuple[Operator, ...] = get_args(Operator)
GROUPS: tuple[Group, ...] = get_args(Group)


# -- actions ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ChatAction:
    """Start a chat thread with a message rendered from ``template``."""

    template: str
    variables: Mapping[str, Scalar] = field(default_factory=dict)

    kind: Literal["chat"] = field(default="chat", init=False)

    def to_dict(self) -> dict[str, Any]:
        return {"chat": {"template": self.template, "variables": dict(self.variables)}}


@dataclass(frozen=True)
class WorkflowAction:
    """Run workflow ``id``. ``variables`` are the agent's, for ``{placeholders}`` in ``input``
    (stored only when there are some, as the config always did)."""

    id: str
    input: Mapping[str, Any] = field(default_factory=dict)
    variables: Mapping[str, Scalar] = field(default_factory=dict)

    kind: Literal["workflow"] = field(default="workflow", init=False)

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"id": self.id, "input": dict(self.input)}
        if self.variables:
            body["variables"] = dict(self.variables)
        return {"workflow": body}


Action: TypeAlias = ChatAction | WorkflowAction


def action_from_dict(data: Any, where: str) -> Action:
    body = _mapping(data, where)
    chat, workflow = body.get("chat"), body.get("workflow")
    if isinstance(chat, Mapping) and workflow is None:
        return ChatAction(
            template=_str(chat, "template", f"{where}.chat"),
            variables=dict(_mapping(chat.get("variables") or {}, f"{where}.chat.variables")),
        )
    if isinstance(workflow, Mapping) and chat is None:
        at = f"{where}.workflow"
        return WorkflowAction(
            id=_str(workflow, "id", at),
            input=dict(_mapping(workflow.get("input") or {}, f"{at}.input")),
            variables=dict(_mapping(workflow.get("variables") or {}, f"{at}.variables")),
        )
    raise _bad(where, "needs exactly one of `chat` or `workflow`")


# -- filters ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Condition:
    """One test on one payload field: ``{"contains": "invoice"}`` is op contains, value."""

    op: Operator
    value: Any

    def to_dict(self) -> dict[str, Any]:
        return {self.op: self.value}


@dataclass(frozen=True)
class Filter:
    """Conditions on an event payload, all of which must hold.

    ``fields`` maps a (dotted) payload field to its condition; ``groups`` holds ``all`` (every
    nested filter must match) and ``any`` (at least one must), each ``None`` when written as
    ``null`` (which passes, and is kept so the spec's hash stays what it was).
    """

    fields: Mapping[str, Condition] = field(default_factory=dict)
    groups: Mapping[Group, tuple[Filter, ...] | None] = field(default_factory=dict)

    def parts(self) -> list[tuple[str, Condition | tuple[Filter, ...] | None]]:
        """Every field test and group, in key order (the order ``explain`` shows them)."""
        items: list[tuple[str, Condition | tuple[Filter, ...] | None]] = [
            *self.fields.items(),
            *self.groups.items(),
        ]
        return sorted(items, key=lambda item: item[0])

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {name: c.to_dict() for name, c in self.fields.items()}
        for group, members in self.groups.items():
            out[group] = None if members is None else [m.to_dict() for m in members]
        return out

    @classmethod
    def from_dict(cls, data: Any, where: str = "filter") -> Filter:
        body = _mapping(data, where)
        fields: dict[str, Condition] = {}
        groups: dict[Group, tuple[Filter, ...] | None] = {}
        for name, value in body.items():
            at = f"{where}.{name}"
            if name in GROUPS:
                members = None
                if value is not None:
                    if not isinstance(value, list):
                        raise _bad(at, "is a list of filters")
                    members = tuple(cls.from_dict(m, f"{at}[{i}]") for i, m in enumerate(value))
                groups["all" if name == "all" else "any"] = members
                continue
            condition = _mapping(value, at)
            ops = [op for op in OPERATORS if op in condition]
            if len(ops) != 1 or len(condition) != 1:
                raise _bad(at, "takes exactly one of " + ", ".join(OPERATORS))
            fields[str(name)] = Condition(ops[0], condition[ops[0]])
        return cls(fields, groups)


# -- jobs and triggers ------------------------------------------------------------------------


@dataclass(frozen=True)
class JobSpec:
    """One scheduled job, self-contained: its effective timezone, its action's variables."""

    schedule: str
    action: Action
    timezone: str = DEFAULT_TIMEZONE
    enabled: bool = DEFAULT_ENABLED
    overlap: Overlap = DEFAULT_OVERLAP
    catchup: Catchup = DEFAULT_CATCHUP
    dst: DstPolicy = DEFAULT_DST
    description: str | None = None
    protect: bool = DEFAULT_PROTECT

    def to_dict(self) -> dict[str, Any]:
        return _drop_none(
            {
                "schedule": self.schedule,
                "timezone": self.timezone,
                "enabled": self.enabled,
                "overlap": self.overlap,
                "catchup": self.catchup,
                "dst": self.dst,
                "description": self.description,
                "protect": self.protect,
                "action": self.action.to_dict(),
            }
        )

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> JobSpec:
        where = "job spec"
        body = _mapping(data, where)
        return cls(
            schedule=_str(body, "schedule", where),
            action=action_from_dict(body.get("action"), f"{where} action"),
            timezone=_str(body, "timezone", where, DEFAULT_TIMEZONE),
            enabled=_bool(body, "enabled", where, DEFAULT_ENABLED),
            overlap=_choice(body, "overlap", where, DEFAULT_OVERLAP, get_args(Overlap)),
            catchup=_choice(body, "catchup", where, DEFAULT_CATCHUP, get_args(Catchup)),
            dst=_choice(body, "dst", where, DEFAULT_DST, get_args(DstPolicy)),
            description=_optional_str(body, "description", where),
            protect=_bool(body, "protect", where, DEFAULT_PROTECT),
        )


@dataclass(frozen=True)
class WebhookSpec:
    """A generic signed webhook: the env var holding its secret (never the secret itself)."""

    secret_env: str
    scheme: WebhookScheme = DEFAULT_SCHEME

    def to_dict(self) -> dict[str, Any]:
        return {"secret_env": self.secret_env, "scheme": self.scheme}


@dataclass(frozen=True)
class TriggerSpec:
    """One event trigger: a Composio trigger instance (``event`` set) or a signed ``webhook``.

    ``config`` is the Composio trigger type's own configuration; a webhook trigger has none
    (``None``, not stored), a Composio trigger always has one (``{}`` when empty).
    """

    action: Action
    toolkit: str | None = None
    event: str | None = None
    connected_account: str | None = None
    user_id: str | None = None
    config: Mapping[str, Any] | None = None
    webhook: WebhookSpec | None = None
    filter: Filter | None = None
    enabled: bool = DEFAULT_ENABLED
    description: str | None = None
    protect: bool = DEFAULT_PROTECT

    @property
    def source(self) -> Literal["composio", "webhook"]:
        return "webhook" if self.webhook is not None else "composio"

    def to_dict(self) -> dict[str, Any]:
        return _drop_none(
            {
                "toolkit": self.toolkit,
                "event": self.event,
                "connected_account": self.connected_account,
                "user_id": self.user_id,
                "config": dict(self.config) if self.config is not None else None,
                "webhook": self.webhook.to_dict() if self.webhook is not None else None,
                "filter": self.filter.to_dict() if self.filter is not None else None,
                "enabled": self.enabled,
                "description": self.description,
                "protect": self.protect,
                "action": self.action.to_dict(),
            }
        )

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TriggerSpec:
        where = "trigger spec"
        body = _mapping(data, where)
        hook = body.get("webhook")
        webhook = None
        if hook is not None:
            hook = _mapping(hook, f"{where} webhook")
            webhook = WebhookSpec(
                secret_env=_str(hook, "secret_env", f"{where} webhook"),
                scheme=_choice(
                    hook, "scheme", f"{where} webhook", DEFAULT_SCHEME, get_args(WebhookScheme)
                ),
            )
        config = body.get("config")
        return cls(
            action=action_from_dict(body.get("action"), f"{where} action"),
            toolkit=_optional_str(body, "toolkit", where),
            event=_optional_str(body, "event", where),
            connected_account=_optional_str(body, "connected_account", where),
            user_id=_optional_str(body, "user_id", where),
            config=dict(_mapping(config, f"{where} config")) if config is not None else None,
            webhook=webhook,
            filter=(
                Filter.from_dict(body["filter"], f"{where} filter")
                if body.get("filter") is not None
                else None
            ),
            enabled=_bool(body, "enabled", where, DEFAULT_ENABLED),
            description=_optional_str(body, "description", where),
            protect=_bool(body, "protect", where, DEFAULT_PROTECT),
        )


Spec: TypeAlias = JobSpec | TriggerSpec


def enabled(spec: Mapping[str, Any]) -> bool:
    """Whether a stored spec of either kind is enabled: the one field every kind shares that
    code outside the runtime reads without caring which kind it has."""
    return _bool(spec, "enabled", "spec", DEFAULT_ENABLED)


def protected(spec: Mapping[str, Any]) -> bool:
    """Whether a stored spec of either kind refuses deletion without a flag."""
    return _bool(spec, "protect", "spec", DEFAULT_PROTECT)


# -- reading stored dicts ---------------------------------------------------------------------


def _bad(where: str, problem: str) -> StateError:
    return StateError(
        f"stored {where} {problem}: the state was written by something else or edited by hand; "
        "re-apply with `planner-operator reconcile` to rewrite it"
    )


def _mapping(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise _bad(where, f"is {type(value).__name__}, not an object")
    return value


def _str(body: Mapping[str, Any], name: str, where: str, default: str | None = None) -> str:
    value = body.get(name, default)
    if not isinstance(value, str):
        raise _bad(where, f"needs `{name}` as text" if value is None else f"`{name}` is not text")
    return value


def _optional_str(body: Mapping[str, Any], name: str, where: str) -> str | None:
    value = body.get(name)
    if value is not None and not isinstance(value, str):
        raise _bad(where, f"`{name}` is not text")
    return value


def _bool(body: Mapping[str, Any], name: str, where: str, default: bool) -> bool:
    value = body.get(name, default)
    if not isinstance(value, bool):
        raise _bad(where, f"`{name}` is not true or false")
    return value


def _choice(
    body: Mapping[str, Any], name: str, where: str, default: Any, allowed: tuple[Any, ...]
) -> Any:
    value = body.get(name, default)
    if value not in allowed:
        raise _bad(where, f"`{name}` is {value!r}, not one of {', '.join(allowed)}")
    return value


def _drop_none(values: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}
