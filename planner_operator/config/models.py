"""The agent file format, as pydantic models.

These models are the single source of truth for the format: the loader validates against them,
and ``schemas/agent.schema.json`` (what editors autocomplete from) is generated from them, so
descriptions and examples here are user documentation. Everything forbids unknown keys: a typo
in a key must be an error with a did-you-mean, never a silently ignored setting.

Checks that need more than one field's value but no outside knowledge live here
(exactly one action, a trigger source that is either Composio or a webhook). Checks that need
other files or the scheduling rules live in ``config.semantic``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError

from planner_operator.core import specs

SLUG = r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$"
WORKFLOW_ID = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$"
TOOLKIT = r"^[a-z0-9][a-z0-9_-]{0,63}$"
EVENT_SLUG = r"^[A-Z][A-Z0-9_]{2,127}$"
VARIABLE_NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"
ENV_NAME = r"^[A-Z_][A-Z0-9_]*$"

# pydantic renders a dict with a key pattern as `patternProperties` alone, which lets any other
# key through in editors; the models reject such keys, so the schema must too.
_NAMES_ONLY: dict[str, Any] = {"additionalProperties": False}

Slug = Annotated[str, Field(pattern=SLUG, min_length=1, max_length=63)]
Scalar = str | int | float | bool
JsonValue = Any


OPERATORS = specs.OPERATORS
_FIELD_OF = {"in": "in_"}
COMPOSIO_FIELDS = ("toolkit", "event", "connected_account", "user_id")
RULE_ERROR = "agent_rule"


def rule_error(message: str, hint: str, *, field: str | None = None) -> PydanticCustomError:
    """A cross-field rule broken: the loader shows ``hint`` and points at ``field`` if set.

    Carried in the error's context (not the message text) so JSON output and the editor get the
    hint as its own field and the position can be the offending key, not the whole block.
    """
    context: dict[str, str] = {"hint": hint}
    if field is not None:
        context["field"] = field
    return PydanticCustomError(RULE_ERROR, message, context)


class Strict(BaseModel):
    """Base for every config model: unknown keys are errors, values are not coerced."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class ChatAction(Strict):
    """Start a new chat thread with the agent, with a message rendered from a template."""

    template: str = Field(
        min_length=1,
        description=(
            "Message that opens the thread. `{name}` and dotted `{a.b}` placeholders are filled "
            "from job built-ins (date, time, datetime, weekday, agent, job, run_id), the "
            "variables below, or the trigger's event payload; `{{` and `}}` are literal braces."
        ),
        examples=["Good morning! Check job boards for postings matching {userCriteria}."],
    )
    variables: dict[Annotated[str, Field(pattern=VARIABLE_NAME)], Scalar] = Field(
        default_factory=dict,
        description="Values for the template's own placeholders.",
        examples=[{"userCriteria": "senior Python roles, remote"}],
        json_schema_extra=_NAMES_ONLY,
    )


class WorkflowAction(Strict):
    """Run a named workflow; its input is the job input, or the event data for a trigger."""

    id: str = Field(
        pattern=WORKFLOW_ID, description="Workflow to run.", examples=["job-application-check"]
    )
    input: dict[str, JsonValue] = Field(
        default_factory=dict,
        description=(
            "Input passed to the workflow. String values may contain `{placeholders}`. For a "
            "trigger, an empty input means the whole event payload is the input."
        ),
        examples=[{"keywords": ["python"], "since": "{date}"}],
    )


class Action(Strict):
    """Exactly one of `chat` or `workflow`."""

    chat: ChatAction | None = None
    workflow: WorkflowAction | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> Action:
        if self.chat is not None and self.workflow is not None:
            raise rule_error(
                "an action needs exactly one of `chat` or `workflow`, not both",
                "keep one and move the other into its own job or trigger",
                field="workflow",
            )
        if self.chat is None and self.workflow is None:
            raise rule_error(
                "an action needs exactly one of `chat` or `workflow`, got neither",
                "add `chat: {template: ...}` or `workflow: {id: ...}`",
            )
        return self

    @property
    def kind(self) -> Literal["chat", "workflow"]:
        return "chat" if self.chat is not None else "workflow"


class Job(Strict):
    """A scheduled job: fires on a cron schedule in a timezone and runs one action."""

    name: Slug = Field(
        description="Unique within the agent; part of the resource key.",
        examples=["morning-check"],
    )
    description: str | None = Field(default=None, description="What the job is for.")
    schedule: str = Field(
        description=(
            "5-field cron (minute hour day-of-month month day-of-week) or one of @yearly, "
            "@annually, @monthly, @weekly, @daily, @midnight, @hourly."
        ),
        examples=["0 9 * * 1", "@daily", "*/15 9-17 * * mon-fri"],
    )
    timezone: str | None = Field(
        default=None,
        description="IANA timezone for this job; defaults to the agent's timezone.",
        examples=["America/New_York"],
    )
    enabled: bool = Field(
        default=specs.DEFAULT_ENABLED, description="false = paused: kept, not fired, not deleted."
    )
    overlap: specs.Overlap = Field(
        default=specs.DEFAULT_OVERLAP,
        description="What to do when the job fires while its previous run is still running.",
    )
    catchup: specs.Catchup = Field(
        default=specs.DEFAULT_CATCHUP,
        description="After downtime: `latest` runs the most recent missed slot once; `none` skips.",
    )
    dst: specs.DstPolicy = Field(
        default=specs.DEFAULT_DST,
        description=(
            "Daylight-saving policy. `vixie`: a fixed-time slot in the spring-forward gap fires "
            "once right after the jump, one in the repeated fall-back hour fires once; schedules "
            "with a wildcard hour or minute follow real elapsed time. `skip`: gap slots do not "
            "fire, repeated slots fire once. `literal`: fire whenever the wall clock shows a "
            "matching time (never in the gap, twice in the repeated hour)."
        ),
    )
    protect: bool = Field(
        default=specs.DEFAULT_PROTECT,
        description="Refuse to delete this job (even after its file is removed) without "
        "--allow-protected-delete.",
    )
    action: Action


class Condition(Strict):
    """One test on a payload field; exactly one operator."""

    equals: JsonValue = Field(default=None, description="Field equals this value.")
    contains: str | None = Field(
        default=None, description="Field (text or list) contains this text, case-insensitive."
    )
    in_: list[JsonValue] | None = Field(
        default=None, alias="in", description="Field equals one of these values."
    )
    exists: bool | None = Field(default=None, description="Field is present (true) or absent.")

    @model_validator(mode="after")
    def _one_operator(self) -> Condition:
        chosen = [o for o in OPERATORS if _FIELD_OF.get(o, o) in self.model_fields_set]
        if not chosen:
            raise rule_error(
                "a condition needs an operator",
                "use one of " + ", ".join(f"`{o}`" for o in OPERATORS),
            )
        if len(chosen) > 1:
            raise rule_error(
                "a condition takes exactly one operator, got "
                + " and ".join(f"`{o}`" for o in chosen),
                "to test several things, list one condition per item under `all:`",
                field=chosen[1],
            )
        return self


class Filter(Strict):
    """Conditions on the event payload, all of which must hold.

    Keys are payload field paths (dotted for nested fields) mapped to a condition; `all` and
    `any` combine nested filters.
    """

    model_config = ConfigDict(extra="allow", strict=True, frozen=True)
    __pydantic_extra__: dict[str, Condition] = Field(init=False)

    all: list[Filter] | None = Field(default=None, description="Every nested filter must match.")
    any: list[Filter] | None = Field(default=None, description="At least one must match.")


class Webhook(Strict):
    """A generic signed HTTP webhook (POST /webhooks/{agent}/{trigger})."""

    secret_env: str = Field(
        pattern=ENV_NAME,
        description="Environment variable holding the signing secret (never the secret itself).",
        examples=["CAREERS_WEBHOOK_SECRET"],
    )
    scheme: specs.WebhookScheme = Field(
        default=specs.DEFAULT_SCHEME,
        description="`standard`: Standard Webhooks (whsec_ base64 key); `github`: "
        "X-Hub-Signature-256.",
    )


class Trigger(Strict):
    """An event trigger: a Composio trigger instance (or a signed webhook) running one action."""

    name: Slug = Field(
        description="Unique within the agent; part of the resource key.",
        examples=["recruiter-email"],
    )
    description: str | None = None
    toolkit: str | None = Field(
        default=None, pattern=TOOLKIT, description="Composio toolkit.", examples=["gmail"]
    )
    event: str | None = Field(
        default=None,
        pattern=EVENT_SLUG,
        description="Composio trigger type slug.",
        examples=["GMAIL_NEW_GMAIL_MESSAGE"],
    )
    connected_account: str | None = Field(
        default=None, min_length=1, description="Composio connected account id.", examples=["ca_1"]
    )
    user_id: str | None = Field(
        default=None, min_length=1, description="Composio user id (instead of connected_account)."
    )
    config: dict[str, JsonValue] = Field(
        default_factory=dict,
        description="The trigger type's own configuration, checked against its schema.",
        examples=[{"labelIds": "INBOX"}],
    )
    webhook: Webhook | None = Field(
        default=None, description="A generic signed webhook instead of a Composio trigger."
    )
    filter: Filter | None = Field(default=None, description="Only events matching this run.")
    enabled: bool = Field(
        default=specs.DEFAULT_ENABLED, description="false = disabled: kept, events ignored."
    )
    protect: bool = Field(
        default=specs.DEFAULT_PROTECT, description="Refuse to delete without a flag."
    )
    action: Action

    @model_validator(mode="after")
    def _one_source(self) -> Trigger:
        composio = [f for f in COMPOSIO_FIELDS if getattr(self, f) is not None]
        composio += ["config"] if self.config else []
        if self.webhook is not None:
            if composio:
                raise rule_error(
                    "a webhook trigger takes no Composio fields",
                    "remove " + ", ".join(f"`{f}`" for f in composio) + " or remove `webhook`",
                    field=composio[0],
                )
            return self
        missing = [f for f in ("toolkit", "event") if getattr(self, f) is None]
        if missing:
            raise rule_error(
                "a trigger needs `toolkit` and `event` (a Composio trigger) or `webhook`, "
                "missing " + " and ".join(f"`{f}`" for f in missing),
                "add "
                + " and ".join(f"`{f}:`" for f in missing)
                + ", or use `webhook: {secret_env: ...}` for a generic webhook",
            )
        if self.connected_account is not None and self.user_id is not None:
            raise rule_error(
                "a Composio trigger takes one of `connected_account` or `user_id`, not both",
                "remove one of them",
                field="user_id",
            )
        if self.connected_account is None and self.user_id is None:
            raise rule_error(
                "a Composio trigger needs `connected_account` or `user_id`",
                "add `connected_account: <id>` or `user_id: <id>`",
            )
        return self

    @property
    def source(self) -> Literal["composio", "webhook"]:
        return "webhook" if self.webhook is not None else "composio"


class Planner(Strict):
    """What the agent does on its own: scheduled jobs and event triggers."""

    jobs: list[Job] = Field(default_factory=list)
    triggers: list[Trigger] = Field(default_factory=list)


class MastraRef(Strict):
    """Where this agent's chats run on a Mastra server (when `PLANNER_MASTRA_URL` is set)."""

    agent: Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[^\s/]+$")] = Field(
        description="The Mastra agent id (as `GET /api/agents` lists it).",
        examples=["salesAgent"],
    )


class AgentFile(Strict):
    """One agent: `agents/<agent-id>.yaml`."""

    id: Slug | None = Field(
        default=None,
        description="Agent id, unique across the repo; defaults to the file name without .yaml.",
        examples=["job-application-agent"],
    )
    name: str = Field(min_length=1, description="Display name.", examples=["Job Application Agent"])
    description: str | None = None
    timezone: str = Field(
        default=specs.DEFAULT_TIMEZONE,
        description="IANA timezone, the default for every job in this file.",
    )
    variables: dict[Annotated[str, Field(pattern=VARIABLE_NAME)], Scalar] = Field(
        default_factory=dict,
        description="Variables every template of this agent can use.",
        json_schema_extra=_NAMES_ONLY,
    )
    mastra: MastraRef | None = Field(
        default=None,
        description="The Mastra agent chats start on; defaults to this file's `id`.",
    )
    planner: Planner = Field(default_factory=Planner)
