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

from planner_operator.core.keys import Kind
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
    # the platform's agent id when the file names one (`mastra.agent`); else the file's id.
    # Stored only when set, so the specs (and hashes) of files without it never change.
    agent: str | None = None

    kind: Literal["chat"] = field(default="chat", init=False)

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"template": self.template, "variables": dict(self.variables)}
        if self.agent is not None:
            body["agent"] = self.agent
        return {"chat": body}


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
        agent = chat.get("agent")
        return ChatAction(
            template=_str(chat, "template", f"{where}.chat"),
            variables=dict(_mapping(chat.get("variables") or {}, f"{where}.chat.variables")),
            agent=_str(chat, "agent", f"{where}.chat") if agent is not None else None,
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


Part: TypeAlias = "Condition | tuple[Filter, ...] | None"


@dataclass(frozen=True)
class Filter:
    """Conditions on an event payload, all of which must hold.

    ``parts`` maps each (dotted) payload field to its :class:`Condition`, and ``all`` (every
    nested filter must match) and ``any`` (at least one must) to their members, in the order
    written (``explain`` shows them so). A group written as ``null`` is ``None``: it passes, and
    is kept so the spec's hash stays what it was.
    """

    parts: Mapping[str, Part] = field(default_factory=dict)

    @property
    def conditions(self) -> dict[str, Condition]:
        return {k: v for k, v in self.parts.items() if isinstance(v, Condition)}

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, part in self.parts.items():
            if isinstance(part, Condition):
                out[name] = part.to_dict()
            else:
                out[name] = None if part is None else [m.to_dict() for m in part]
        return out

    @classmethod
    def from_dict(cls, data: Any, where: str = "filter") -> Filter:
        parts: dict[str, Part] = {}
        for name, value in _mapping(data, where).items():
            at = f"{where}.{name}"
            if name in GROUPS:
                if value is not None and not isinstance(value, list):
                    raise _bad(at, "is a list of filters")
                parts[name] = (
                    None
                    if value is None
                    else tuple(cls.from_dict(m, f"{at}[{i}]") for i, m in enumerate(value))
                )
                continue
            condition = _mapping(value, at)
            ops = [op for op in OPERATORS if op in condition]
            if len(ops) != 1 or len(condition) != 1:
                raise _bad(at, "takes exactly one of " + ", ".join(OPERATORS))
            parts[str(name)] = Condition(ops[0], condition[ops[0]])
        return cls(parts)


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

    @classmethod
    def from_dict(cls, data: Any, where: str = "webhook") -> WebhookSpec:
        hook = _mapping(data, where)
        scheme = _choice(hook, "scheme", where, DEFAULT_SCHEME, get_args(WebhookScheme))
        return cls(secret_env=_str(hook, "secret_env", where), scheme=scheme)


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
        webhook = None if hook is None else WebhookSpec.from_dict(hook, f"{where} webhook")
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


def parse(kind: Kind, data: Mapping[str, Any]) -> Spec:
    """The stored spec of a resource of ``kind``, typed."""
    return JobSpec.from_dict(data) if kind == "job" else TriggerSpec.from_dict(data)


# -- single fields, for code that holds a partial spec ------------------------------------------
# A backend sees only what it observes (Inngest: schedule, timezone, enabled), and the planner
# and the ledger read the fields every kind shares without caring which kind they hold; neither
# can build a whole JobSpec, and neither should re-state a default.


def enabled(spec: Mapping[str, Any]) -> bool:
    """Whether a spec of either kind is enabled (a paused job, a disabled trigger: ``False``)."""
    return _bool(spec, "enabled", "spec", DEFAULT_ENABLED)


def protected(spec: Mapping[str, Any]) -> bool:
    """Whether a spec of either kind refuses deletion without a flag."""
    return _bool(spec, "protect", "spec", DEFAULT_PROTECT)


def timezone(spec: Mapping[str, Any]) -> str:
    """The IANA timezone a job's schedule is read in."""
    return _str(spec, "timezone", "job spec", DEFAULT_TIMEZONE)


def overlap(spec: Mapping[str, Any]) -> Overlap:
    """What a job does when it fires while its previous run is still running."""
    value: Overlap = _choice(spec, "overlap", "job spec", DEFAULT_OVERLAP, get_args(Overlap))
    return value


def dst(spec: Mapping[str, Any]) -> DstPolicy:
    """How a job's schedule meets daylight-saving changes."""
    value: DstPolicy = _choice(spec, "dst", "job spec", DEFAULT_DST, get_args(DstPolicy))
    return value


def action_of(spec: Mapping[str, Any]) -> Action | None:
    """The action of a spec of either kind; None when it has none (a partial spec)."""
    found = spec.get("action")
    return None if found is None else action_from_dict(found, "spec action")


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
