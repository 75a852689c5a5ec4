"""The delivery subscription's part of a plan, for each renderer (text, markdown, json).

One module for the three so they agree: what the subscription is, what would change field by
field, whether the change is refused (a subscription another app set) and what still stops
deliveries (no public URL, no signing secret). The secret itself is never part of a plan.
"""

from __future__ import annotations

from typing import Any

from planner_operator.reconcile.subscription import SubscriptionChange

SYMBOL = {"create": "+", "update": "~", "no-op": "="}


def title(change: SubscriptionChange) -> str:
    return f"{change.state.backend.capitalize()} webhook subscription"


def where(change: SubscriptionChange) -> str:
    remote = change.state.remote
    return remote.id if remote is not None else "(new)"


def text_lines(change: SubscriptionChange) -> list[str]:
    """Plain lines (the text renderer paints and cleans them)."""
    lines = [f"{title(change)}:", f"  {SYMBOL[change.op]} {where(change)}  ({change.reason})"]
    remote = change.state.remote
    if change.op == "no-op" and remote is not None:
        lines.append(f"      {remote.url} {remote.version}")
    for field, before, after in change.diff:
        lines.append(f"      {field}: {before or '(none)'} -> {after}")
    lines.extend(f"      note: {n}" for n in change.notes)
    if change.blocked:
        lines.append(f"      ! blocked: {change.blocked}")
    lines.extend(f"  problem: {p}" for p in change.problems)
    return lines


def summary(change: SubscriptionChange | None) -> str:
    """What the closing line adds: `` Webhook subscription: update.`` when it would change."""
    if change is None or not change.actionable:
        return ""
    return f" {title(change)}: {change.op}."


def markdown(change: SubscriptionChange | None, esc: Any, code: Any) -> str:
    """A section; ``esc``/``code`` are the markdown renderer's escaping helpers."""
    if change is None:
        return ""
    lines = [f"**{title(change)}** {code(where(change))}: {esc(change.op)} ({esc(change.reason)})"]
    if change.diff:
        lines += ["", "| field | now | planned |", "|---|---|---|"]
        lines += [f"| {f} | {code(b) if b else '—'} | {code(a)} |" for f, b, a in change.diff]
    if change.blocked:
        lines += ["", "> [!WARNING]", f"> **Blocked:** {esc(change.blocked)}"]
    lines += [f"- note: {esc(n)}" for n in change.notes]
    lines += [f"- problem: {esc(p)}" for p in change.problems]
    return "\n".join(lines)


def json_value(change: SubscriptionChange | None) -> dict[str, Any] | None:
    if change is None:
        return None
    remote = change.state.remote
    return {
        "backend": change.state.backend,
        "op": change.op,
        "reason": change.reason,
        "actionable": change.actionable,
        "blocked": change.blocked,
        "remote": None
        if remote is None
        else {
            "id": remote.id,
            "url": remote.url,
            "version": remote.version,
            "events": sorted(remote.events),
        },
        "planned": {
            "url": change.state.url,
            "version": change.state.version,
            "events": sorted(change.state.events),
        },
        "owned": change.state.owned,
        "secret": change.state.secret,
        "diff": [{"field": f, "before": b or None, "after": a} for f, b, a in change.diff],
        "notes": list(change.notes),
        "problems": list(change.problems),
    }
