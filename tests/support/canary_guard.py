"""Pytest plugin: canary secrets in the environment, and a failure when one shows up in output.

Loaded by the root ``tests/conftest.py`` for the whole suite (and by name, ``-p
tests.support.canary_guard``, in its own test). At configure time it sets every
``canaries.SESSION`` variable in ``os.environ``, so in-process code and every subprocess a test
starts read canaries where they would read real secrets. After each phase of each test it looks
at what pytest captured (stdout, stderr, log records) and at the failure text: a canary there is
a secret that would have reached a terminal, a log file or a CI page, and the test fails naming
the variable (never repeating the value).

Log records below WARNING are dropped before any handler sees them unless a logger asks for
them, so the ``planner_operator`` logger is opened to DEBUG: the INFO lines the server writes
per delivery are exactly the ones that must not carry a secret.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Generator

import pytest

from tests.support import canaries


def pytest_configure(config: pytest.Config) -> None:
    # Not restored at the end: a subprocess started during teardown must still see them.
    os.environ.update(canaries.SESSION)
    logging.getLogger("planner_operator").setLevel(logging.DEBUG)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    places: dict[str, list[str]] = {}
    for title, content in report.sections:
        for label in canaries.leaks(content):
            places.setdefault(label, []).append(title.lower())
    if report.longrepr is not None:
        for label in canaries.leaks(report.longreprtext):
            places.setdefault(label, []).append("the failure report")
    if not places:
        return report
    found = "; ".join(f"{label} in {', '.join(where)}" for label, where in sorted(places.items()))
    message = f"secret canary leaked ({report.when}): {found}"
    if report.passed:
        report.outcome = "failed"
        report.longrepr = message
    else:
        report.sections.append(("secret canaries", message))
    return report
