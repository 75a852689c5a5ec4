"""Only core/clock.py reads the real time; every date-sensitive answer holds on any date.

`make test` failed four days in seven because a rendered message named the weekday; the fix
is an injected clock everywhere, so this file checks both halves: no product module reads the
time past the clock (an AST scan), and the date-sensitive behaviours give the right answer with
the clock on each day of one week and on the 2026 DST transition days of the example zones.
"""

from __future__ import annotations

import ast
from datetime import UTC, datetime
from pathlib import Path

import pytest

from planner_operator.core.clock import ManualClock
from planner_operator.core.settings import Settings
from planner_operator.read.runviews import SUMMARY_CHARS
from tests.server.api.status_state import BEARER, applied, applied_once, finished, serve  # noqa: F401

PACKAGE = Path(__file__).resolve().parents[2] / "planner_operator"
# measuring a duration is not reading the time of day
FORBIDDEN = {
    ("time", "time"),
    ("time", "monotonic"),
    ("time", "sleep"),
    ("datetime", "now"),
    ("datetime", "utcnow"),
    ("date", "today"),
}


def test_no_product_module_reads_the_time_but_the_clock() -> None:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.relative_to(PACKAGE).as_posix() == "core/clock.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                owner = node.func.value
                name = owner.id if isinstance(owner, ast.Name) else None
                if (name, node.func.attr) in FORBIDDEN:
                    found.append(
                        f"{path.relative_to(PACKAGE)}:{node.lineno} {name}.{node.func.attr}"
                    )
    assert found == [], "read the injected clock instead:\n" + "\n".join(found)


WEEK = [datetime(2026, 12, day, 8, 0, tzinfo=UTC) for day in range(7, 14)]  # Monday..Sunday
DST_DAYS = [
    datetime(2026, 3, 8, 12, 0, tzinfo=UTC),  # US spring forward
    datetime(2026, 3, 29, 1, 30, tzinfo=UTC),  # EU spring forward, in the gap hour
    datetime(2026, 10, 25, 0, 30, tzinfo=UTC),  # EU fall back, in the repeated hour
    datetime(2026, 11, 1, 6, 30, tzinfo=UTC),  # US fall back, in the repeated hour
]


@pytest.mark.parametrize("moment", WEEK + DST_DAYS, ids=lambda m: m.strftime("%a-%Y-%m-%d"))
def test_run_now_and_next_fires_hold_on_every_date(applied: Settings, moment: datetime) -> None:  # noqa: F811
    with serve(applied, ManualClock(moment)) as client:
        answer = client.post(
            "/api/jobs/job-application-agent/morning-job-check/run", headers=BEARER
        )
        run = finished(client, answer.headers["location"])
        jobs = client.get("/api/jobs", headers=BEARER).json()
    rendered = run["rendered"]
    assert f"Today is {moment.strftime('%A')}" in rendered or moment.strftime("%A") in rendered
    assert run["started_at"].startswith(moment.strftime("%Y-%m-%dT%H:%M"))
    if len(rendered) <= SUMMARY_CHARS:
        assert run["summary"] == rendered
    else:  # a long weekday's message is cut with an ellipsis, never wrong
        assert run["summary"] == rendered[: SUMMARY_CHARS - 1] + "…"
    items = jobs["items"] if isinstance(jobs, dict) else jobs
    for job in items:
        for fire in job["next_runs"]:
            assert datetime.fromisoformat(fire["utc"]) > moment, (job["key"], fire)
