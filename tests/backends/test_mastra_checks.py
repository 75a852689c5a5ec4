"""Agent files checked against a real Mastra server (validate and the plan, one check).

An unknown agent or workflow is a file:line error with the names Mastra has; a workflow input
that breaks the published schema is an error at that input; locally registered workflows are
not asked about; an unreachable server is a warning, not a failure.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from planner_operator.cli.main import app
from tests.support.mastra import MastraServer

AGENT = """\
id: {agent_id}
name: Sales
{mastra}planner:
  jobs:
    - name: brief
      schedule: "0 9 * * 1"
      action:
        {action}
"""


def write(tmp_path: Path, action: str, agent_id: str = "sales-agent", mastra: str = "") -> Path:
    agents = tmp_path / "agents"
    agents.mkdir(parents=True, exist_ok=True)
    (agents / f"{agent_id}.yaml").write_text(
        AGENT.format(agent_id=agent_id, mastra=mastra, action=action)
    )
    return agents


def validate(agents: Path, monkeypatch: pytest.MonkeyPatch, url: str) -> tuple[int, str, str]:
    monkeypatch.setenv("PLANNER_MASTRA_URL", url)
    result = CliRunner().invoke(app, ["validate", str(agents)], catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def test_known_agent_and_workflow_pass(
    mastra: MastraServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    agents = write(tmp_path, 'chat: {template: "hi"}')
    assert validate(agents, monkeypatch, mastra.url)[0] == 0
    other = write(tmp_path / "b", "workflow: {id: sumNumbers, input: {a: 1, b: 2}}")
    assert validate(other, monkeypatch, mastra.url)[0] == 0


def test_an_unknown_agent_is_an_error_at_its_line_with_the_closest_names(
    mastra: MastraServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    agents = write(tmp_path, 'chat: {template: "hi"}', agent_id="sales-agnt")
    code, out, _ = validate(agents, monkeypatch, mastra.url)
    assert code == 1
    assert "sales-agnt.yaml:5:" in out
    assert "Mastra has no agent `sales-agnt` (named by the file's `id`" in out
    assert "did you mean `sales-agent`?" in out


def test_mastra_agent_names_the_agent(
    mastra: MastraServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    agents = write(
        tmp_path,
        'chat: {template: "hi"}',
        agent_id="sales",
        mastra="mastra: {agent: sales-agent}\n",
    )
    assert validate(agents, monkeypatch, mastra.url)[0] == 0
    wrong = write(
        tmp_path / "w", 'chat: {template: "hi"}', agent_id="x", mastra="mastra: {agent: nope}\n"
    )
    code, out, _ = validate(wrong, monkeypatch, mastra.url)
    assert code == 1 and "Mastra has no agent `nope` (named by `mastra.agent`)" in out


def test_an_unknown_workflow_and_a_bad_input_are_errors(
    mastra: MastraServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    agents = write(tmp_path, "workflow: {id: sum-number, input: {}}")
    code, out, _ = validate(agents, monkeypatch, mastra.url)
    assert code == 1 and "Mastra serves no workflow `sum-number`" in out
    assert "did you mean `sum-numbers`" in out
    bad = write(tmp_path / "b", 'workflow: {id: sum-numbers, input: {a: "one", b: "{run_id}"}}')
    code, out, _ = validate(bad, monkeypatch, mastra.url)
    assert code == 1
    assert "action.workflow.input.a: input does not match Mastra workflow `sum-numbers`" in out
    assert "'one' is not of type 'number'" in out
    assert "input.b" not in out  # a placeholder is filled at run time: not judged now


def test_a_locally_registered_workflow_is_not_asked_about(
    mastra: MastraServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PLANNER_WORKFLOWS", "digest=tests.fakes:nothing")
    agents = write(tmp_path, "workflow: {id: digest, input: {}}")
    assert validate(agents, monkeypatch, mastra.url)[0] == 0


def test_an_unreachable_server_is_a_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    agents = write(tmp_path, 'chat: {template: "hi"}', agent_id="anyone")
    code, out, err = validate(agents, monkeypatch, "http://127.0.0.1:9/api")
    assert code == 0, out
    assert "warning: Mastra not checked" in err and "127.0.0.1:9" in err
