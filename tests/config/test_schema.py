"""`schemas/agent.schema.json`: generated from the models, committed, and never stale.

Editors validate agent files against the committed copy (via each file's modeline), so it must
match the models exactly and accept every example agent that our own loader accepts.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema  # type: ignore[import-untyped]  # no stubs in the dev extras
import pytest
from ruamel.yaml import YAML
from typer.testing import CliRunner

from planner_operator.cli.main import app
from planner_operator.config import schema
from planner_operator.reconcile import source

ROOT = Path(__file__).resolve().parents[2]
SCHEMA_FILE = ROOT / "schemas" / "agent.schema.json"
EXAMPLES = sorted((ROOT / "agents").glob("*.yaml"))
MODELINE = "# yaml-language-server: $schema=../schemas/agent.schema.json\n"


def validator() -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(json.loads(SCHEMA_FILE.read_text(encoding="utf-8")))


def test_committed_schema_is_current() -> None:
    """If this fails, run `make schema` (or `planner-operator schema -o schemas/...`)."""
    assert SCHEMA_FILE.read_text(encoding="utf-8") == schema.render_schema()


def test_schema_is_valid_draft_2020_12() -> None:
    data = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    assert data["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    jsonschema.Draft202012Validator.check_schema(data)


def test_schema_check_command(tmp_path: Path) -> None:
    runner = CliRunner()
    ok = runner.invoke(app, ["schema", "--output", str(SCHEMA_FILE), "--check"])
    assert ok.exit_code == 0
    stale = tmp_path / "agent.schema.json"
    stale.write_text("{}\n")
    result = runner.invoke(app, ["schema", "--output", str(stale), "--check"])
    assert result.exit_code == 1
    assert result.stderr == f"{stale} is stale: run `make schema`\n"


def test_there_are_example_agents() -> None:
    assert len(EXAMPLES) >= 3


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_starts_with_the_schema_modeline(path: Path) -> None:
    assert path.read_text(encoding="utf-8").startswith(MODELINE)


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_validates_against_the_json_schema(path: Path) -> None:
    data = YAML(typ="safe", pure=True).load(path.read_text(encoding="utf-8"))
    assert [e.message for e in validator().iter_errors(data)] == []


def test_examples_load_with_our_loader() -> None:
    results = source.load(source.read_paths([ROOT / "agents"]))
    assert [r.file for r in results] == [str(p) for p in EXAMPLES]
    assert [e.render() for r in results for e in r.errors] == []


def test_schema_examples_validate_both_ways() -> None:
    data = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    for example in data["examples"]:
        assert list(validator().iter_errors(example)) == []
        text = json.dumps(example).encode()
        loaded = source.load([source.SourceFile("agents/example.yaml", text, len(text))])
        assert [e.render() for e in loaded[0].errors] == []


@pytest.mark.parametrize(
    "bad",
    [
        {},
        {"name": "x", "planer": {}},
        {"name": "x", "planner": {"jobs": [{"name": "Bad_Name", "schedule": "@daily"}]}},
        {"name": "x", "planner": {"triggers": [{"name": "t", "filter": {"a": "b"}}]}},
        {"name": "x", "variables": {"1a": "x"}},
    ],
)
def test_schema_rejects_what_the_models_reject(bad: dict[str, Any]) -> None:
    assert list(validator().iter_errors(bad)) != []
