"""`planner-operator validate`: exit 0 valid / 1 invalid, text, JSON and GitHub annotations.

Through typer's CliRunner for the formats, and as a real subprocess for what a CI job or the
pre-commit hook sees: the installed entry point, the exit code and no traceback.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from ruamel.yaml import YAML
from typer.testing import CliRunner

from planner_operator.cli.main import app

ROOT = Path(__file__).resolve().parents[2]
EXE = Path(sys.executable).with_name("planner-operator")

GOOD = """\
name: Good
planner:
  jobs:
    - name: daily
      schedule: '@daily'
      action: {chat: {template: 'Report for {date}'}}
"""
BAD = """\
name: Bad
planner:
  jobs:
    - name: daily
      schedule: '@daily'
      action: {chat: {template: 'Hi {usr}'}}
      overlap: skp
"""
BAD_ERRORS = [
    "planner.jobs[0].overlap: expected one of `allow`, `skip`, got text `skp` "
    "(did you mean `skip`?)",
]


def invoke(*args: str | Path) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, ["validate", *map(str, args)], catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def agents(tmp_path: Path) -> Path:
    directory = tmp_path / "agents"
    directory.mkdir()
    (directory / "good.yaml").write_text(GOOD)
    return directory


def test_valid_directory(agents: Path) -> None:
    code, out, _ = invoke(agents)
    assert (code, out) == (0, "1 file(s) valid: 1 job(s), 0 trigger(s).\n")


def test_invalid_file_text(agents: Path) -> None:
    bad = agents / "bad.yaml"
    bad.write_text(BAD)
    code, out, _ = invoke(agents)
    assert code == 1
    assert out.splitlines() == [
        f"{bad}:7:16: {BAD_ERRORS[0]}",
        "2 file(s) checked: 1 invalid, 1 error(s).",
    ]


def test_semantic_errors_only_after_the_schema_passes(agents: Path) -> None:
    """The template error in BAD shows once the schema error is fixed."""
    bad = agents / "bad.yaml"
    bad.write_text(BAD.replace("      overlap: skp\n", ""))
    code, out, _ = invoke(bad)
    assert code == 1
    assert out.splitlines()[0] == (
        f"{bad}:6:33: planner.jobs[0].action.chat.template: placeholder `{{usr}}` has no value "
        "(add it to the action's `variables` or the agent's `variables`; built-ins are agent, "
        "date, datetime, job, run_id, time, weekday)"
    )


def test_json_format(agents: Path) -> None:
    bad = agents / "bad.yaml"
    bad.write_text(BAD)
    code, out, _ = invoke(agents, "--format", "json")
    assert code == 1
    assert json.loads(out) == {
        "format_version": 1,
        "kind": "validate",
        "ok": False,
        "files": [
            {
                "file": str(bad),
                "agent": None,
                "ok": False,
                "errors": [
                    {
                        "file": str(bad),
                        "line": 7,
                        "col": 16,
                        "path": "planner.jobs[0].overlap",
                        "message": "expected one of `allow`, `skip`, got text `skp`",
                        "hint": "did you mean `skip`?",
                    }
                ],
                "warnings": [],
            },
            {
                "file": str(agents / "good.yaml"),
                "agent": "good",
                "ok": True,
                "errors": [],
                "warnings": [],
            },
        ],
    }


def test_json_format_valid(agents: Path) -> None:
    code, out, _ = invoke(agents, "-f", "json")
    assert code == 0
    assert json.loads(out)["ok"] is True


def test_github_format(agents: Path) -> None:
    bad = agents / "bad.yaml"
    bad.write_text(BAD)
    code, out, _ = invoke(agents, "--format", "github")
    assert code == 1
    file = str(bad).replace(":", "%3A").replace(",", "%2C")
    assert out.splitlines() == [
        f"::error file={file},line=7,col=16::planner.jobs[0].overlap: expected one of `allow`, "
        "`skip`, got text `skp` (did you mean `skip`?)"
    ]


def test_github_format_escapes_properties_and_message(tmp_path: Path) -> None:
    weird = tmp_path / "a,b:c.yaml"
    weird.write_text("name: Demo\ndescription: 100% [\n")
    code, out, _ = invoke(weird, "--format", "github")
    assert code == 1
    line = out.strip()
    assert line.startswith("::error file=")
    assert "a%2Cb%3Ac.yaml,line=" in line
    assert "\n" not in line


def test_github_format_valid_prints_nothing(agents: Path) -> None:
    assert invoke(agents, "--format", "github") == (0, "", "")


def test_files_and_directories_mixed(agents: Path, tmp_path: Path) -> None:
    extra = tmp_path / "extra.yml"
    extra.write_text("name: Extra\n")
    code, out, _ = invoke(agents, extra)
    assert (code, out) == (0, "2 file(s) valid: 1 job(s), 0 trigger(s).\n")


def test_a_file_named_twice_is_not_its_own_duplicate(agents: Path) -> None:
    code, out, _ = invoke(agents, agents / "good.yaml", agents / ".." / "agents" / "good.yaml")
    assert code == 0, out
    assert "already used" not in out and out.strip().endswith(
        "1 file(s) valid: 1 job(s), 0 trigger(s)."
    )


def test_every_file_is_reported_even_with_broken_ones(agents: Path) -> None:
    (agents / "a-empty.yaml").write_text("")
    (agents / "b-list.yaml").write_bytes(b"- \xff\n")
    (agents / "c-dup.yaml").write_text("id: good\nname: Dup\n")
    code, out, _ = invoke(agents)
    assert code == 1
    lines = out.splitlines()
    # c-dup.yaml sorts first, so it keeps the id `good` and good.yaml is the duplicate.
    assert [line.split(":", 1)[0] for line in lines[:-1]] == [
        str(agents / "a-empty.yaml"),
        str(agents / "b-list.yaml"),
        str(agents / "good.yaml"),
    ]
    assert lines[-1] == "4 file(s) checked: 3 invalid, 3 error(s)."


def test_defaults_to_agents_directory(agents: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(agents.parent)
    result = CliRunner().invoke(app, ["validate"])
    assert (result.exit_code, result.stdout) == (0, "1 file(s) valid: 1 job(s), 0 trigger(s).\n")


def test_missing_path(tmp_path: Path) -> None:
    code, out, err = invoke(tmp_path / "nope")
    assert (code, out) == (1, "")
    assert err == f"error: {tmp_path / 'nope'}: no such file or directory\n"


def test_directory_without_agent_files(tmp_path: Path) -> None:
    code, _, err = invoke(tmp_path)
    assert code == 1
    assert err == f"error: no agent files (*.yaml, *.yml) in {tmp_path}\n"


def test_unknown_format(agents: Path) -> None:
    result = CliRunner().invoke(app, ["validate", str(agents), "--format", "xml"])
    assert result.exit_code == 2
    assert "Traceback" not in result.output


# --- the real command ----------------------------------------------------------------------


def run(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(EXE), *args], cwd=cwd, capture_output=True, text=True, timeout=60, check=False
    )


def test_subprocess_validates_the_example_agents() -> None:
    done = run("validate", "agents")
    assert done.returncode == 0, done.stdout + done.stderr
    assert re.fullmatch(r"\d+ file\(s\) valid: \d+ job\(s\), \d+ trigger\(s\)\.\n", done.stdout)
    assert done.stderr == ""


def test_subprocess_broken_file_exits_1_without_traceback(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_bytes(b"name: [unclosed\n\x00\xff planner: !!python/object:os.system {}\n")
    done = run("validate", str(broken), "--format", "github")
    assert done.returncode == 1
    assert "Traceback" not in done.stderr + done.stdout
    assert done.stdout.startswith(f"::error file={broken},line=2,col=")


# --- pre-commit ----------------------------------------------------------------------------


def test_pre_commit_hook_definition() -> None:
    hooks = YAML(typ="safe").load((ROOT / ".pre-commit-hooks.yaml").read_text())
    assert len(hooks) == 1
    hook = hooks[0]
    assert hook["id"] == "planner-operator-validate"
    assert hook["entry"] == "planner-operator validate"
    assert hook["language"] == "python"
    assert hook["files"] == r"^agents/.*\.ya?ml$"
    # The whole directory is checked: agent ids must be unique across all files.
    assert hook["pass_filenames"] is False


HOOKS = """\
name: Hooks
planner:
  triggers:
    - name: deploy
      webhook: {secret_env: H4_VALIDATE_SECRET}
      action: {chat: {template: "Deployed"}}
    - name: meeting
      toolkit: zoom
      event: ZOOM_MEETING_STARTED
      connected_account: ca_1
      action: {chat: {template: "Meeting {topic}"}}
"""


def test_warnings_are_shown_in_every_format_and_do_not_fail(
    agents: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An unset secret (issue 17) and a type no catalog covers (issue 18): said, exit 0."""
    monkeypatch.delenv("H4_VALIDATE_SECRET", raising=False)
    hooks = agents / "hooks.yaml"
    hooks.write_text(HOOKS)
    code, out, _ = invoke(agents)
    assert code == 0
    lines = out.splitlines()
    assert lines[0].startswith(
        f"warning: {hooks}:5:29: planner.triggers[0].webhook.secret_env: secret "
        "$H4_VALIDATE_SECRET is not set here"
    )
    assert lines[1].startswith(f"warning: {hooks}:9:14: planner.triggers[1].event: trigger type")
    assert lines[-1] == "2 file(s) valid: 1 job(s), 2 trigger(s), 2 warning(s)."
    code, out, _ = invoke(hooks, "-f", "json")
    assert code == 0
    [found] = json.loads(out)["files"]
    assert found["ok"] is True and found["errors"] == []
    assert [w["path"] for w in found["warnings"]] == [
        "planner.triggers[0].webhook.secret_env",
        "planner.triggers[1].event",
    ]
    code, out, _ = invoke(hooks, "-f", "github")
    assert code == 0
    assert out.startswith(f"::warning file={hooks},line=5,col=29::")
    monkeypatch.setenv("H4_VALIDATE_SECRET", "whsec_" + "MDEyMzQ1Njc4OWFiY2RlZg==")
    code, out, _ = invoke(hooks)
    assert (code, out.count("warning:")) == (0, 1)


def test_an_unknown_slug_of_a_covered_toolkit_fails_with_did_you_mean(agents: Path) -> None:
    bad = agents / "slack.yaml"
    bad.write_text(
        HOOKS.replace("zoom", "slack").replace("ZOOM_MEETING_STARTED", "SLACK_NEW_MESSAGE")
    )
    code, out, _ = invoke(bad)
    assert code == 1
    assert out.splitlines()[0] == (
        f"{bad}:9:14: planner.triggers[1].event: unknown trigger type `SLACK_NEW_MESSAGE` for "
        "toolkit `slack` (did you mean `SLACK_RECEIVE_MESSAGE`?)"
    )
