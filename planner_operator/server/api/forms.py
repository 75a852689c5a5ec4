"""What the dashboard's edit dialogs need while a person types: small read-only JSON answers.

A dialog must not guess what the operator will accept. The schedule in words and its next
fires come from ``core.scheduling`` (what ``plan`` and the Planner page show), the template
check from ``config.semantic.template_problems`` (the rule a save is validated by), and the
choices (toolkits, trigger types with their config schemas, workflows, zones) from the same
catalog and registry the loader and the executors use. So a form that looks right here is a
file that loads. Nothing here writes; bad input is a 422 naming the query parameter, never a
5xx. These are reads, so ``server/auth.py`` treats them as every other read.
"""

from __future__ import annotations

import functools
import zoneinfo
from collections.abc import Callable
from datetime import datetime, time, timedelta
from typing import Annotated, Any, Literal, get_args

from fastapi import APIRouter, Query
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field

from planner_operator.config import catalog, models, semantic
from planner_operator.core import clock as clock_mod
from planner_operator.core import scheduling, specs, templates
from planner_operator.errors import ScheduleError, TemplateError

MAX_TEMPLATE = 20_000  # characters: far more than any chat message a person writes
MAX_FIRES = 20


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Fire(_Model):
    at: str = Field(description="ISO 8601 in the chosen zone, with its offset.")
    utc: str
    zone: str = Field(description="The zone's abbreviation at that instant (CET, CEST...).")
    note: str | None = Field(description="Set when DST moved or dropped this slot.")
    dst_day: bool = Field(description="The clocks change on this local day.")


class ScheduleView(_Model):
    schedule: str = Field(description="The canonical cron (a macro expanded).")
    text: str = Field(description="The schedule in words.")
    timezone: str
    fires: list[Fire]


class Variable(_Model):
    name: str
    source: Literal["built-in", "agent", "action", "payload"]


class Problem(_Model):
    message: str
    hint: str | None


class TemplateView(_Model):
    placeholders: list[str]
    checked: bool = Field(
        description="false: the values are not known in advance (an unknown trigger type or a "
        "generic webhook), so only the syntax was checked."
    )
    available: list[Variable]
    problems: list[Problem]


class EventType(_Model):
    slug: str
    name: str
    kind: str = Field(description="poll | webhook")
    config: dict[str, Any] = Field(description="The trigger config's JSON Schema.")
    fields: list[str] = Field(description="Top-level payload fields (template placeholders).")


class Toolkit(_Model):
    slug: str
    events: list[EventType]


class CatalogView(_Model):
    toolkits: list[Toolkit]
    workflows: list[str] = Field(description="Workflow ids registered on this operator.")
    timezones: list[str]
    job_builtins: list[str]
    operators: list[str] = Field(description="Filter condition operators.")
    webhook_schemes: list[str]
    webhook_path: str = Field(description="Where a generic webhook is sent, per trigger.")
    public_url: str | None = Field(description="PLANNER_PUBLIC_URL, to show the full URL.")
    composio: bool = Field(description="Composio is the trigger backend here.")


def _bad(field: str, message: str) -> RequestValidationError:
    return RequestValidationError(
        [{"type": "value_error", "loc": ("query", field), "msg": message}]
    )


def schedule_view(schedule: str, timezone: str, *, now: datetime, count: int = 5) -> ScheduleView:
    """The schedule in words and its next ``count`` fires in ``timezone``, DST days flagged."""
    try:
        zone = scheduling.validate_timezone(timezone)
    except ScheduleError as exc:
        raise _bad("timezone", str(exc)) from None
    try:
        canonical = scheduling.validate_schedule(schedule)
        fires = scheduling.next_fires(canonical, zone, start=now, count=count)
    except ScheduleError as exc:
        raise _bad("schedule", str(exc)) from None
    return ScheduleView(
        schedule=canonical,
        text=scheduling.describe(canonical),
        timezone=timezone,
        fires=[
            Fire(
                at=f.at.isoformat(),
                utc=f.utc.isoformat(),
                zone=f.at.tzname() or timezone,
                note=f.note,
                dst_day=_dst_day(f.at, zone),
            )
            for f in fires
        ],
    )


def _dst_day(at: datetime, zone: zoneinfo.ZoneInfo) -> bool:
    """The offset at the local day's start differs from the next day's start."""
    day = at.astimezone(zone).date()
    start = datetime.combine(day, time(), zone)
    end = datetime.combine(day + timedelta(days=1), time(), zone)
    return start.utcoffset() != end.utcoffset()


def template_view(
    template: str,
    *,
    kind: Literal["job", "trigger"],
    event: str | None,
    agent_variables: list[str],
    action_variables: list[str],
) -> TemplateView:
    """``template`` checked as a save would check it (``config.semantic``)."""
    available = [Variable(name=n, source="agent") for n in agent_variables]
    available += [Variable(name=n, source="action") for n in action_variables]
    known: set[str] | None = {*agent_variables, *action_variables}
    source = ""
    if kind == "job":
        available += [Variable(name=n, source="built-in") for n in sorted(templates.JOB_BUILTINS)]
        known = {*templates.JOB_BUILTINS, *(known or ())}
    else:
        found = catalog.bundled().get(event or "")
        if found is not None and found.fields:
            available += [Variable(name=n, source="payload") for n in sorted(found.fields)]
            known = {*found.fields, *(known or ())}
            source = f"`{found.slug}` payload fields: " + ", ".join(sorted(found.fields))
        else:
            known = None  # the payload is not known in advance: syntax only, as a save does
    problems = semantic.template_problems(template, known, source)
    try:
        names = list(dict.fromkeys(templates.parse(template).placeholders))
    except TemplateError:  # the syntax error is already one of the problems
        names = []
    return TemplateView(
        placeholders=names,
        checked=known is not None,
        available=available,
        problems=[Problem(message=m, hint=h) for m, h in problems],
    )


@functools.cache
def _timezones() -> list[str]:
    return sorted(z for z in zoneinfo.available_timezones() if "/" in z or z == "UTC")


def catalog_view(workflows: list[str], *, public_url: str | None, composio: bool) -> CatalogView:
    by_toolkit: dict[str, list[EventType]] = {}
    for slug, kind in sorted(catalog.bundled().items()):
        by_toolkit.setdefault(kind.toolkit, []).append(
            EventType(
                slug=slug,
                name=kind.name or slug,
                kind=kind.kind,
                config=dict(kind.config),
                fields=sorted(kind.fields),
            )
        )
    return CatalogView(
        toolkits=[Toolkit(slug=t, events=e) for t, e in sorted(by_toolkit.items())],
        workflows=sorted(workflows),
        timezones=_timezones(),
        job_builtins=sorted(templates.JOB_BUILTINS),
        operators=list(models.OPERATORS),
        webhook_schemes=list(get_args(specs.WebhookScheme)),
        webhook_path="/webhooks/{agent}/{trigger}",
        public_url=public_url.rstrip("/") if public_url else None,
        composio=composio,
    )


Names = Annotated[
    str, Query(max_length=2000, description="Comma-separated variable names.")
]  # fmt: skip


def _names(text: str) -> list[str]:
    return [n for n in (p.strip() for p in text.split(",")) if n]


def router(
    workflows: Callable[[], list[str]],
    *,
    clock: clock_mod.Clock,
    public_url: str | None,
    composio: bool,
) -> APIRouter:
    """``GET /api/forms/*``: the previews and choices of the edit dialogs."""
    api = APIRouter(prefix="/api/forms", tags=["forms"])

    @api.get("/schedule", response_model=ScheduleView, summary="A schedule in words, next fires")
    def schedule(
        schedule: Annotated[str, Query(min_length=1, max_length=200)],
        timezone: Annotated[str, Query(min_length=1, max_length=64)] = "UTC",
        count: Annotated[int, Query(ge=1, le=MAX_FIRES)] = 5,
    ) -> ScheduleView:
        """What the job dialog shows as you type: the words and the next fires in the zone."""
        return schedule_view(schedule, timezone, now=clock.now(), count=count)

    @api.get("/template", response_model=TemplateView, summary="Check a template as you type")
    def template(
        template: Annotated[str, Query(max_length=MAX_TEMPLATE)],
        kind: Literal["job", "trigger"] = "job",
        event: Annotated[str | None, Query(max_length=200)] = None,
        agent_variables: Names = "",
        action_variables: Names = "",
    ) -> TemplateView:
        """The variables a template can use and the placeholders that would have no value."""
        return template_view(
            template,
            kind=kind,
            event=event,
            agent_variables=_names(agent_variables),
            action_variables=_names(action_variables),
        )

    @api.get("/catalog", response_model=CatalogView, summary="The choices of the edit dialogs")
    def choices() -> CatalogView:
        """Toolkits and trigger types (with config schemas), workflows, zones, operators."""
        return catalog_view(workflows(), public_url=public_url, composio=composio)

    return api
