"""Every JSON document the CLI prints besides the plan: one envelope, names, times, JSON values.

docs/cli-json.md promises `format_version` and `kind` first, snake_case keys, times with an
offset, and JSON values as JSON; this walks real output of every command against that.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from planner_operator.cli.main import app

ROOT = Path(__file__).resolve().parents[2]
TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}")


def invoke(*args: str) -> Any:
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code in (0, 1), result.output
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def applied(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    where = tmp_path_factory.mktemp("json")
    shutil.copytree(ROOT / "agents", where / "agents")
    state = ["--state-dir", str(where / "state")]
    result = CliRunner().invoke(
        app, ["reconcile", "--yes", "--path", str(where / "agents"), *state]
    )
    assert result.exit_code == 0, result.output
    for job in (
        "job-application-agent/daily-application-check",
        "sales-agent/weekly-pipeline-review",
    ):
        assert CliRunner().invoke(app, ["run-now", job, *state]).exit_code == 0
    return where / "agents", state


def documents(agents: Path, state: list[str]) -> Iterator[tuple[str, Any]]:
    yield "validate", invoke("validate", str(agents), "-f", "json")
    yield "next_runs", invoke("next-runs", str(agents), "-n", "2", "-f", "json")
    yield "status", invoke("status", "-f", "json", *state)
    yield "runs", invoke("runs", "-f", "json", *state)
    yield (
        "explain_job",
        invoke("explain", "sales-agent/weekly-pipeline-review", "-f", "json", *state),
    )


def walk(value: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    yield path, value
    if isinstance(value, dict):
        for key, item in value.items():
            yield from walk(item, f"{path}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from walk(item, f"{path}[{index}]")


def test_every_document_has_the_envelope_and_its_kind(applied: tuple[Path, list[str]]) -> None:
    for kind, doc in documents(*applied):
        assert doc["format_version"] == 1 and doc["kind"] == kind


def test_no_key_has_a_space(applied: tuple[Path, list[str]]) -> None:
    for kind, doc in documents(*applied):
        for path, value in walk(doc):
            if isinstance(value, dict):
                spaced = [k for k in value if " " in k]
                assert not spaced, f"{kind}{path}: {spaced}"


def test_times_carry_an_offset(applied: tuple[Path, list[str]]) -> None:
    """Wall-clock slot labels (`slot`, in the job's zone) are the one documented exception."""
    for kind, doc in documents(*applied):
        for path, value in walk(doc):
            if isinstance(value, str) and TIME.match(value) and not path.endswith(".slot"):
                assert re.search(r"(Z|[+-]\d{2}:\d{2})$", value), f"{kind}{path} = {value}"


def test_a_workflow_runs_input_is_json_not_a_string(applied: tuple[Path, list[str]]) -> None:
    runs = invoke("runs", "-f", "json", *applied[1])["runs"]
    workflow = next(r for r in runs if r["action"] == "workflow")
    assert isinstance(workflow["input"], dict) and workflow["input"] == json.loads(
        workflow["rendered"]
    )
    chat = next(r for r in runs if r["action"] == "chat")
    assert chat["input"] is None
