"""A plan as a GitHub pull-request comment.

A reviewer approving an agent-file change wants to know what will *happen*, not which YAML keys
moved: when each changed job fires next (in its own timezone and in UTC, with the DST nights
called out), whether it fires minutes after merge, and what the message it sends will read like.
So each change gets that preview, computed from ``now`` (passed in: rendering reads no clock).

GitHub rejects comments of 65,536 characters or more, and a rejected comment is worse than a
short one, so the output degrades in steps: per-change details for the first changes only, then
one line per change, then only the tables, always saying how much was left out and how to see
the full plan locally.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from planner_operator.core import scheduling, specs, templates
from planner_operator.errors import ConfigError, ScheduleError, TemplateError
from planner_operator.reconcile.plan import Change, Op, Plan
from planner_operator.reconcile.render import subscription as render_subscription
from planner_operator.reconcile.render import text

TITLE = "### planner-operator plan"
GITHUB_LIMIT = 65_536
FIRES = 3
OPEN_DETAILS_MAX = 10  # a short plan shows its details unfolded
LIST_CAP = 50
TABLE_ROWS_CAP = 200
QUIET_AGENTS_SHOWN = 10
NOTE_RESERVE = 400  # room kept for the "summarised" line, whose numbers are not known yet
_COLUMNS = ("create", "update", "replace", "delete", "unchanged")
_FULL_PLAN = "run `planner-operator reconcile --dry-run` locally for the full plan"
_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>|#~!])")


def render_markdown(plan: Plan, *, now: datetime, limit: int = GITHUB_LIMIT) -> str:
    """The comment, always shorter than ``limit`` characters; ``now`` must be timezone-aware."""
    if now.utcoffset() is None:
        raise ValueError("now must be timezone-aware (fire times are compared with it)")
    listed = [c for c in plan.changes if c.op is not Op.NOOP or c.blocked is not None]
    fixed = [_errors(plan), _warnings(plan), _refusals(plan), _table(plan), _blocked(plan)]
    subscription = render_subscription.markdown(plan.subscription, esc, code)
    tail = [_frozen(plan), _drift(plan), _unmanaged(plan), subscription, _merging(plan)]
    budget = limit - 1 - NOTE_RESERVE - len(_join([_head(plan, ""), *fixed, *tail]))
    lines = [_one_line(c) for c in listed]
    details, shown = _fit(listed, lines, budget, now, plan.schedule_backend)
    changes = _changes(details, lines[len(details) : shown], len(listed) - shown)
    note = _note(len(listed), len(details), shown, limit)
    out = _join([_head(plan, note), *fixed, changes, *tail])
    return out if len(out) < limit else _truncate(out, limit)


def _merging(plan: Plan) -> str:
    """What the reviewer's click does: the applier applies this plan from the merged commit."""
    if plan.load_errors:
        frozen = "; files that fail to load stay frozen: their resources are left as applied"
    else:
        frozen = ""
    if not plan.has_changes:
        return f"_Merging changes nothing remote{frozen}._"
    return (
        f"_Merging applies this plan ({esc(text.summary_line(plan).removeprefix('Plan: '))}) "
        f"from the merged commit, through `planner-operator reconcile --yes`{frozen}. Blocked "
        "changes need their flag; nothing else is touched._"
    )


def _fit(
    listed: Sequence[Change], lines: Sequence[str], budget: int, now: datetime, backend: str = ""
) -> tuple[list[str], int]:
    """Details for as many leading changes as fit while every other change keeps its line;
    if not even the lines all fit, as many lines as fit. Returns (details, changes shown)."""
    rest = sum(len(line) + 1 for line in lines)
    if rest > budget:
        shown = used = 0
        while shown < len(lines) and used + len(lines[shown]) + 1 <= budget:
            used += len(lines[shown]) + 1
            shown += 1
        return [], shown
    details: list[str] = []
    used, unfold = 0, len(listed) <= OPEN_DETAILS_MAX
    for change, line in zip(listed, lines, strict=True):
        rest -= len(line) + 1
        block = _details(change, now, unfold, backend)  # lazily: fire times are not free
        if used + len(block) + 2 + rest > budget:
            break
        details.append(block)
        used += len(block) + 2
    return details, len(listed)


def _join(sections: Sequence[str]) -> str:
    return "\n\n".join(s for s in sections if s) + "\n"


def _head(plan: Plan, note: str) -> str:
    lines = [TITLE, ""]
    if plan.revision is not None:
        lines.append(f"Revision {code(str(plan.revision))}")
        lines.append("")
    sub_blocked = plan.subscription is not None and plan.subscription.blocked is not None
    if plan.has_changes or plan.blocked or sub_blocked:
        lines.append(f"**{text.summary_line(plan)}**")
    else:
        lines.append(f"**{text.NO_CHANGES}**")
    if plan.blocked:
        lines.append(f"{len(plan.blocked)} blocked (not counted; see below).")
    if note:
        lines.extend(["", note])
    return "\n".join(lines)


def _note(total: int, detailed: int, shown: int, limit: int) -> str:
    if detailed == total:
        return ""
    hidden = total - shown
    listed = f"; {hidden} not listed at all" if hidden else ""
    return (
        f"_{total - detailed} of {total} changes summarised without details{listed}, to keep "
        f"this comment under {limit:,} characters. {_FULL_PLAN.capitalize()}._"
    )


def _truncate(out: str, limit: int) -> str:
    """Last resort when even the tables are too long (a huge limit-busting error list)."""
    marker = f"\n\n_… truncated; {_FULL_PLAN}._\n"
    room = limit - 1 - len(marker)
    if room <= 0:
        return out[: max(limit - 1, 0)]
    cut = out.rfind("\n", 0, room)
    return out[: cut if cut > 0 else room] + marker


def _capped(items: Sequence[str], cap: int = LIST_CAP, prefix: str = "- ") -> list[str]:
    lines = [f"{prefix}{item}" for item in items[:cap]]
    if len(items) > cap:
        lines.append(f"{prefix}… and {len(items) - cap} more")
    return lines


def _errors(plan: Plan) -> str:
    if not plan.load_errors:
        return ""
    files = ", ".join(code(f) for f in plan.frozen_files)
    items = [_problem(error) for error in plan.load_errors]
    lines = [
        "> [!CAUTION]",
        f"> **{len(plan.load_errors)} load error(s).** Resources of {files} are frozen: "
        "nothing there is updated or deleted.",
        ">",
        *_capped(items, prefix="> - "),
    ]
    return "\n".join(lines)


def _warnings(plan: Plan) -> str:
    """A warning per unset secret variable or type no catalog covers; nothing is frozen."""
    if not plan.warnings:
        return ""
    items = [_problem(w) for w in plan.warnings]
    lines = [
        "> [!WARNING]",
        f"> **{len(plan.warnings)} warning(s)** (nothing is frozen for these):",
        ">",
        *_capped(items, prefix="> - "),
    ]
    return "\n".join(lines)


def _problem(error: ConfigError) -> str:
    field = f" {code(error.path)}" if error.path else ""
    hint = f" _({esc(error.hint)})_" if error.hint else ""
    return f"{code(str(error.position))}{field}: {esc(error.message)}{hint}"


def _refusals(plan: Plan) -> str:
    if not plan.refusals:
        return ""
    items = _capped([esc(r) for r in plan.refusals], prefix="> - ")
    return "\n".join(["> [!WARNING]", "> **Refused:**", ">", *items])


def _table(plan: Plan) -> str:
    """Per-agent counts; agents with nothing to do fold into one row when there are many."""
    rows: dict[str, dict[str, int]] = {}
    busy: set[str] = set()
    for change in plan.changes:
        row = rows.setdefault(change.agent, dict.fromkeys(_COLUMNS, 0))
        if change.actionable:
            row[change.op.value] += 1
        elif change.op is Op.NOOP:
            row["unchanged"] += 1
        if change.op is not Op.NOOP or change.blocked is not None:
            busy.add(change.agent)
    rows = {a: r for a, r in rows.items() if any(r.values())}  # nothing at all: no row
    if not rows:
        return ""
    active = [a for a in sorted(rows) if a in busy]
    quiet = [a for a in sorted(rows) if a not in busy]
    out = [
        "| agent | create | update | replace | delete | unchanged |",
        "|---|--:|--:|--:|--:|--:|",
    ]
    out.extend(_row(esc(a), rows[a]) for a in active[:TABLE_ROWS_CAP])
    if len(active) > TABLE_ROWS_CAP:
        more = active[TABLE_ROWS_CAP:]
        out.append(_row(f"_… {len(more)} more agents_", _sum(rows[a] for a in more)))
    if len(quiet) <= QUIET_AGENTS_SHOWN:
        out.extend(_row(esc(a), rows[a]) for a in quiet)
    else:
        out.append(_row(f"_{len(quiet)} agents without changes_", _sum(rows[a] for a in quiet)))
    if len(rows) > 1:
        out.append(_row("**total**", _sum(rows.values())))
    return "\n".join(out)


def _row(label: str, counts: Mapping[str, int]) -> str:
    return "| " + " | ".join([label, *(str(counts[c]) for c in _COLUMNS)]) + " |"


def _sum(rows: Iterable[Mapping[str, int]]) -> dict[str, int]:
    total = dict.fromkeys(_COLUMNS, 0)
    for row in rows:
        for column in _COLUMNS:
            total[column] += row[column]
    return total


def _section(title: str, items: Sequence[str], cap: int = LIST_CAP) -> str:
    return "\n".join([f"#### {title}", "", *_capped(items, cap)]) if items else ""


def _blocked(plan: Plan) -> str:
    items = [f"{code(_label(c))}: {esc(c.blocked or '')}" for c in plan.blocked]
    return _section("Blocked (not counted)", items)


def _frozen(plan: Plan) -> str:
    items = [f"{code(c.key)}: {esc(c.reason)}" for c in plan.changes if text.is_frozen(c)]
    return _section("Frozen (left exactly as applied)", items)


def _drift(plan: Plan) -> str:
    items = [f"{code(d.key)} ({code(d.remote_id)}): {esc(d.what)}" for d in plan.drift]
    return _section("Drift (changed outside the operator)", items, 20)


def _unmanaged(plan: Plan) -> str:
    if not plan.unmanaged:
        return ""
    shown = ", ".join(code(f"{r.kind} {r.remote_id}") for r in plan.unmanaged[:10])
    more = f" and {len(plan.unmanaged) - 10} more" if len(plan.unmanaged) > 10 else ""
    return (
        f"**Unmanaged:** {len(plan.unmanaged)} remote object(s) not in the ledger, never "
        f"touched: {shown}{more}."
    )


def _changes(details: Sequence[str], lines: Sequence[str], hidden: int) -> str:
    if not details and not lines and not hidden:
        return ""
    parts = ["#### Changes", *details]
    more = [f"- _… and {hidden} more (not listed)_"] if hidden else []
    if lines or more:
        parts.append("\n".join([*lines, *more]))
    return "\n\n".join(parts)


def _label(change: Change) -> str:
    return f"{text.SYMBOLS[change.op]} {change.key}"


def _one_line(change: Change) -> str:
    blocked = " **(blocked)**" if change.blocked is not None else ""
    where = f" ({_where(change)})" if _where(change) else ""
    return f"- {code(_label(change))} {change.op.value}: {esc(change.reason)}{where}{blocked}"


def _where(change: Change) -> str:
    """``file:line`` of the change in the agent file (the JSON plan's ``source`` and ``line``)."""
    desired = change.desired
    if desired is None or change.op is Op.DELETE:
        return ""
    return code(f"{desired.source}:{desired.line}")


def _details(change: Change, now: datetime, unfold: bool, backend: str = "") -> str:
    summary = (
        f"<code>{html.escape(_label(change))}</code> {change.op.value}: {esc_html(change.reason)}"
    )
    lines = [f"<details{' open' if unfold else ''}><summary>{summary}</summary>", ""]
    if _where(change):
        lines.append(f"- **In:** {_where(change)}")
    spec = change.desired.spec if change.desired is not None else None
    if spec is None:
        rid = text.remote_id(change)
        lines.append(f"- remote id {code(rid)}" if rid else "- no remote object")
        applied = change.owned.spec if change.owned is not None else None
        if change.op is Op.DELETE and applied:
            lines.extend(f"- destroys {esc(f)}" for f in text.key_fields(change.kind, applied))
    elif change.kind == "job":
        fires, error = _fires(spec, now, backend)
        lines.extend(_job(spec, fires, error, now, backend))
        lines.extend(_action(change, spec, _slot(spec, fires, now)))
    else:
        lines.extend(_trigger(spec))
        lines.extend(_action(change, spec, None))
    if change.diff:
        lines.extend(["", *fenced(_diff_lines(change), "diff"), ""])
    lines.extend(f"- _{esc(note)}_" for note in change.notes)
    if change.blocked is not None:
        lines.append(f"- **blocked:** {esc(change.blocked)}")
    lines.extend(["", "</details>"] if lines[-1] else ["</details>"])
    return "\n".join(lines)


def _fires(
    spec: Mapping[str, Any], now: datetime, backend: str = ""
) -> tuple[list[scheduling.FireTime], str]:
    return text.preview_fires(spec, now, FIRES, backend=backend)


def _slot(spec: Mapping[str, Any], fires: Sequence[scheduling.FireTime], now: datetime) -> datetime:
    if fires:
        return fires[0].at
    try:
        return now.astimezone(scheduling.validate_timezone(specs.timezone(spec)))
    except ScheduleError:
        return now


def _job(
    spec: Mapping[str, Any],
    fires: Sequence[scheduling.FireTime],
    error: str,
    now: datetime,
    backend: str,
) -> list[str]:
    schedule, tz = str(spec.get("schedule")), specs.timezone(spec)
    try:
        words = esc(scheduling.describe(schedule))
    except ScheduleError:
        words = "not a valid schedule"
    lines = [f"- **Schedule:** {code(schedule)}: {words}, timezone {code(tz)}"]
    if spec.get("description"):
        lines.append(f"- **Description:** {esc(str(spec['description']))}")
    if specs.dst(spec) != specs.DEFAULT_DST:
        lines.append(f"- **DST policy:** {code(specs.dst(spec))}")
    if scheduling.effective_dst(specs.dst(spec), schedule, backend) != specs.dst(spec):
        lines.append(
            f"- **DST on {esc(backend)}:** a time the spring-forward gap skips does not fire "
            "(its cron scheduler skips it); the fire times below say so"
        )
    if not specs.enabled(spec):
        return [*lines, "- **Paused:** does not fire until `enabled: true`."]
    if error:
        return [*lines, f"- ⚠ cannot preview fire times: {esc(error)}"]
    lines.extend(["", f"| next fire | {esc(tz)} | UTC | |", "|--:|---|---|---|"])
    for number, fire in enumerate(fires, 1):
        flag = f"⚠ {esc(fire.note)}" if fire.note else ""
        local, utc = f"{fire.at:%a %Y-%m-%d %H:%M %Z}", f"{fire.utc:%a %Y-%m-%d %H:%M}"
        lines.append(f"| {number} | {local} | {utc} | {flag} |")
    lines.append("")
    minutes = text.fires_soon(fires, now)
    if minutes is not None:
        lines.append(
            f"- ⚠ **fires within an hour of merge:** first fire in about {minutes} min "
            f"({fires[0].at:%H:%M %Z})"
        )
    return lines


def _trigger(spec: Mapping[str, Any]) -> list[str]:
    if spec.get("webhook") is not None:
        webhook = specs.WebhookSpec.from_dict(spec["webhook"])
        env, scheme = webhook.secret_env, webhook.scheme
        lines = [f"- **Source:** signed webhook ({esc(scheme)}), secret from {code('$' + env)}"]
    else:
        who = spec.get("connected_account") or spec.get("user_id") or "?"
        lines = [
            f"- **Source:** {code(str(spec.get('toolkit')))} event "
            f"{code(str(spec.get('event')))} for {code(str(who))}"
        ]
    if spec.get("filter"):
        lines.append(f"- **Filter:** {code(text.show('filter', spec['filter'], 200))}")
    if not specs.enabled(spec):
        lines.append("- **Disabled:** events are ignored until `enabled: true`.")
    return lines


def _action(change: Change, spec: Mapping[str, Any], slot: datetime | None) -> list[str]:
    action = specs.action_of(spec)
    if action is None:
        return []
    if isinstance(action, specs.WorkflowAction):
        body = json.dumps(text.redact(dict(action.input)), indent=2, sort_keys=True, default=str)
        head = f"- **Workflow:** {code(action.id)} with input:"
        return [head, "", *fenced(body.splitlines(), "json"), ""]
    variables = text.redact(dict(action.variables))
    try:
        message = _sample(change, action.template, variables, slot)
    except TemplateError as exc:
        return [f"- ⚠ message template does not render: {esc(str(exc))}"]
    if slot is not None:
        how = f"as a run at {slot:%Y-%m-%d %H:%M %Z} would send it"
    else:
        how = "event fields shown as `<name>`"
    return [f"- **Sample message** ({how}):", "", *quoted(message), ""]


def _sample(change: Change, template: str, variables: dict[str, Any], slot: datetime | None) -> str:
    """Fill a chat template the way a run would; event fields a plan can't know become markers."""
    parsed = templates.parse(template)
    if slot is not None:
        builtins = templates.job_builtins(
            slot=slot, agent=change.agent, job=change.name, run_id="sample"
        )
        return templates.render(parsed, {**variables, **builtins})
    values: dict[str, Any] = dict(variables)
    for name in parsed.placeholders:
        if not templates.lookup(variables, name)[0]:
            values[name] = f"<{name}>"
    return templates.render(parsed, values)


def _diff_lines(change: Change) -> list[str]:
    out: list[str] = []
    for d in change.diff:
        if d.had_before:
            out.append(f"- {d.path}: {text.show(d.path, d.before, 200)}")
        if d.has_after:
            out.append(f"+ {d.path}: {text.show(d.path, d.after, 200)}")
    return out


# --- escaping ----------------------------------------------------------------------------------


def quoted(message: str) -> list[str]:
    """A message as a blockquote: it wraps on any screen (a code block scrolls sideways)."""
    lines = message.splitlines() or [""]
    return [f"> {esc(line)}" if line.strip() else ">" for line in lines]


def fenced(lines: Sequence[str], lang: str) -> list[str]:
    """A code block whose fence is longer than any backtick run inside, so it can't be closed."""
    body = [text.clean(line) for line in lines]
    longest = max((len(m) for line in body for m in re.findall(r"`+", line)), default=0)
    fence = "`" * max(3, longest + 1)
    return [f"{fence}{lang}", *body, fence]


def code(value: str) -> str:
    """An inline code span that survives backticks in the value (not for table cells)."""
    value = text.clean(value).replace("\n", " ")
    longest = max((len(m) for m in re.findall(r"`+", value)), default=0)
    ticks = "`" * (longest + 1)
    pad = " " if value.startswith("`") or value.endswith("`") else ""
    return f"{ticks}{pad}{value}{pad}{ticks}"


def esc(value: str) -> str:
    """Free text for markdown: no formatting, no HTML, no @-mentions pinging people."""
    value = text.clean(value).replace("\n", " ").replace("&", "&amp;")
    return _MD_SPECIAL.sub(r"\\\1", value).replace("@", "&#64;")


def esc_html(value: str) -> str:
    """Free text inside HTML (``<summary>``), where markdown escapes are not processed."""
    return html.escape(text.clean(value).replace("\n", " ")).replace("@", "&#64;")
