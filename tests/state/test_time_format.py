"""One stored time format (UTC ISO 8601, milliseconds, ``Z``), and old files migrated to it.

Each old database here is made by the *old* schema (the released migrations before the time
migration) with rows in the formats the old code wrote: microseconds and ``+00:00`` (ledger,
intents, lock), milliseconds and ``+00:00`` (runs), seconds (the served job table) and REAL
epoch seconds (inbox). Opening it with today's store must rewrite every time and read the rows
back as the same moments.
"""

from __future__ import annotations

import re
import sqlite3
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

from planner_operator.core import clock as clock_mod
from planner_operator.core import times
from planner_operator.state import db, inbox, ledger, lock, runs, served
from planner_operator.state.inbox import Inbox
from planner_operator.state.ledger import Ledger
from planner_operator.state.lock import ApplyLock
from planner_operator.state.runs import RunStore
from planner_operator.state.served import ServedJobs

STORED = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
MOMENT = datetime(2026, 3, 29, 0, 59, 59, 123456, tzinfo=UTC)
EPOCH = MOMENT.timestamp()


def old(path: Path, component: str, migrations: tuple[str, ...]) -> sqlite3.Connection:
    conn = db.connect(path)
    db.migrate(conn, component, migrations)
    return conn


def column(path: Path, sql: str) -> list[str]:
    conn = sqlite3.connect(path)
    try:
        return [str(r[0]) for r in conn.execute(sql).fetchall() if r[0] is not None]
    finally:
        conn.close()


def test_stored_is_utc_milliseconds_z_truncated() -> None:
    berlin = timezone(timedelta(hours=2))
    assert times.stored(datetime(2026, 7, 1, 11, 0, 0, 999999, tzinfo=berlin)) == (
        "2026-07-01T09:00:00.999Z"
    )
    assert times.stored(datetime(2026, 7, 1, 9)) == "2026-07-01T09:00:00.000Z"  # naive is UTC
    assert times.now(clock_mod.ManualClock(MOMENT)) == "2026-03-29T00:59:59.123Z"
    assert times.from_epoch(EPOCH) == "2026-03-29T00:59:59.123Z"


def test_stored_text_sorts_as_time() -> None:
    moments = [MOMENT + timedelta(milliseconds=n * 997) for n in range(-3000, 3000, 7)]
    texts = [times.stored(m) for m in moments]
    assert sorted(texts) == texts


def test_parse_reads_every_older_format() -> None:
    for text in (
        "2026-03-29T00:59:59.123456+00:00",
        "2026-03-29T00:59:59.123+00:00",
        "2026-03-29T00:59:59.123Z",
        "2026-03-29T02:59:59.123+02:00",
        "2026-03-29T00:59:59.123",
    ):
        assert times.parse(text).replace(microsecond=123000) == MOMENT.replace(microsecond=123000)
    assert times.epoch("2026-03-29T00:59:59.123Z") == round(EPOCH - 0.000456, 3)


def test_display_is_for_people() -> None:
    assert times.display("2026-03-29T00:59:59.123Z") == "2026-03-29 00:59:59 UTC"
    assert times.display(MOMENT, zone=timezone(timedelta(hours=1), "CET")) == (
        "2026-03-29 01:59:59 CET"
    )
    assert times.display(None) == "-"


def test_an_old_ledger_opens_and_reads_its_times(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    conn = old(path, ledger.COMPONENT, ledger.MIGRATIONS.sqlite[:3])
    conn.execute(
        "INSERT INTO resources (backend, remote_id, key, kind, spec_hash, spec_json, "
        "applied_at) VALUES ('local', 'job_1', 'a/jobs/x', 'job', 'h', '{}', ?)",
        (MOMENT.isoformat(),),
    )
    conn.execute(
        "INSERT INTO history (at, key, kind, op, backend, remote_id, spec_hash, spec_json) "
        "VALUES (?, 'a/jobs/x', 'job', 'create', 'local', 'job_1', 'h', '{}')",
        (MOMENT.isoformat(),),
    )
    conn.execute(
        "INSERT INTO intents (backend, key, kind, spec_hash, spec_json, created_at) "
        "VALUES ('local', 'a/jobs/y', 'job', 'h', '{}', ?)",
        (MOMENT.isoformat(),),
    )
    conn.execute(
        "INSERT INTO meta (name, value, updated_at) VALUES ('x', '1', ?)", (MOMENT.isoformat(),)
    )
    conn.close()

    with Ledger(path) as led:
        owned = led.get("a/jobs/x")
        assert owned is not None and owned.applied_at == MOMENT.replace(microsecond=123000)
        assert led.history("a/jobs/x")[0].at == MOMENT.replace(microsecond=123000)
        assert led.intents()[0].created_at == MOMENT.replace(microsecond=123000)
    for sql in (
        "SELECT applied_at FROM resources",
        "SELECT at FROM history",
        "SELECT created_at FROM intents",
        "SELECT updated_at FROM meta",
    ):
        assert [STORED.match(v) is not None for v in column(path, sql)] == [True], sql


def test_an_old_inbox_opens_with_epoch_seconds_rewritten(tmp_path: Path) -> None:
    path = tmp_path / "inbox.db"
    conn = old(path, inbox.COMPONENT, inbox.MIGRATIONS.sqlite[:1])
    conn.execute(
        "INSERT INTO deliveries (id, source, received_at, headers, body, status, attempts, "
        "next_attempt_at, lease_until, lease_owner, updated_at) VALUES "
        "('d1', 'composio', ?, '{}', x'7b7d', 'processing', 1, ?, ?, 'w1', ?)",
        (EPOCH, EPOCH, EPOCH + 60, EPOCH),
    )
    conn.execute(
        "INSERT INTO trigger_status (ref, state, reason, delivery_id, at) "
        "VALUES ('trigger:t1', 'disabled', 'why', 'd1', ?)",
        (EPOCH,),
    )
    conn.close()

    clock = clock_mod.ManualClock(MOMENT + timedelta(seconds=30))
    with Inbox(path, clock=clock) as box:
        got = box.get("composio:d1")  # v2 namespaced the old id by its source
        assert got is not None
        assert abs(got.received_at - EPOCH) < 0.001
        assert got.lease_until is not None and abs(got.lease_until - (EPOCH + 60)) < 0.001
        assert box.claim("w2", 10, 60.0) == []  # the lease has 30 s to go
        clock.advance(31)
        [taken] = box.claim("w2", 10, 60.0)  # and then it ran out
        assert taken.id == "composio:d1" and taken.attempts == 2
        assert box.trigger_status_rows()["trigger:t1"][0] == "disabled"
    for sql in ("SELECT received_at FROM deliveries", "SELECT at FROM trigger_status"):
        assert [STORED.match(v) is not None for v in column(path, sql)] == [True], sql


def test_old_runs_lock_and_served_jobs_open_in_the_new_format(tmp_path: Path) -> None:
    runs_path, lock_path, state_path = tmp_path / "runs.db", tmp_path / "l.db", tmp_path / "s.db"
    conn = old(runs_path, runs.COMPONENT, runs.MIGRATIONS.sqlite[:2])
    conn.execute(
        "INSERT INTO runs (key, kind, run_id, origin, status, started_at, finished_at) "
        "VALUES ('a/jobs/x', 'job', 'r1', 'scheduler', 'succeeded', ?, ?)",
        (MOMENT.isoformat(timespec="milliseconds"),) * 2,
    )
    conn.close()
    conn = old(lock_path, lock.COMPONENT, lock.MIGRATIONS.sqlite[:1])
    conn.execute(
        "INSERT INTO locks VALUES ('apply', 'alice@box', 99999999, 'elsewhere', ?, 't')",
        (MOMENT.isoformat(),),
    )
    conn.close()
    conn = old(state_path, served.COMPONENT, served.MIGRATIONS.sqlite[:1])
    conn.execute(
        "INSERT INTO inngest_jobs VALUES ('a/jobs/x', 'fn', '{}', ?)",
        (MOMENT.isoformat(timespec="seconds"),),
    )
    conn.close()

    with RunStore(runs_path) as store:
        [run] = store.list(key="a/jobs/x")
        assert run.started_at == "2026-03-29T00:59:59.123Z"
    with ApplyLock(lock_path) as held_elsewhere_check:
        assert held_elsewhere_check.took_over is not None  # an hour-old row on another host
        assert held_elsewhere_check.took_over.started_at == MOMENT.replace(microsecond=123000)
    with ServedJobs(state_path) as table:
        assert [j.key for j in table.jobs()] == ["a/jobs/x"]
    assert STORED.match(column(state_path, "SELECT updated_at FROM inngest_jobs")[0])
