"""The run store contract on SQLite and PostgreSQL: one row per (key, run id, attempt) however
many processes record it, slot claims, listing, the scheduler's counters, the metrics delta."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from planner_operator.core.settings import Settings
from planner_operator.state import open as state_open
from planner_operator.state.runs import FireCount, JobCounters, RunStore

KEY = "agent/jobs/daily"


@pytest.fixture
def runs(store: Settings) -> Iterator[RunStore]:
    with state_open.runs(store) as opened:
        yield opened


def test_start_is_idempotent_per_key_run_and_attempt(runs: RunStore) -> None:
    first = runs.start(key=KEY, kind="job", run_id="r1", origin="inngest")
    assert runs.start(key=KEY, kind="job", run_id="r1", origin="inngest") == first
    assert runs.start(key=KEY, kind="job", run_id="r1", attempt=1, origin="inngest") != first
    runs.finish(first, status="succeeded", result={"ok": True})
    got = runs.get(first)
    assert got is not None and got.status == "succeeded" and got.result == {"ok": True}
    assert got.started_at.endswith("Z") and got.finished_at and got.finished_at.endswith("Z")
    assert runs.succeeded(KEY, "r1") == got


def test_a_run_is_one_row_across_replicas(store: Settings) -> None:
    """Two stores (two replicas recording the same Inngest step) racing: one row."""
    ids: list[int] = []
    gate = threading.Barrier(4)

    def record() -> None:
        with state_open.runs(store) as mine:
            gate.wait()
            ids.append(mine.start(key=KEY, kind="job", run_id="same", origin="inngest"))

    threads = [threading.Thread(target=record) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(ids) == 4 and len(set(ids)) == 1
    with state_open.runs(store) as mine:
        assert len(mine.list(key=KEY)) == 1


def test_slot_claims_tell_two_fires_of_one_slot_apart(runs: RunStore) -> None:
    first = "2026-10-25T00:30:00.000Z"
    assert runs.claim_slot(KEY, "2026-10-25T02:30", "r1", fire=first) == ("r1", first)
    again = runs.claim_slot(KEY, "2026-10-25T02:30", "r2", fire="2026-10-25T01:30:00.000Z")
    assert again == ("r1", first)  # the holder: the caller sees another fire has the slot


def test_a_run_resumes_its_one_row_across_attempts(runs: RunStore) -> None:
    row = runs.resume(key=KEY, kind="job", run_id="r9", origin="inngest")
    assert runs.resume(key=KEY, kind="job", run_id="r9", origin="inngest") == row
    runs.retrying(row, attempt=2, error="timeout")
    runs.retrying(row, attempt=1)  # an older attempt's late report does not go back
    assert runs.settle(row, status="succeeded", result={"ok": 1}) is True
    assert runs.settle(row, status="failed") is False  # already ended
    got = runs.get(row)
    assert got is not None and (got.attempt, got.status, got.error) == (2, "succeeded", None)


def test_list_filters_pages_and_escapes_like(runs: RunStore) -> None:
    for i in range(5):
        runs.start(key=f"a_b/jobs/j{i}", kind="job", run_id=f"r{i}", origin="manual")
    runs.start(key="axb/jobs/j", kind="job", run_id="x", origin="manual")
    assert len(runs.list(prefix="a_b/")) == 5  # "_" is not a wildcard
    page = runs.list(prefix="a_b/", limit=2)
    assert [r.run_id for r in page] == ["r4", "r3"]
    assert [r.run_id for r in runs.list(prefix="a_b/", before_id=page[-1].id)] == [
        "r2",
        "r1",
        "r0",
    ]


def test_runs_of_a_delivery_include_its_replays(runs: RunStore) -> None:
    for run_id in ("d_1", "d_1~replay1", "d_1~replay2", "dx1~replay1", "d_10"):
        runs.start(key="a/triggers/t", kind="trigger", run_id=run_id, origin="webhook")
    assert [r.run_id for r in runs.for_delivery("d_1")] == ["d_1", "d_1~replay1", "d_1~replay2"]


def test_count_fires_writes_skips_and_adds_up_counters(runs: RunStore) -> None:
    runs.count_fires(KEY, FireCount(fires=1, slot="2026-12-07T09:00"))
    runs.count_fires(
        KEY, FireCount(missed=2, skipped=[("2026-12-05T09:00", "missed"), ("s2", "missed")])
    )
    runs.count_fires(KEY, FireCount(overlap_skipped=1, skipped=[("2026-12-08T09:00", "overlap")]))
    assert runs.counters() == {KEY: JobCounters(fires=1, missed=2, overlap_skipped=1)}
    skipped = runs.list(key=KEY, status="skipped")
    assert [r.reason for r in skipped] == ["overlap", "missed", "missed"]


def test_counters_of_some_keys_only(runs: RunStore) -> None:
    keys = [f"a/jobs/j{n}" for n in range(1200)]  # more than one bound-parameter chunk
    for key in keys[::100]:
        runs.count_fires(key, FireCount(fires=2))
    wanted = [keys[0], keys[1], keys[1100], "a/jobs/unknown"]
    assert runs.counters(keys=wanted) == {
        keys[0]: JobCounters(fires=2),
        keys[1100]: JobCounters(fires=2),
    }
    assert len(runs.counters(keys=keys)) == 12 and runs.counters(keys=[]) == {}


def test_delta_reads_only_what_changed(runs: RunStore) -> None:
    a = runs.start(key=KEY, kind="job", run_id="a", origin="scheduler")
    b = runs.start(key=KEY, kind="job", run_id="b", origin="scheduler")
    runs.finish(a, status="succeeded")
    first = runs.delta(upto=0, watching=[])
    assert first.high == b
    assert [(f[3], f[4]) for f in first.finished] == [("succeeded", 1)]
    assert [s[0] for s in first.started] == [b]
    runs.finish(b, status="failed")
    second = runs.delta(upto=first.high, watching=[b])
    assert [(s[0], s[1]) for s in second.settled] == [(b, "failed")]
    assert second.finished == [] and second.started == []


def test_last_slots_reads_each_keys_newest_slot_at_once(runs: RunStore) -> None:
    """What the scheduler's restart reads for every job in one query: ``last(key).slot``."""
    runs.start(key="a/jobs/x", kind="job", run_id="1", origin="scheduler", slot="2026-12-07T09:00")
    runs.start(key="a/jobs/x", kind="job", run_id="2", origin="scheduler", slot="2026-12-08T09:00")
    runs.start(key="a/jobs/y", kind="job", run_id="3", origin="scheduler", slot="2026-12-07T10:00")
    runs.start(key="a/jobs/y", kind="job", run_id="4", origin="manual")  # newest: no slot
    runs.start(key="a/jobs/z", kind="job", run_id="5", origin="scheduler", slot="2026-12-01T00:00")
    keys = ["a/jobs/x", "a/jobs/y", "a/jobs/none"]
    found = runs.last_slots(keys)
    assert found == {"a/jobs/x": "2026-12-08T09:00", "a/jobs/y": None}
    for key in keys:
        last = runs.last(key)
        assert found.get(key) == (last.slot if last is not None else None)


def test_last_of_reads_each_keys_newest_run_as_last_does(runs: RunStore) -> None:
    """A page's last runs in one query, across more keys than one IN list holds."""
    for n in range(3):
        runs.start(key="a/jobs/x", kind="job", run_id=f"x{n}", origin="scheduler")
    runs.start(key="a/triggers/t", kind="trigger", run_id="t1", origin="webhook")
    keys = ["a/jobs/x", "a/triggers/t", *(f"a/jobs/none-{n}" for n in range(600))]
    found = runs.last_of(keys)
    assert sorted(found) == ["a/jobs/x", "a/triggers/t"]
    for key in keys:
        assert found.get(key) == runs.last(key)


def test_a_waiting_run_is_open_until_settled_once_and_counted_apart(runs: RunStore) -> None:
    """``waiting`` (suspended on its platform) is not an end: the run is watched by metrics,
    found for its re-deliveries, and settled from ``waiting`` exactly once."""
    row = runs.start(key=KEY, kind="trigger", run_id="d1", attempt=1, origin="webhook")
    before = runs.delta(upto=0, watching=[])
    assert [r[0] for r in before.started] == [row]
    assert runs.wait(row, result={"awaiting": {"steps": ["approve"]}}, note="suspended")
    waiting = runs.get(row)
    assert waiting is not None and waiting.status == "waiting" and waiting.finished_at is None
    assert waiting.result == {"awaiting": {"steps": ["approve"]}}
    assert runs.waiting_for(KEY, "d1") == waiting and runs.waiting_for(KEY, "d2") is None
    assert runs.waiting_counts() == {"trigger": 1}
    assert [r.id for r in runs.list(status="waiting")] == [row]
    still = runs.delta(upto=before.high, watching=[row])
    assert still.settled == [] and still.finished == []  # not counted as finished
    assert not runs.settle(row, status="failed", error="x")  # only from running, by default
    assert runs.settle(row, status="cancelled", error="cancelled in Mastra", was="waiting")
    assert not runs.settle(row, status="succeeded", was="waiting")  # a second poller: no-op
    assert not runs.wait(row, result={})  # ended: cannot go back to waiting
    ended = runs.get(row)
    assert ended is not None and ended.status == "cancelled" and ended.finished_at
    after = runs.delta(upto=before.high, watching=[row])
    assert [(i, s) for i, s, _ in after.settled] == [(row, "cancelled")]
    assert runs.waiting_counts() == {}
