"""The settings table: one parser per type, defaults as before, the README generated from it."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from planner_operator.core import envparse, variables
from planner_operator.core import settings as settings_mod
from planner_operator.core.settings import Settings
from planner_operator.errors import SourceError
from tests.support import canaries

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "planner_operator"
VENDOR_OR_OURS = re.compile(r"(PLANNER|INNGEST|COMPOSIO)_[A-Z0-9_]+")


def test_defaults_are_the_documented_ones() -> None:
    s = Settings.resolve(env={})
    assert s == Settings(Path(".planner"), Path(".planner/state.db"), Path(".planner/ledger.db"))
    assert s.lock_timeout == 30.0
    assert (s.runs_db, s.inbox_db, s.outbox_db) == (
        Path(".planner/runs.db"),
        Path(".planner/inbox.db"),
        Path(".planner/outbox.db"),
    )
    assert s.api_token_file == Path(".planner/api-token")
    assert s.composio_secret_file == Path(".planner/composio-webhook-secret")


def test_flags_beat_environment_beats_defaults(tmp_path: Path) -> None:
    env = {
        "PLANNER_STATE_DIR": str(tmp_path / "env"),
        "PLANNER_LEDGER_DB": str(tmp_path / "l.db"),
        "PLANNER_LOCK_TIMEOUT": "5",
    }
    from_env = Settings.resolve(env=env)
    assert from_env.state_dir == tmp_path / "env"
    assert from_env.state_db == tmp_path / "env" / "state.db"
    assert from_env.ledger_db == tmp_path / "l.db"
    assert from_env.lock_timeout == 5.0
    flagged = Settings.resolve(state_dir=tmp_path / "flag", lock_timeout=1.0, env=env)
    assert (flagged.state_dir, flagged.lock_timeout) == (tmp_path / "flag", 1.0)
    assert flagged.runs_db == tmp_path / "flag" / "runs.db"


def test_empty_means_unset_except_where_it_is_a_mistake() -> None:
    assert variables.STATE_DIR.read({"PLANNER_STATE_DIR": "  "}) == Path(".planner")
    assert variables.INNGEST_RETRIES.read({"PLANNER_INNGEST_RETRIES": ""}) == 3
    assert variables.API_TOKEN.read({}) is None
    assert variables.API_TOKEN.read({"PLANNER_API_TOKEN": " "}) == ""


@pytest.mark.parametrize(
    ("var", "raw", "value"),
    [
        (variables.LOCK_TIMEOUT, "2.5", 2.5),
        (variables.INNGEST_RETRIES, "0", 0),
        (variables.WORKER, "off", False),
        (variables.WORKER, "YES", True),
        (variables.GC_TUNE, "true", True),
        (variables.GC_TUNE, "1", True),
        (variables.COMPOSIO_BUDGET_SHARE, "1", 1.0),
        (variables.SCHEDULE_BACKEND, " Inngest ", "inngest"),
        (variables.INBOX_SYNCHRONOUS, "full", "FULL"),
        (variables.PUBLIC_URL, "https://ops.example.com/", "https://ops.example.com"),
        (variables.WORKFLOWS, "a=m:f;\n b=https://x ;", ("a=m:f", "b=https://x")),
        (variables.INNGEST_DEV, "1", variables.INNGEST_DEV_URL),
        (variables.INNGEST_DEV, "false", None),
        (variables.INNGEST_DEV, "http://dev:8288", "http://dev:8288"),
        (variables.STATE_DB, "db/state.db", Path("db/state.db")),
    ],
)
def test_one_parser_per_type_reads_good_values(
    var: envparse.Var[object], raw: str, value: object
) -> None:
    assert var.read({var.name: raw}) == value


@pytest.mark.parametrize(
    ("var", "raw", "words"),
    [
        (variables.LOCK_TIMEOUT, "soon", "is not a number of seconds"),
        (variables.LOCK_TIMEOUT, "-1", "must be 0 or more seconds"),
        (variables.EXECUTOR_TIMEOUT, "0", "must be more than 0 seconds"),
        (variables.INBOX_LEASE, "nan", "must be more than 0 seconds"),
        (variables.WORKER_CONCURRENCY, "2.5", "is not a whole number"),
        (variables.WORKER_CONCURRENCY, "0", "must be at least 1"),
        (variables.WEBHOOK_MAX_BODY, "1MB", "is not a whole number of bytes"),
        (variables.WORKER, "maybe", "is not a flag"),
        (variables.COMPOSIO_BUDGET_SHARE, "1.5", "(0, 1]"),
        (variables.TRIGGER_BACKEND, "inngest", "use `local` or `composio`"),
        (variables.INBOX_SYNCHRONOUS, "OFF", "use `NORMAL` or `FULL`"),
        (variables.CHAT_URL, "platform.local/chat", "is not a URL"),
        (variables.INNGEST_SERVE_PATH, "api/inngest", "must start with /"),
        (variables.INNGEST_DEV, "banana", "is not a URL"),
    ],
)
def test_bad_values_name_the_variable_and_the_value(
    var: envparse.Var[object], raw: str, words: str
) -> None:
    with pytest.raises(SourceError) as err:
        var.read({var.name: raw})
    assert str(err.value).startswith(f"{var.name}={raw!r} ")
    assert words in str(err.value)


def test_a_secret_value_never_appears_in_an_error_or_repr() -> None:
    secret = envparse.Var("PLANNER_X_KEY", "secret", 0, "m", "tests", envparse.whole(), secret=True)
    with pytest.raises(SourceError) as err:
        secret.read({"PLANNER_X_KEY": canaries.plain("x")})
    assert canaries.plain("x") not in str(err.value)
    assert str(err.value).startswith("PLANNER_X_KEY=<hidden> ")
    assert canaries.plain("x") not in repr(secret)


def test_every_secret_is_marked_and_has_a_canary() -> None:
    secrets = {v.name for v in variables.ALL if v.secret}
    assert {"INNGEST_SIGNING_KEY", "COMPOSIO_API_KEY", "PLANNER_API_TOKEN"} <= secrets
    assert secrets <= {*canaries.SESSION, *canaries.CONFIGURED}  # the leak guard watches them


def test_table_rows_are_complete_and_unique() -> None:
    names = [v.name for v in variables.ALL]
    assert len(names) == len(set(names)) == len(variables.BY_NAME)
    for var in variables.ALL:
        assert VENDOR_OR_OURS.fullmatch(var.name), var.name
        assert var.type and var.meaning and var.component and var.default_text, var.name


def _string_constants(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str)
    }


def test_every_variable_named_in_the_code_is_in_the_table() -> None:
    """A new ``"PLANNER_X"`` anywhere in the product must be added to the table first."""
    table = PACKAGE / "core" / "variables.py"
    missing = {}
    for path in PACKAGE.rglob("*.py"):
        if path == table:
            continue
        for value in _string_constants(path):
            for match in VENDOR_OR_OURS.finditer(value):
                if match.group(0) not in variables.BY_NAME:
                    missing[match.group(0)] = path.relative_to(ROOT)
    assert not missing


def test_only_the_table_reads_the_process_environment() -> None:
    """Modules take an ``env`` mapping (tests pass their own); only ``variables.environ``
    falls back to ``os.environ``, and only variables' ``read`` looks a name up in it."""
    readers = [
        str(path.relative_to(ROOT))
        for path in PACKAGE.rglob("*.py")
        if path.name != "variables.py"
        and re.search(r"os\.environ|getenv\(", path.read_text(encoding="utf-8"))
    ]
    assert readers == []


def test_store_file_names_are_spelled_once() -> None:
    """Every caller takes a store's path from Settings (``runs.db`` was spelled in 8 modules)."""
    names = ("state.db", "ledger.db", "runs.db", "inbox.db", "outbox.db", "api-token")
    spelled: dict[str, list[str]] = {name: [] for name in names}
    for path in PACKAGE.rglob("*.py"):
        for value in _string_constants(path):
            if value in spelled:
                spelled[value].append(str(path.relative_to(ROOT)))
    assert spelled == {name: ["planner_operator/core/settings.py"] for name in names}


def test_unknown_planner_variables_are_warned_about_with_a_did_you_mean() -> None:
    env = {
        "PLANNER_STATE_DIRR": "x",
        "PLANNER_WORKER_POL": "1",
        "PLANNER_SOMETHING_ELSE": "1",
        "PLANNER_STATE_DIR": "ok",
        "PLANNER_CI": "1",  # the test suite's own
        "PLANNER_HOOK_SECRET": "named by an agent file",
        "HOME": "/root",
    }
    messages = variables.unknown(env, also_known=["PLANNER_HOOK_SECRET"])
    assert len(messages) == 3
    something, dirr, pol = messages
    assert "PLANNER_STATE_DIRR" in dirr and "did you mean PLANNER_STATE_DIR?" in dirr
    assert "did you mean PLANNER_WORKER_POLL?" in pol
    assert "PLANNER_SOMETHING_ELSE" in something and "did you mean" not in something
    assert variables.unknown({"INNGEST_DEVV": "1"}) == []  # vendors own their prefixes


def test_readme_table_is_the_generated_one() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    expected = settings_mod.readme_with_table(readme, settings_mod.markdown())
    assert readme == expected, "README's settings table is stale: run `make readme`"


def test_markdown_has_one_row_per_variable_with_type_and_default() -> None:
    table = settings_mod.markdown()
    rows = table.strip().splitlines()[2:]
    assert len(rows) == len(variables.ALL)
    assert "| `PLANNER_LOCK_TIMEOUT` | `--lock-timeout` | seconds | `30` |" in table
    assert "| `PLANNER_WORKER` |  | flag | `on` |" in table
