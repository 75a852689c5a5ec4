"""A plan as versioned JSON for machines (CI gates, bots, dashboards).

Unlike the text and markdown views, nothing is elided: no-op changes are included, every list is
complete, and keys are sorted so the same plan always serialises to the same bytes (diffable,
cacheable). The shape is a contract documented field by field in docs/plan-json.md; adding a
field keeps ``format_version`` 1, removing or changing the meaning of one bumps it. The module is
not called ``json`` so that ``import json`` inside the package keeps meaning the standard library.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from planner_operator.core.revision import Revision
from planner_operator.errors import ConfigError
from planner_operator.reconcile.apply import ApplyResult
from planner_operator.reconcile.plan import Change, Drift, FieldChange, Op, Plan
from planner_operator.reconcile.render import subscription as render_subscription
from planner_operator.reconcile.render import text

SCHEMA_VERSION = 1


def render_json(plan: Plan) -> str:
    """Deterministic, indented JSON with a trailing newline."""
    body = json.dumps(plan_to_dict(plan), sort_keys=True, indent=2, ensure_ascii=False, default=str)
    return body + "\n"


def render_applied(plan: Plan, result: ApplyResult) -> str:
    """The plan document after an apply: ``apply`` says how it went, ``ok`` covers both.

    One document, written once the apply is over, so a CI gate reading ``ok`` cannot be told
    a run succeeded when the sync that makes the writes take effect failed.
    """
    document = plan_to_dict(plan)
    document["apply"] = apply_to_dict(result)
    document["ok"] = plan.ok and result.ok
    return json.dumps(document, sort_keys=True, indent=2, ensure_ascii=False, default=str) + "\n"


def apply_to_dict(result: ApplyResult) -> dict[str, Any]:
    return {
        "ok": result.ok,
        "applied": len(result.succeeded),
        "failed": [
            {"key": i.change.key, "op": i.change.op.value, "error": i.error} for i in result.failed
        ],
        "problems": list(result.problems),
    }


def plan_to_dict(plan: Plan) -> dict[str, Any]:
    """The documented JSON document as plain Python values (also what ``render_json`` dumps)."""
    counts = plan.counts()
    summary = {op.value: counts[op] for op in (Op.CREATE, Op.UPDATE, Op.REPLACE, Op.DELETE)}
    summary["unchanged"] = sum(1 for c in plan.changes if c.op is Op.NOOP)
    summary["blocked"] = len(plan.blocked)
    return {
        "format_version": SCHEMA_VERSION,
        "revision": _revision(plan.revision),
        "summary": summary,
        "changes": [_change(c) for c in plan.changes],
        "load_errors": [_error(e) for e in plan.load_errors],
        "warnings": [_error(w) for w in plan.warnings],
        "frozen_files": list(plan.frozen_files),
        "refusals": list(plan.refusals),
        "drift": [_drift(d) for d in plan.drift],
        "unmanaged": [
            {
                "kind": r.kind,
                "remote_id": r.remote_id,
                "key": r.key,
                "state": r.state,
                "reason": r.reason,
            }
            for r in plan.unmanaged
        ],
        "subscription": render_subscription.json_value(plan.subscription),
        "managed": plan.managed,
        "ok": plan.ok,
        "has_changes": plan.has_changes,
    }


def _revision(revision: Revision | None) -> dict[str, Any] | None:
    if revision is None:
        return None
    return {
        "kind": revision.kind,
        "location": revision.location,
        "sha": revision.sha,
        "ref": revision.ref,
        "dirty": revision.dirty,
        "id": revision.id,
        "display": str(revision),
    }


def _change(change: Change) -> dict[str, Any]:
    desired = change.desired
    return {
        "op": change.op.value,
        "key": change.key,
        "kind": change.kind,
        "agent": change.agent,
        "name": change.name,
        "reason": change.reason,
        "blocked": change.blocked,
        "actionable": change.actionable,
        "notes": list(change.notes),
        "diff": [_field(d) for d in change.diff],
        "remote_id": text.remote_id(change),
        "remote_state": change.remote.state if change.remote is not None else None,
        "spec": _plain(text.redact(desired.spec)) if desired is not None else None,
        "spec_hash": desired.spec_hash if desired is not None else None,
        "applied_spec_hash": change.owned.spec_hash if change.owned is not None else None,
        "source": {"file": desired.source, "line": desired.line} if desired is not None else None,
    }


def _field(diff: FieldChange) -> dict[str, Any]:
    secret = text.is_secret_key(diff.path.rsplit(".", 1)[-1])

    def value(v: Any) -> Any:
        return text.REDACTED if secret and isinstance(v, str) else _plain(text.redact(v))

    return {
        "path": diff.path,
        "before": value(diff.before) if diff.had_before else None,
        "after": value(diff.after) if diff.has_after else None,
        "had_before": diff.had_before,
        "has_after": diff.has_after,
    }


def _error(error: ConfigError) -> dict[str, Any]:
    return {
        "file": error.position.file,
        "line": error.position.line,
        "col": error.position.col,
        "path": error.path,
        "message": error.message,
        "hint": error.hint,
        "text": str(error),
    }


def _drift(drift: Drift) -> dict[str, Any]:
    return {"key": drift.key, "remote_id": drift.remote_id, "what": drift.what}


def _plain(value: Any) -> Any:
    """Mappings and tuples as dicts and lists, so ``plan_to_dict`` equals its JSON round trip."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value
