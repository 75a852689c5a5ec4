"""Machine output: documented keys, versioned, complete and deterministic."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from planner_operator.backends.base import RemoteObject
from planner_operator.errors import ConfigError
from planner_operator.reconcile.plan import Plan, plan
from planner_operator.reconcile.render import render
from planner_operator.reconcile.render.jsonout import SCHEMA_VERSION, plan_to_dict, render_json
from tests.reconcile.render import NOW, applied, job, make_plan, trigger

DOC = (Path(__file__).parents[3] / "docs" / "plan-json.md").read_text()
TOP = {
    "format_version",
    "revision",
    "summary",
    "changes",
    "load_errors",
    "warnings",
    "frozen_files",
    "refusals",
    "drift",
    "unmanaged",
    "subscription",
    "managed",
    "ok",
    "has_changes",
}


def sample_plan() -> Plan:
    a, b, c = job("careers", "a"), job("careers", "b"), job("careers", "c")
    error = ConfigError("bad", file="agents/news.yaml", line=2, col=4, path="planner", hint="fix")
    want = [job("careers", "a", schedule="0 10 * * 1"), b, trigger("careers", "t")]
    return make_plan(want, [a, b, c], errors=[error], protect=True)


def loads(plan: Plan) -> dict[str, Any]:
    doc = json.loads(render_json(plan))
    assert isinstance(doc, dict)
    return doc


def test_round_trips_with_documented_top_level_keys() -> None:
    plan = sample_plan()
    doc = loads(plan)
    assert doc == plan_to_dict(plan)
    assert set(doc) == TOP
    assert doc["format_version"] == SCHEMA_VERSION == 1
    assert render(plan, "json", now=NOW) == render_json(plan)


def test_summary_and_flags() -> None:
    doc = loads(sample_plan())
    assert doc["summary"] == {
        "create": 1,
        "update": 1,
        "replace": 0,
        "delete": 0,
        "unchanged": 1,
        "blocked": 1,
    }
    assert doc["ok"] is False
    assert doc["has_changes"] is True
    assert doc["managed"] == 3
    assert doc["frozen_files"] == ["agents/news.yaml"]
    assert doc["refusals"] == ["not deleting while 1 file(s) fail to load: agents/news.yaml"]


def test_changes_include_noops_and_every_documented_field() -> None:
    doc = loads(sample_plan())
    by_key = {c["key"]: c for c in doc["changes"]}
    assert [c["op"] for c in doc["changes"]] == ["create", "update", "delete", "no-op"]
    update = by_key["careers/jobs/a"]
    assert update["diff"] == [
        {
            "path": "schedule",
            "before": "0 9 * * 1",
            "after": "0 10 * * 1",
            "had_before": True,
            "has_after": True,
        }
    ]
    assert update["spec"]["schedule"] == "0 10 * * 1"
    assert update["remote_id"] == "rid-0"
    assert update["source"] == {"file": "agents/careers.yaml", "line": 3}
    delete = by_key["careers/jobs/c"]
    assert delete["spec"] is None
    assert delete["spec_hash"] is None
    assert delete["blocked"].startswith("not deleting while")
    assert delete["actionable"] is False
    noop = by_key["careers/jobs/b"]
    assert noop["op"] == "no-op"
    assert noop["spec_hash"] == noop["applied_spec_hash"]
    create = by_key["careers/triggers/t"]
    assert create["kind"] == "trigger"
    assert (create["agent"], create["name"]) == ("careers", "t")
    assert create["remote_id"] is None


def test_load_errors_and_revision() -> None:
    doc = loads(sample_plan())
    assert doc["load_errors"] == [
        {
            "file": "agents/news.yaml",
            "line": 2,
            "col": 4,
            "path": "planner",
            "message": "bad",
            "hint": "fix",
            "text": "agents/news.yaml:2:4: planner: bad (fix)",
        }
    ]
    assert doc["revision"]["sha"] == "0123456789abcdef0123"
    assert doc["revision"]["display"] == "0123456789ab (main)"
    assert loads(Plan(changes=()))["revision"] is None


def test_removed_field_has_no_after() -> None:
    before = job("careers", "a", description="old")
    doc = loads(make_plan([job("careers", "a")], [before]))
    (field,) = doc["changes"][0]["diff"]
    assert field == {
        "path": "description",
        "before": "old",
        "after": None,
        "had_before": True,
        "has_after": False,
    }


def test_credential_looking_values_are_redacted() -> None:
    doc = loads(make_plan([trigger("c", "t", config={"auth_token": "tok-1", "label": "x"})]))
    assert doc["changes"][0]["spec"]["config"] == {"auth_token": "<redacted>", "label": "x"}
    assert "tok-1" not in render_json(make_plan([trigger("c", "t", config={"token": "tok-1"})]))


def test_output_is_deterministic_and_sorted() -> None:
    first, second = render_json(sample_plan()), render_json(sample_plan())
    assert first == second
    assert first.endswith("}\n")
    doc = json.loads(first)
    assert list(doc) == sorted(doc)
    assert list(doc["changes"][0]) == sorted(doc["changes"][0])


def _documented(section: str) -> set[str]:
    """Keys listed in the first column of a table under ``section`` in docs/plan-json.md."""
    body = DOC.split(f"## {section}\n", 1)[1].split("\n#", 1)[0]
    return set(re.findall(r"^\| `([a-z_]+)` \|", body, flags=re.MULTILINE))


def test_every_key_is_documented() -> None:
    doc = loads(sample_plan())
    assert set(doc) == _documented("Top level")
    assert set(doc["summary"]) == _documented("`summary`")
    assert set(doc["revision"]) == _documented("`revision`")
    assert set(doc["changes"][0]) == _documented("`changes[]`")
    assert set(doc["changes"][1]["diff"][0]) == _documented("`changes[].diff[]`")
    assert set(doc["load_errors"][0]) == _documented("`load_errors[]`")
    assert "## Version policy" in DOC


def test_drift_and_unmanaged_keys_are_documented() -> None:
    a = job("careers", "a")
    entry, _ = applied(a, "rid-0")
    drifted = RemoteObject("rid-0", "job", {**a.spec, "schedule": "0 8 * * *"}, key=a.key)
    stray = RemoteObject("fn-1", "trigger", {}, state="error", reason="auth expired")
    doc = loads(plan({a.key: a}, [drifted, stray], [entry]))
    assert doc["drift"] == [
        {"key": a.key, "remote_id": "rid-0", "what": "changed remotely: schedule"}
    ]
    assert doc["unmanaged"] == [
        {
            "kind": "trigger",
            "remote_id": "fn-1",
            "key": None,
            "state": "error",
            "reason": "auth expired",
        }
    ]
    assert set(doc["drift"][0]) == _documented("`drift[]`")
    assert set(doc["unmanaged"][0]) == _documented("`unmanaged[]`")


def test_render_rejects_unknown_format() -> None:
    with pytest.raises(ValueError, match="unknown plan format"):
        render(sample_plan(), "yaml", now=NOW)  # type: ignore[arg-type]


def test_applied_document_adds_a_documented_apply_section_and_ok_covers_it() -> None:
    from planner_operator.reconcile.apply import ApplyResult, ItemResult
    from planner_operator.reconcile.render.jsonout import render_applied

    sample = sample_plan()
    [first, *_] = sample.actionable
    result = ApplyResult((ItemResult(first, True),), ("inngest: sync failed: status 500",))
    doc = json.loads(render_applied(sample, result))
    assert set(doc) == TOP | {"apply"}
    assert set(doc["apply"]) == _documented("`apply`")
    assert doc["apply"] == {
        "ok": False,
        "applied": 1,
        "failed": [],
        "problems": ["inngest: sync failed: status 500"],
    }
    assert doc["ok"] is False
