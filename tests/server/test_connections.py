"""Connections are bounded in time and number (issue 17 item 2): a client holding thousands of
idle or half-sent connections does not keep valid deliveries from being acknowledged."""

from __future__ import annotations

from pathlib import Path

import pytest

from planner_operator.server import connections
from tests.support import floods


def test_held_connections_time_out_and_valid_deliveries_are_acked(tmp_path: Path) -> None:
    env = {
        "PLANNER_HEADER_TIMEOUT": "1",
        "PLANNER_BODY_TIMEOUT": "1",
        "PLANNER_MAX_CONNECTIONS": "150",
    }
    figures = floods.held_connections(
        tmp_path, held=400, valid=100, env=env, open_files=256, keep_for=5
    )
    log = figures.pop("log")
    print(figures)
    assert figures["statuses"] == [202]
    assert figures["p99_ms"] < 1000
    assert figures["held_closed_by_server"] == 400  # by the cap's evictions or the timeouts
    assert "soft limit raised from 256" in log
    assert figures["connection_lines"] <= 12, log[-3000:]
    assert figures["emfile_lines"] == 0


@pytest.mark.slow
def test_two_thousand_held_connections_leave_delivery_p99_under_a_second(tmp_path: Path) -> None:
    figures = floods.held_connections(
        tmp_path, held=2000, valid=1000, env={}, open_files=1024, keep_for=40
    )
    log = figures.pop("log")
    print(figures)
    assert figures["delivered_s"] < 10, "the deliveries ran while every held one was open"
    assert figures["statuses"] == [202]
    assert figures["p99_ms"] < 1000
    assert figures["held_closed_by_server"] == 2000  # the 10 s header / 30 s body timeouts
    assert figures["connection_lines"] <= 12, log[-3000:]
    assert figures["emfile_lines"] == 0


def test_conditions_are_logged_once_per_interval_with_a_count(
    caplog: pytest.LogCaptureFixture,
) -> None:
    now = [100.0]
    conditions = connections.Conditions(every=10.0, clock=lambda: now[0])
    for _ in range(500):
        conditions.note("closed idle connections")
    now[0] += 10.0
    conditions.flush("closed idle connections")
    lines = [r.getMessage() for r in caplog.records if "connections:" in r.getMessage()]
    assert len(lines) == 2 and "499 more time(s)" in lines[1]
    assert conditions.counts == {"closed idle connections": 500}


def test_the_cap_fits_the_open_files_limit() -> None:
    assert (
        connections.Limits(max_connections=4096).fitted(1024).max_connections
        == 1024 - connections.RESERVE
    )
    assert connections.Limits(max_connections=100).fitted(20_000).max_connections == 100
