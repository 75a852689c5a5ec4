"""A plan for a terminal, laid out like ``terraform plan``.

People who run infrastructure tools already read ``+``/``~``/``-/+``/``-`` and the closing
``Plan: N to create...`` line without thinking, so the output borrows both. What a reviewer can
act on comes first (files that failed to load, refused deletes, drift), then the changes, then the
one-line summary a script can grep. Unchanged resources are counted, never listed: a no-op plan of
thousands of resources must fit on a screen. Frozen ones are the exception, because "left alone
since its file is broken" is news.

The helpers at the bottom (``compact``, ``redact``, ``summary_line``...) are shared by the
markdown and JSON renderers so all three agree on what a value looks like and what is hidden.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from planner_operator.backends.base import REPLACE_FIELDS
from planner_operator.core import scheduling, specs
from planner_operator.errors import ScheduleError
from planner_operator.reconcile.plan import Change, FieldChange, Op, Plan
from planner_operator.reconcile.render import subscription as render_subscription

SYMBOLS: Mapping[Op, str] = {
    Op.CREATE: "+",
    Op.UPDATE: "~",
    Op.REPLACE: "-/+",
    Op.DELETE: "-",
    Op.NOOP: "=",
}
NO_CHANGES = "No changes. Remote state matches the agent files."
UNMANAGED_SHOWN = 5
VALUE_WIDTH = 80

_ANSI = {
    "green": "32",
    "yellow": "33",
    "red": "31",
    "magenta": "35",
    "bold": "1",
    "dim": "2",
    "bold red": "1;31",
}
_OP_STYLE: Mapping[Op, str] = {
    Op.CREATE: "green",
    Op.UPDATE: "yellow",
    Op.REPLACE: "magenta",
    Op.DELETE: "red",
    Op.NOOP: "dim",
}
# Control characters (C0 but newline and tab, DEL, C1) could smuggle escape sequences into a
# terminal through a reason or an error message quoting user text.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
# Keys whose string values are treated as credentials. Specs hold none by design (a webhook holds
# the *name* of its secret's env var), but a plan is pasted into CI logs and PRs, so a token that
# slipped into a trigger config must not travel with it. ``*_env`` keys hold names: shown.
_SECRET_WORD = re.compile(
    r"(^|[_.-])(secret|password|passwd|token|apikey|api_key|private_key|credentials?)($|[_.-])",
    re.IGNORECASE,
)
REDACTED = "<redacted>"


def render_text(plan: Plan, *, color: bool = False, now: datetime | None = None) -> str:
    """The whole plan as terminal text; ANSI colour only when ``color`` is true.

    With ``now``, each created or changed job shows its next fires (its timezone and UTC, DST
    nights flagged) and a warning when the first one is within the hour, as the markdown plan
    does: a reviewer at a terminal should not learn less than one reading the PR comment.
    """
    paint = _Painter(color)
    blocks: list[list[str]] = []
    if plan.revision is not None:
        blocks.append([paint("bold", f"Plan for {clean(str(plan.revision))}")])
    notices = (
        _errors(plan, paint),
        _warnings(plan, paint),
        _refusals(plan, paint),
        _drift(plan),
        _unmanaged(plan),
    )
    blocks.extend(block for block in notices if block)
    listed = [c for c in plan.changes if c.op is not Op.NOOP or c.blocked is not None]
    if listed:
        lines = ["Planned changes (+ create, ~ update, -/+ replace, - delete):"]
        for change in listed:
            lines.extend(["", *_change(change, paint, now, plan.schedule_backend)])
        blocks.append(lines)
    frozen = [c for c in plan.changes if is_frozen(c) and c.blocked is None]
    if frozen:
        lines = [paint("bold", "Frozen (left exactly as applied):")]
        lines.extend(f"  {c.key}  ({clean(c.reason)})" for c in frozen)
        blocks.append(lines)
    if plan.subscription is not None:
        blocks.append([clean(line) for line in render_subscription.text_lines(plan.subscription)])
    blocks.append(_footer(plan, paint))
    out = "\n\n".join("\n".join(block) for block in blocks) + "\n"
    return out if color else _CONTROL.sub("?", out)


def _errors(plan: Plan, paint: _Painter) -> list[str]:
    if not plan.load_errors:
        return []
    lines = [paint("bold red", f"Load errors ({len(plan.load_errors)}):")]
    lines.extend(f"  {clean(str(error))}" for error in plan.load_errors)
    if plan.frozen_files:
        files = ", ".join(plan.frozen_files)
        lines.append(f"  Resources of {clean(files)} are frozen: not updated, not deleted.")
    return lines


def _warnings(plan: Plan, paint: _Painter) -> list[str]:
    """What stops nothing but needs a look: no file is frozen for these."""
    if not plan.warnings:
        return []
    lines = [paint("yellow", f"Warnings ({len(plan.warnings)}):")]
    lines.extend(f"  {clean(str(warning))}" for warning in plan.warnings)
    return lines


def _refusals(plan: Plan, paint: _Painter) -> list[str]:
    if not plan.refusals:
        return []
    return [paint("bold red", "Refused:"), *(f"  ! {clean(r)}" for r in plan.refusals)]


def _drift(plan: Plan) -> list[str]:
    if not plan.drift:
        return []
    lines = [f"Drift (changed outside the operator, {len(plan.drift)}):"]
    lines.extend(f"  {d.key} ({clean(d.remote_id)}): {clean(d.what)}" for d in plan.drift)
    return lines


def _unmanaged(plan: Plan) -> list[str]:
    if not plan.unmanaged:
        return []
    shown = ", ".join(f"{r.kind} {clean(r.remote_id)}" for r in plan.unmanaged[:UNMANAGED_SHOWN])
    more = len(plan.unmanaged) - UNMANAGED_SHOWN
    tail = f", and {more} more" if more > 0 else ""
    return [
        f"Unmanaged: {len(plan.unmanaged)} remote object(s) not in the ledger, never touched: "
        f"{shown}{tail}"
    ]


def _change(
    change: Change, paint: _Painter, now: datetime | None = None, backend: str = ""
) -> list[str]:
    style = _OP_STYLE[change.op]
    head = f"  {paint(style, SYMBOLS[change.op])} {paint('bold', change.key)}"
    lines = [f"{head}  ({clean(change.reason)})"]
    if change.op is Op.CREATE and change.desired is not None:
        lines.extend(f"      {line}" for line in key_fields(change.kind, change.desired.spec))
    forced = REPLACE_FIELDS[change.kind] if change.op is Op.REPLACE else frozenset()
    lines.extend(_field(d, paint, forced) for d in change.diff)
    rid = remote_id(change)
    if change.op is Op.DELETE:
        # what is destroyed, as Terraform lists a destroyed resource's attributes
        applied = change.owned.spec if change.owned is not None else None
        if applied:
            fields = key_fields(change.kind, applied)
            lines.extend(f"      {paint('red', '-')} {clean(line)}" for line in fields)
        if rid:
            lines.append(f"      # remote id {clean(rid)}")
    if change.desired is not None and change.op is not Op.DELETE:
        lines.append(f"      # {clean(change.desired.source)}:{change.desired.line}")
    if now is not None and change.kind == "job" and change.desired is not None:
        lines.extend(_fire_lines(change, paint, now, backend))
    lines.extend(f"      # {clean(note)}" for note in change.notes)
    if change.blocked is not None:
        lines.append("      " + paint("bold red", f"! blocked: {clean(change.blocked)}"))
    return lines


def _fire_lines(change: Change, paint: _Painter, now: datetime, backend: str) -> list[str]:
    assert change.desired is not None
    spec = change.desired.spec
    if change.op is Op.DELETE or not specs.enabled(spec):
        return []
    fires, error = preview_fires(spec, now, backend=backend)
    if error:
        return ["      " + paint("bold red", f"! cannot preview fire times: {clean(error)}")]
    lines = []
    for number, fire in enumerate(fires):
        label = "next fires:" if number == 0 else ""
        flag = "  " + paint("yellow", f"! {clean(fire.note)}") if fire.note else ""
        lines.append(
            f"      {label:<12}{fire.at:%a %Y-%m-%d %H:%M %Z}  ({fire.utc:%H:%M} UTC){flag}"
        )
    minutes = fires_soon(fires, now)
    if minutes is not None:
        warn = f"! fires within an hour: first fire in about {minutes} min"
        lines.append("      " + paint("yellow", warn))
    return lines


def _field(diff: FieldChange, paint: _Painter, forced: frozenset[str]) -> str:
    suffix = "  # forces replacement" if diff.path.split(".", 1)[0] in forced else ""
    if not diff.had_before:
        body = f"{paint('green', '+')} {diff.path}: {show(diff.path, diff.after)}"
    elif not diff.has_after:
        body = f"{paint('red', '-')} {diff.path}: {show(diff.path, diff.before)}"
    else:
        before, after = show(diff.path, diff.before), show(diff.path, diff.after)
        body = f"{paint('yellow', '~')} {diff.path}: {before} -> {after}"
    return f"      {body}{suffix}"


def _footer(plan: Plan, paint: _Painter) -> list[str]:
    unchanged = sum(1 for c in plan.changes if c.op is Op.NOOP)
    blocked = len(plan.blocked)
    lines = [f"{unchanged} unchanged."] if unchanged else []
    sub = plan.subscription
    sub_blocked = sub is not None and sub.blocked is not None
    if not plan.has_changes and not blocked and not sub_blocked:
        return [*lines, paint("bold", NO_CHANGES)]
    lines.append(paint("bold", summary_line(plan)))
    if blocked:
        noun = "change" if blocked == 1 else "changes"
        lines.append(paint("bold red", f"{blocked} {noun} blocked (not counted above)."))
    if sub is not None and sub_blocked:
        lines.append(paint("bold red", f"{render_subscription.title(sub)}: blocked (see above)."))
    return lines


class _Painter:
    """Wraps text in ANSI colour, or returns it untouched so plain output has no escapes."""

    def __init__(self, color: bool) -> None:
        self.color = color

    def __call__(self, style: str, text: str) -> str:
        if not self.color:
            return text
        return f"\x1b[{_ANSI[style]}m{text}\x1b[0m"


# --- shared with the other renderers -----------------------------------------------------------


def summary_line(plan: Plan) -> str:
    """Terraform's closing line, counting only what an apply would actually do."""
    counts = plan.counts()
    return (
        f"Plan: {counts[Op.CREATE]} to create, {counts[Op.UPDATE]} to update, "
        f"{counts[Op.REPLACE]} to replace, {counts[Op.DELETE]} to delete."
        + render_subscription.summary(plan.subscription)
    )


FIRES = 3
SOON = timedelta(hours=1)


def preview_fires(
    spec: Mapping[str, Any], now: datetime, count: int = FIRES, *, backend: str = ""
) -> tuple[list[scheduling.FireTime], str]:
    """The next ``count`` fires of a job spec on ``backend`` (``scheduling.effective_dst``),
    or the reason there are none to show."""
    try:
        fires = scheduling.next_fires(
            str(spec.get("schedule")),
            specs.timezone(spec),
            start=now,
            count=count,
            dst=specs.dst(spec),
            backend=backend,
        )
    except ScheduleError as exc:
        return [], str(exc)
    return fires, ""


def fires_soon(fires: Sequence[scheduling.FireTime], now: datetime) -> int | None:
    """Minutes until the first fire when that is within the hour (a merge starts it soon)."""
    if not fires or fires[0].utc - now > SOON:
        return None
    return max(1, round((fires[0].utc - now).total_seconds() / 60))


def is_frozen(change: Change) -> bool:
    return change.op is Op.NOOP and any("frozen" in note for note in change.notes)


def remote_id(change: Change) -> str | None:
    """The object a change acts on: what the backend reported, else what the ledger recorded."""
    if change.remote is not None:
        return change.remote.remote_id
    return change.owned.remote_id if change.owned is not None else None


def action_kind(spec: Mapping[str, Any]) -> str | None:
    action = specs.action_of(spec)
    return action.kind if action is not None else None


def key_fields(kind: str, spec: Mapping[str, Any]) -> list[str]:
    """The few fields that say what a new resource is, without its whole spec."""
    lines: list[str] = []
    if kind == "job":
        tz = specs.timezone(spec)
        lines.append(f"schedule: {show('schedule', spec.get('schedule'))} ({tz})")
    elif spec.get("webhook") is not None:
        webhook = specs.WebhookSpec.from_dict(spec["webhook"])
        lines.append(f"webhook: secret from ${webhook.secret_env} ({webhook.scheme})")
    else:
        lines.append(f"event: {show('event', spec.get('event'))} ({spec.get('toolkit', '?')})")
    action = specs.action_of(spec)
    if isinstance(action, specs.ChatAction):
        lines.append(f"action: chat {show('template', action.template, 60)}")
    elif isinstance(action, specs.WorkflowAction):
        lines.append(f"action: workflow {show('id', action.id)}")
    return lines


def show(path: str, value: Any, width: int = VALUE_WIDTH) -> str:
    """A value as compact JSON, redacted by its field name, cut to ``width`` characters."""
    last = path.rsplit(".", 1)[-1]
    if isinstance(value, str) and is_secret_key(last):
        return json.dumps(REDACTED)
    return compact(redact(value), width)


def compact(value: Any, width: int = VALUE_WIDTH) -> str:
    """One-line JSON (control characters escaped), truncated with an ellipsis."""
    text = json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)
    return text if len(text) <= width else text[: width - 1] + "…"


def redact(value: Any) -> Any:
    """A copy of a JSON-like value with credential-looking string fields replaced."""
    if isinstance(value, Mapping):
        return {
            k: REDACTED if isinstance(v, str) and is_secret_key(str(k)) else redact(v)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [redact(v) for v in value]
    return value


def is_secret_key(name: str) -> bool:
    return not name.lower().endswith("_env") and bool(_SECRET_WORD.search(name))


def clean(text: str) -> str:
    """Free text (reasons, errors) with control characters neutralised."""
    return _CONTROL.sub("?", text)
