"""Events as the operator sees them: one model whatever the source, routes and filters.

A delivery is a Composio payload (any of its versions, made one :class:`payloads.Normalized`
value by the Composio adapter's ``payloads`` module) or a generic webhook's arbitrary JSON.
Everything downstream (routing, filters, templates, run history) must not care which.

``TriggerEvent`` and ``TriggerResult`` are the seed's models of one fire and its outcome; the
worker stores both (as JSON) with each run. The pure steps between a stored delivery and an
executor call live here too (read it back, build its TriggerEvent, evaluate the filter, preview
what a spec would do), so ``inbox replay --rev`` shows exactly what the worker would run.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from planner_operator.backends.composio import payloads
from planner_operator.core import canonical, jsonsafe, keys, specs, templates
from planner_operator.core.records import Delivery
from planner_operator.errors import TemplateError
from planner_operator.runtime.executors import actions

WEBHOOK_TYPE = "WEBHOOK"


class TriggerEvent(BaseModel):
    """One event that fired a trigger, as recorded in run history."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    trigger_id: str = Field(description="The trigger's resource key, <agent>/triggers/<name>.")
    agent_id: str
    trigger_type: str = Field(description="Composio trigger slug, or WEBHOOK.")
    raw_data: dict[str, Any] = Field(description="The event payload the templates see.")
    timestamp: datetime
    context: dict[str, Any] = Field(
        default_factory=dict,
        description="Delivery id, source, Composio ids, payload version, attempt.",
    )


class TriggerResult(BaseModel):
    """What one event led to: which executor ran, its data, or why nothing ran."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    success: bool
    agent_executed: bool = False
    workflow_executed: bool = False
    skipped: str | None = Field(default=None, description="Why no executor ran, if none did.")
    agent_data: dict[str, Any] | None = None
    workflow_data: Any = None
    error: str | None = None
    variables: dict[str, Any] = Field(default_factory=dict)


# -- stored deliveries ------------------------------------------------------------------------


class Route(canonical.SpecText):
    """One applied trigger: where a delivery goes.

    ``serve`` holds every applied trigger for its life, so the spec is kept as its canonical
    JSON text (decoded per delivery, for the action) beside the typed spec routing reads: the
    decoded tree of 10,000 triggers was ~24 MB of dicts and strings.
    """

    __slots__ = ("backend", "key", "remote_id", "text", "typed")

    def __init__(self, key: str, remote_id: str, backend: str, spec: Mapping[str, Any]) -> None:
        self.key = key
        self.remote_id = remote_id
        self.backend = backend
        self.text = canonical.canonical_json(spec)
        self.typed = specs.TriggerSpec.from_dict(spec)  # read once per route (rebuilt on change)

    def __repr__(self) -> str:
        return f"Route({self.key!r}, {self.remote_id!r}, {self.backend!r})"

    @property
    def agent(self) -> str:
        return keys.split_key(self.key)[0]

    @property
    def webhook(self) -> specs.WebhookSpec | None:
        return self.typed.webhook

    @property
    def enabled(self) -> bool:
        return self.typed.enabled

    @property
    def source(self) -> str:
        """The one receiver whose deliveries may reach this trigger (the inbox's ``source``).

        ``webhook``: a trigger with a ``webhook`` spec, through its own URL and secret;
        ``composio``: a Composio trigger instance, through the project's Composio webhook;
        ``local``: any other (embedded) trigger, reached only by the operator's own events.
        A delivery from another source is not for it, whatever ids it names.
        """
        if self.webhook is not None:
            return "webhook"
        return "composio" if self.backend == "composio" else "local"


@dataclass(frozen=True)
class Parsed:
    """A stored delivery read back: the payload templates see, and Composio's envelope."""

    payload: dict[str, Any]
    composio: payloads.Normalized | None = None


def parse(d: Delivery) -> Parsed:
    """Re-read a delivery's stored bytes (ingress already validated them)."""
    try:
        body = jsonsafe.loads(d.body)  # ingress's reader: a body stored before a cap, refused here
    except jsonsafe.InvalidJSON as exc:
        raise payloads.PayloadError(f"body: {exc}") from None
    if d.source == "composio":
        normalized = payloads.normalize_composio(body, d.headers.get("x-composio-webhook-version"))
        return Parsed(dict(normalized.data), normalized)
    return Parsed(body if isinstance(body, dict) else {"body": body})


def trigger_event(d: Delivery, route: Route, parsed: Parsed) -> TriggerEvent:
    envelope = parsed.composio
    kind = (envelope.trigger_slug if envelope else None) or route.typed.event
    context: dict[str, Any] = {
        "delivery_id": d.id,
        "source": d.source,
        "remote_id": route.remote_id,
        "attempt": d.attempts,
        "received_at": datetime.fromtimestamp(d.received_at, UTC).isoformat(),
    }
    if envelope is not None:
        context.update(
            version=envelope.version,
            composio_trigger_id=envelope.trigger_id,
            connected_account_id=envelope.connected_account_id,
            user_id=envelope.user_id,
            log_id=envelope.log_id,
        )
    when = (envelope.timestamp if envelope else None) or datetime.fromtimestamp(d.received_at, UTC)
    return TriggerEvent(
        trigger_id=route.key,
        agent_id=route.agent,
        trigger_type=str(kind or WEBHOOK_TYPE),
        raw_data=parsed.payload,
        timestamp=when,
        context={k: v for k, v in context.items() if v is not None},
    )


def variables(action: specs.Action, payload: Mapping[str, Any]) -> dict[str, Any]:
    """The values the action's placeholders resolved to (what a reader of the run wants)."""
    if isinstance(action, specs.ChatAction):
        sources = [action.template]
    else:
        sources = [text for _, text in templates.strings_in(action.input)]
    values = {**action.variables, **payload}
    out: dict[str, Any] = {}
    for source in sources:
        try:
            names = templates.parse(source).placeholders
        except TemplateError:
            continue
        for name in names:
            found, value = templates.lookup(values, name)
            if found:
                out[name] = value
    return out


def preview(d: Delivery, key: str, spec: Mapping[str, Any]) -> str:
    """What ``spec`` (e.g. the config at another revision) would do with ``d``: no side effect."""
    parsed = parse(d)
    if parsed.composio is not None and not parsed.composio.is_message:
        return f"{parsed.composio.type}: a lifecycle event; it only updates trigger status"
    trigger = specs.TriggerSpec.from_dict(spec)
    if not trigger.enabled:
        return f"{key}: disabled at that revision; the event would be ignored"
    if not matches(trigger.filter, parsed.payload):
        return f"{key}: the filter does not match this event; nothing would run"
    prepared = actions.prepare_trigger(key, spec, parsed.payload)
    if prepared.kind == "chat":
        return f"{key}: would start a chat thread with {prepared.agent}:\n{prepared.message}"
    return f"{key}: would run workflow {prepared.workflow} with input:\n" + json.dumps(
        prepared.input or {}, indent=2, sort_keys=True, ensure_ascii=False
    )


# -- filters ----------------------------------------------------------------------------------


def matches(flt: specs.Filter | None, payload: Mapping[str, Any]) -> bool:
    """Whether ``payload`` passes a trigger's filter.

    Field names are dotted paths (a flat key containing dots wins, as in templates); every
    condition of a filter must hold, ``all`` needs every nested filter, ``any`` at least one.
    A missing field fails every operator except ``exists: false``.
    """
    if flt is None:
        return True
    for name, part in flt.parts.items():
        if isinstance(part, specs.Condition):
            if not _condition(part, *templates.lookup(payload, name)):
                return False
        elif name == "all":
            if not all(matches(sub, payload) for sub in part or ()):
                return False
        elif part is not None and not any(matches(sub, payload) for sub in part):
            return False
    return True


@dataclass(frozen=True)
class Check:
    """One part of a filter evaluated against a payload (``explain --delivery`` prints these).

    ``condition`` is the single operator (``{"contains": "invoice"}``) of a field test, or
    ``None`` for an ``all``/``any`` group and its members, whose verdicts are in ``children``.
    """

    path: str
    passed: bool
    condition: Mapping[str, Any] | None = None
    found: bool = True
    value: Any = None
    children: tuple[Check, ...] = ()


def explain_filter(flt: specs.Filter | None, payload: Mapping[str, Any]) -> list[Check]:
    """Every top-level part of ``flt`` with its verdict; the filter passes iff all of them do
    (exactly :func:`matches`, which stops at the first failure and so cannot say which one)."""
    checks: list[Check] = []
    for name, part in (flt.parts if flt is not None else {}).items():
        if not isinstance(part, specs.Condition):
            members = tuple(
                Check(
                    f"{name}[{i}]",
                    matches(sub, payload),
                    children=tuple(explain_filter(sub, payload)),
                )
                for i, sub in enumerate(part or ())
            )
            if name == "all":
                passed = all(m.passed for m in members)
            else:
                passed = part is None or any(m.passed for m in members)
            checks.append(Check(name, passed, children=members))
            continue
        found, value = templates.lookup(payload, name)
        checks.append(
            Check(
                name,
                _condition(part, found, value),
                part.to_dict(),
                found,
                value if found else None,
            )
        )
    return checks


def _condition(condition: specs.Condition, found: bool, value: Any) -> bool:
    op, wanted = condition.op, condition.value
    if op == "exists":
        return found is bool(wanted)
    if not found:
        return False
    if op == "equals":
        return _same(value, wanted)
    if op == "in":
        return any(_same(value, option) for option in wanted or [])
    needle = str(wanted).casefold()  # contains
    if isinstance(value, list):
        return any(needle in _text(item).casefold() for item in value)
    return needle in _text(value).casefold()


def _same(a: Any, b: Any) -> bool:
    """JSON equality: ``true`` is not ``1`` (Python says it is)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a is b
    return bool(a == b)


def _text(value: Any) -> str:
    return value if isinstance(value, str) else "" if value is None else str(value)
