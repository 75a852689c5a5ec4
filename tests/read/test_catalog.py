"""The catalog: built once and shared across reads, rebuilt when the ledger, the backend read or
the lifecycle events change, and its next fires moved on in place when one passes."""

from __future__ import annotations

import threading
import time
from typing import Any

from planner_operator.backends.local import LocalScheduleBackend
from planner_operator.core.clock import ManualClock
from planner_operator.core.settings import Settings
from planner_operator.read import paging, views
from planner_operator.state.ledger import Ledger
from tests.server.api.status_state import MONDAY, applied, applied_once

__all__ = ["applied", "applied_once"]  # fixtures


def test_reads_share_one_build_until_the_ledger_changes(applied: Settings) -> None:
    clock = ManualClock(MONDAY)
    reader = views.Reader(applied, env={}, clock=clock)
    first = reader.job_page(paging.Query(limit=2))
    again = reader.job_page(paging.Query(limit=2, cursor=first.next_cursor))
    reader.agents()
    assert reader.catalog.builds == 1 and len(first.items) + len(again.items) == 4
    with Ledger(applied.ledger_db) as ledger:
        gone = ledger.get("sales-agent/jobs/weekly-pipeline-review")
        assert gone is not None
        ledger.forget(backend=gone.backend, remote_id=gone.remote_id)
    page = reader.job_page(paging.Query(agent="sales-agent"))
    assert reader.catalog.builds == 2 and [j.name for j in page.items] == ["quarterly-forecast"]
    assert page.total == 1


def test_the_backend_ttl_rebuilds_and_next_fires_move_without_one(applied: Settings) -> None:
    clock = ManualClock(MONDAY)
    reader = views.Reader(applied, backends_ttl=15.0, env={}, clock=clock)
    soonest = reader.job_page(paging.Query(sort="next_fire", limit=1)).items[0]
    assert soonest.key == "engineering-agent/jobs/slack-digest"  # Tue 09:30 Kolkata = 04:00 UTC
    walks = reader.fires.computed
    clock.advance(10)
    reader.job_page(paging.Query(sort="next_fire", limit=1))
    assert reader.catalog.builds == 1 and reader.fires.computed == walks  # nothing recomputed
    clock.advance(6)  # past the backend read's TTL: read again; nothing changed, no rebuild
    reader.job_page(paging.Query(sort="next_fire", limit=1))
    assert reader.catalog.builds == 1 and reader.fires.computed == walks
    with Ledger(applied.ledger_db) as ledger:
        entry = ledger.get(soonest.key)
    assert entry is not None
    with LocalScheduleBackend(applied.state_db) as jobs:
        jobs.set_state(entry.remote_id, "paused")  # changed outside the operator
    reader.job_page(paging.Query(sort="next_fire", limit=1))
    assert reader.catalog.builds == 1  # within the TTL: the cached read stands
    clock.advance(15)
    drifted = reader.job_page(paging.Query(state="drifted"))
    assert reader.catalog.builds == 2 and [j.key for j in drifted.items] == [soonest.key]
    assert reader.fires.computed == walks  # a rebuild walks no cron: the cache serves
    with LocalScheduleBackend(applied.state_db) as jobs:
        jobs.set_state(entry.remote_id, "active")
    clock.advance(20 * 3600 - 15)  # Tuesday 04:00:16 UTC: slack-digest fired; @daily at 05:00
    after = reader.job_page(paging.Query(sort="next_fire"))
    first = after.items[0]
    assert first.key == "job-application-agent/jobs/daily-application-check"
    assert [j.key for j in after.items][1] == "engineering-agent/jobs/slack-digest"
    assert after.items[1].next_runs[0].utc == "2026-12-09T04:00:00+00:00"


def test_passed_fires_are_moved_on_in_place_without_a_rebuild(applied: Settings) -> None:
    clock = ManualClock(MONDAY)
    reader = views.Reader(applied, backends_ttl=1e9, env={}, clock=clock)
    before = reader.job_page(paging.Query(sort="next_fire"))
    assert before.items[0].key == "engineering-agent/jobs/slack-digest"
    walks = reader.fires.computed
    clock.advance(20 * 3600 + 16)
    after = reader.job_page(paging.Query(sort="next_fire"))
    assert reader.catalog.builds == 1
    assert [j.key for j in after.items][:2] == [
        "job-application-agent/jobs/daily-application-check",
        "engineering-agent/jobs/slack-digest",
    ]
    # only the job whose fire passed: its next fire for the index, then five for the page
    assert reader.fires.computed == walks + 2


def test_in_the_background_a_stale_read_is_redone_without_making_a_reader_wait(
    applied: Settings,
) -> None:
    clock = ManualClock(MONDAY)
    reader = views.Reader(applied, backends_ttl=15.0, env={}, clock=clock, background=True)
    key = "engineering-agent/jobs/on-call-handover"
    assert reader.job_page(paging.Query(state="drifted")).items == []
    with Ledger(applied.ledger_db) as ledger:
        entry = ledger.get(key)
    assert entry is not None
    with LocalScheduleBackend(applied.state_db) as jobs:
        jobs.set_state(entry.remote_id, "paused")
    clock.advance(15)
    gate = threading.Event()
    read = reader.remote._read

    def slow_read(*args: Any) -> Any:  # the backend takes its time: a reader must not wait
        gate.wait(10)
        return read(*args)

    reader.remote._read = slow_read  # type: ignore[method-assign,assignment]
    assert reader.job_page(paging.Query(state="drifted")).items == []  # the read before
    gate.set()
    deadline = time.monotonic() + 10
    while not reader.job_page(paging.Query(state="drifted")).items:
        assert time.monotonic() < deadline, "the background read never landed"
        time.sleep(0.02)
    assert [j.key for j in reader.job_page(paging.Query(state="drifted")).items] == [key]
    assert reader.catalog.builds == 2


def test_past_the_ttl_an_unchanged_backend_is_not_listed_again(applied: Settings) -> None:
    """The embedded backend's change counter says nothing moved: the read before stands
    (listing 20,000 objects every TTL held the GIL for a second); a write moves it."""
    clock = ManualClock(MONDAY)
    reader = views.Reader(applied, backends_ttl=15.0, env={}, clock=clock)
    key = reader.job_page(paging.Query(limit=1)).items[0].key
    assert reader.remote.listings == 1
    clock.advance(16)
    assert reader.job_page(paging.Query(state="drifted")).items == []
    assert reader.remote.listings == 1 and reader.catalog.builds == 1
    with Ledger(applied.ledger_db) as ledger:
        entry = ledger.get(key)
    assert entry is not None
    with LocalScheduleBackend(applied.state_db) as jobs:
        jobs.set_state(entry.remote_id, "paused")  # the manual clock has not moved: same instant
    clock.advance(16)
    drifted = reader.job_page(paging.Query(state="drifted"))
    assert reader.remote.listings == 2 and [j.key for j in drifted.items] == [key]
