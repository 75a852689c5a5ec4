"""Every command explains itself: help on every option, an example, plain text that fits.

The help is what a person reads first, so it is checked like output: rendered through click at
80 columns (typer's rich panels cut option names and ate `[env ...]` as markup).
"""

from __future__ import annotations

from importlib import metadata
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from planner_operator.cli.main import app

COMMAND = typer.main.get_command(app)


# typer ships its own copy of click, so groups are told apart by their `commands`.
def commands(group: Any = COMMAND, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found: list[tuple[str, ...]] = []
    for name, sub in getattr(group, "commands", {}).items():
        found.append((*prefix, name))
        found += commands(sub, (*prefix, name))
    return found


ALL = commands()


def command_at(path: tuple[str, ...]) -> Any:
    command: Any = COMMAND
    for name in path:
        command = command.commands[name]
    return command


def help_of(*path: str) -> str:
    result = CliRunner().invoke(app, [*path, "--help"], env={"COLUMNS": "80"}, terminal_width=80)
    assert result.exit_code == 0, result.output
    return result.output


@pytest.mark.parametrize("path", ALL, ids=" ".join)
def test_every_option_and_argument_has_help(path: tuple[str, ...]) -> None:
    command = command_at(path)
    missing = [
        p.name
        for p in command.params
        if p.param_type_name == "option" and not p.help and p.name != "help"
    ]
    assert missing == [], f"{' '.join(path)}: options without help: {missing}"


TOP_COMMANDS = [p for p in ALL if len(p) == 1 and not hasattr(command_at(p), "commands")]


@pytest.mark.parametrize("path", TOP_COMMANDS, ids=" ".join)
def test_every_command_shows_an_example(path: tuple[str, ...]) -> None:
    text = help_of(*path)
    assert "Example" in text and f"planner-operator {path[0]}" in text, text


@pytest.mark.parametrize("path", ALL, ids=" ".join)
def test_help_is_plain_text_that_fits_80_columns(path: tuple[str, ...]) -> None:
    text = help_of(*path)
    assert "…" not in text and "╭" not in text
    assert all(len(line) <= 80 for line in text.splitlines()), text
    assert "directory ." not in text  # markup used to swallow "[env ...; default]"


def test_env_and_defaults_are_shown_in_the_help() -> None:
    text = help_of("reconcile")
    assert "--allow-protected-delete" in text and "--allow-mass-delete" in text
    assert "(env PLANNER_STATE_DIR; default .planner)" in " ".join(text.split())


def test_version() -> None:
    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.output == f"planner-operator {metadata.version('planner-operator')}\n"


def test_shell_completion_is_offered() -> None:
    assert "--install-completion" in help_of()


@pytest.mark.parametrize("command", ["status", "runs", "explain"])
def test_read_commands_do_not_advertise_markdown(command: str) -> None:
    assert "<text|json>" in help_of(command)
