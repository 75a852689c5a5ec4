"""The secret-canary guard (tests/support/canary_guard.py) catches leaks, and covers every secret.

The guard is checked by running it on an inner test session (pytest's own ``pytester``) whose
tests leak canaries through each channel pytest captures. The inner session runs in a
subprocess: in-process, its log records would also reach this test's own log capture, and this
test would (rightly) fail for the leak it provoked. Its terminal output is copied into ours, so
the inner run shows no tracebacks, captures or summaries: outcomes come back through a file.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import pytest

from tests.support import canaries

ROOT = Path(__file__).resolve().parent.parent

INNER_CONFTEST = """
import json

def pytest_runtest_logreport(report):
    if report.when == "call":
        with open("outcomes.jsonl", "a", encoding="utf-8") as out:
            out.write(json.dumps({
                "test": report.nodeid.split("::")[-1],
                "outcome": report.outcome,
                "text": report.longreprtext,
                "sections": dict(report.sections),
            }) + "\\n")
"""

INNER_TESTS = """
import hashlib
import logging
import os
import sys

from tests.support import canaries


def test_logs_the_api_token():
    logging.getLogger("planner_operator.webhooks").info(
        "delivery d1 token=%s", os.environ["PLANNER_API_TOKEN"]
    )


def test_prints_the_composio_key():
    print("calling Composio with", canaries.COMPOSIO_API_KEY)


def test_writes_a_hashed_signing_key_to_stderr():
    body = canaries.INNGEST_SIGNING_KEY.split("-", 2)[2]
    print("Authorization: Bearer", hashlib.sha256(bytes.fromhex(body)).hexdigest(), file=sys.stderr)


def test_error_message_carries_the_platform_token():
    raise RuntimeError("rejected " + os.environ["PLANNER_PLATFORM_TOKEN"])


def test_fails_and_also_leaks_a_webhook_secret():
    print(os.environ["DEPLOY_WEBHOOK_SECRET"])
    assert 1 == 2


def test_clean_output_passes():
    logging.getLogger("planner_operator.webhooks").info("delivery d1 outcome=queued")
    print("secret from $DEPLOY_WEBHOOK_SECRET (standard)")  # the name is fine, the value is not


def test_session_canaries_are_in_the_environment():
    for name, value in canaries.SESSION.items():
        assert os.environ[name] == value, name
"""


def run_inner(pytester: pytest.Pytester) -> dict[str, dict[str, Any]]:
    """Run the inner session with the guard; {test name: {outcome, text, sections}}."""
    pytester.makeconftest(INNER_CONFTEST)
    pytester.makepyfile(test_inner=INNER_TESTS)
    result = pytester.runpytest_subprocess(
        *("-p", "tests.support.canary_guard", "-q", "--tb=no", "-rN", "--show-capture=no"),
        # plugins the inner session does not need; they cost seconds to load
        *("-p", "no:schemathesis", "-p", "no:hypothesispytest", "-p", "no:anyio"),
    )
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    lines = (pytester.path / "outcomes.jsonl").read_text(encoding="utf-8").splitlines()
    return {row["test"]: row for row in map(json.loads, lines)}


def test_a_canary_in_captured_output_or_a_failure_fails_the_test(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    for name in canaries.CONFIGURED:
        monkeypatch.delenv(name, raising=False)
    inner = run_inner(pytester)

    leaked = {
        "test_logs_the_api_token": "PLANNER_API_TOKEN in captured log call",
        "test_prints_the_composio_key": "COMPOSIO_API_KEY in captured stdout call",
        "test_writes_a_hashed_signing_key_to_stderr": (
            "INNGEST_SIGNING_KEY (hashed) in captured stderr call"
        ),
    }
    for test, where in leaked.items():
        assert inner[test]["outcome"] == "failed", test
        assert inner[test]["text"] == f"secret canary leaked (call): {where}"

    # A test that fails anyway keeps its own failure and gets a section naming the leak.
    for test, label in [
        ("test_error_message_carries_the_platform_token", "PLANNER_PLATFORM_TOKEN in the failure"),
        ("test_fails_and_also_leaks_a_webhook_secret", "DEPLOY_WEBHOOK_SECRET in captured stdout"),
    ]:
        assert inner[test]["outcome"] == "failed"
        assert label in inner[test]["sections"]["secret canaries"], test

    assert inner["test_clean_output_passes"]["outcome"] == "passed"
    assert inner["test_session_canaries_are_in_the_environment"]["outcome"] == "passed"


def test_this_session_runs_with_the_canaries_and_the_embedded_default() -> None:
    from planner_operator.backends.select import schedule_backend_name, trigger_backend_name

    for name, value in canaries.SESSION.items():
        assert os.environ[name] == value
    assert schedule_backend_name(os.environ) == "local"
    assert trigger_backend_name(os.environ) == "local"


def test_every_secret_the_product_reads_has_a_canary() -> None:
    """Secret-looking variable names in the package and secret_env names in the example agents.

    A new secret without a canary would be read as unset in every test, and a leak of it could
    never be seen.
    """
    pattern = re.compile(r"\"([A-Z][A-Z0-9_]*(?:KEY|SECRET|TOKEN)[A-Z0-9_]*)\"")
    names = {
        match
        for path in (ROOT / "planner_operator").rglob("*.py")
        for match in pattern.findall(path.read_text(encoding="utf-8"))
    }
    names -= {"NO_EVENT_KEY_SET"}  # the SDK's placeholder when no event key is configured
    for path in (ROOT / "agents").glob("*.yaml"):
        names |= set(re.findall(r"secret_env:\s*([A-Z][A-Z0-9_]*)", path.read_text()))
    names.add("INNGEST_SIGNING_KEY_FALLBACK")  # read by the Inngest SDK itself
    assert names <= set(canaries.ALL), sorted(names - set(canaries.ALL))
