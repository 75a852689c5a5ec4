"""`explain`: the timeline builder on constructed inputs, the scheduler's skip rows, the CLI."""

from __future__ import annotations

import itertools
import json
import re
import threading
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from planner_operator.cli.main import app
from planner_operator.core import specs
from planner_operator.core.clock import ManualClock
from planner_operator.core.records import HistoryRow, NewDelivery, OwnedEntry, Run
from planner_operator.core.settings import INBOX_DB_FILE, Settings
from planner_operator.errors import NotFoundError
from planner_operator.read.explain import load as explain_load
from planner_operator.read.explain import model as explain
from planner_operator.read.explain.render import timeline_text
from planner_operator.runtime import events
from planner_operator.runtime.executors.base import Executors
from planner_operator.runtime.executors.local import LocalOutbox
from planner_operator.runtime.jobrun import JobRunner
from planner_operator.runtime.scheduler import MISSED_ROWS, Job, Scheduler
from planner_operator.runtime.worker import Routes, Worker
from planner_operator.server.operator import local_jobs
from planner_operator.state.inbox import Inbox
from planner_operator.state.runs import RunStore
from tests.runtime.test_scheduler import World
from tests.support.builders import job_spec

KEY = "a/jobs/daily"
_ids = itertools.count(1)


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0, sec: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, sec, tzinfo=UTC)


def hist(
    op: str, at: datetime, spec: Mapping[str, Any], revision: str = "r1", backend: str = "local"
) -> HistoryRow:
    schedule = spec.get("schedule")
    return HistoryRow(
        id=next(_ids),
        at=at,
        key=KEY,
        kind="job",
        op=op,  # type: ignore[arg-type]
        backend=backend,
        remote_id="job_1",
        spec_hash="h",
        enabled=bool(spec.get("enabled", True)),
        schedule=None if schedule is None else str(schedule),
        timezone=str(spec.get("timezone", "UTC")),
        revision=revision,
        spec=dict(spec),
    )


def run(
    slot: str | None,
    started: datetime,
    status: str = "succeeded",
    origin: str = "scheduler",
    **extra: Any,
) -> Run:
    row_id = next(_ids)
    values: dict[str, Any] = {
        "id": row_id,
        "key": KEY,
        "kind": "job",
        "run_id": f"run-{row_id}",
        "attempt": 0,
        "origin": origin,
        "slot": slot,
        "status": status,
        "reason": None,
        "action": "chat",
        "rendered": None,
        "result": None,
        "error": None,
        "started_at": started.isoformat(),
        "finished_at": started.isoformat(),
    }
    values.update(extra)
    return Run(**values)


def current(spec: Mapping[str, Any], backend: str = "local") -> OwnedEntry:
    return OwnedEntry(KEY, "job", backend, "job_1", "h", dict(spec), applied_at=utc(2026, 1, 1))


def timeline(
    spec: Mapping[str, Any],
    runs: list[Run],
    start: datetime,
    end: datetime,
    *,
    history: list[HistoryRow] | None = None,
    now: datetime | None = None,
    backend: str = "local",
) -> explain.Timeline:
    created = [hist("create", start - timedelta(days=30), spec, backend=backend)]
    return explain.build(
        explain.Inputs(
            KEY,
            current(spec, backend),
            created if history is None else history,
            runs,
            start,
            end,
            now or end,
        )
    )


def slots(t: explain.Timeline) -> list[tuple[str, str, str]]:
    """(local time with offset, status, text) of every slot line."""
    zone = t.timezone
    from zoneinfo import ZoneInfo

    return [
        (line.at.astimezone(ZoneInfo(zone)).isoformat(timespec="minutes"), line.status, line.text)
        for line in t.lines
        if line.kind == "slot"
    ]


def ny(schedule: str, **extra: Any) -> dict[str, Any]:
    return job_spec(schedule, timezone="America/New_York", **extra)


# -- DST ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("policy", ["vixie", "skip", "literal"])
def test_spring_forward_gap_per_dst_policy(policy: str) -> None:
    spec = ny("30 2 * * *", dst=policy)
    runs = [run("2026-03-08T03:00", utc(2026, 3, 8, 7, 0, 1))] if policy == "vixie" else []
    t = timeline(spec, runs, utc(2026, 3, 7, 12), utc(2026, 3, 8, 12), now=utc(2026, 3, 8, 12))
    [dst] = [line for line in t.lines if line.kind == "dst"]
    assert dst.text == "clocks go forward: 02:00 becomes 03:00 (UTC-05:00 -> UTC-04:00)"
    assert dst.at == utc(2026, 3, 8, 7)
    [(at, status, text)] = slots(t)
    assert at == "2026-03-08T03:00-04:00"
    if policy == "vixie":
        assert status == "ran" and text.startswith("succeeded: run run-")
        [line] = [x for x in t.lines if x.kind == "slot"]
        assert line.note == "DST gap: 02:30 does not exist, fired at 03:00 (vixie)"
        assert line.latency_s == 1.0
        assert "[DST gap: 02:30 does not exist" in timeline_text(t)
        assert "\n  2026-03-08 07:00 UTC  ran " in timeline_text(t, utc=True)
    else:
        assert status == "skipped"
        assert text == f"DST gap: 02:30 does not exist that day; dst policy {policy} never fires it"


@pytest.mark.parametrize("policy", ["vixie", "skip", "literal"])
def test_fall_back_repeat_per_dst_policy(policy: str) -> None:
    spec = ny("30 1 * * *", dst=policy)
    runs = [run("2026-11-01T01:30", utc(2026, 11, 1, 5, 30, 2))]
    if policy == "literal":
        runs.append(run("2026-11-01T01:30", utc(2026, 11, 1, 6, 30, 2)))
    t = timeline(spec, runs, utc(2026, 11, 1, 0), utc(2026, 11, 1, 12))
    [dst] = [line for line in t.lines if line.kind == "dst"]
    assert dst.text == "clocks go back: 02:00 becomes 01:00 (UTC-04:00 -> UTC-05:00)"
    got = slots(t)
    assert [(at, status) for at, status, _ in got] == [
        ("2026-11-01T01:30-04:00", "ran"),
        ("2026-11-01T01:30-05:00", "ran" if policy == "literal" else "skipped"),
    ]
    if policy != "literal":
        assert got[1][2] == (
            f"DST repeat: 01:30 occurs twice; dst policy {policy} fires only the first occurrence"
        )
    else:
        assert got[0][2] != got[1][2]  # two different runs, each matched to its occurrence


def test_inngest_duplicate_fire_row_explains_the_repeat() -> None:
    spec = ny("30 1 * * *")
    reason = "DST repeat: slot 2026-11-01T01:30 already ran as run run-x"
    runs = [
        run("2026-11-01T01:30", utc(2026, 11, 1, 5, 30), origin="inngest"),
        run("2026-11-01T01:30", utc(2026, 11, 1, 6, 30), "skipped", "dst", reason=reason),
    ]
    t = timeline(spec, runs, utc(2026, 11, 1, 0), utc(2026, 11, 1, 12), backend="inngest")
    assert [s[1:] for s in slots(t)][1] == ("skipped", reason)
    assert not [line for line in t.lines if line.kind == "run"]  # both rows account for slots


def test_inngest_run_counts_the_attempts_recorded_on_its_one_row() -> None:
    spec = job_spec("0 9 * * *")
    runs = [run("2026-11-23T09:00", utc(2026, 11, 23, 9), origin="inngest", attempt=2)]
    t = timeline(spec, runs, utc(2026, 11, 23, 8), utc(2026, 11, 23, 10), backend="inngest")
    [line] = [line for line in t.lines if line.run_id == "run-" + str(runs[0].id)]
    assert line.attempts == 3
    assert line.text.endswith(", 3 attempts")


# -- history: pauses, changes, creation -----------------------------------------------------------


def test_paused_period_from_history() -> None:
    spec = job_spec("0 9 * * *")
    paused = {**spec, "enabled": False}
    history = [
        hist("create", utc(2026, 3, 1), spec),
        hist("update", utc(2026, 3, 3, 12), paused, revision="r2"),
        hist("update", utc(2026, 3, 5, 8), spec, revision="r3"),
    ]
    runs = [run(f"2026-03-0{d}T09:00", utc(2026, 3, d, 9, 0, 1)) for d in (2, 3, 5)]
    t = timeline(spec, runs, utc(2026, 3, 2), utc(2026, 3, 6), history=history)
    assert [s[:2] for s in slots(t)] == [
        ("2026-03-02T09:00+00:00", "ran"),
        ("2026-03-03T09:00+00:00", "ran"),
        ("2026-03-04T09:00+00:00", "paused"),
        ("2026-03-05T09:00+00:00", "ran"),
    ]
    changes = [(line.status, line.text) for line in t.lines if line.kind == "change"]
    assert changes == [
        ("paused", "paused (enabled: false) at revision r2"),
        ("resumed", "resumed (enabled: true) at revision r3"),
    ]
    assert slots(t)[2][2] == "paused: enabled: false then (revision r2)"


def test_schedule_change_mid_window_uses_each_schedule_in_its_time() -> None:
    old, new = job_spec("0 9 * * *"), job_spec("0 10 * * *")
    sha = "abc1234" + "0" * 33
    history = [
        hist("create", utc(2026, 3, 1), old),
        hist("update", utc(2026, 3, 3, 10, 2), new, sha),
    ]
    runs = [
        run("2026-03-02T09:00", utc(2026, 3, 2, 9)),
        run("2026-03-03T09:00", utc(2026, 3, 3, 9)),
        run("2026-03-04T10:00", utc(2026, 3, 4, 10)),
    ]
    t = timeline(new, runs, utc(2026, 3, 2), utc(2026, 3, 5), history=history)
    assert [s[:2] for s in slots(t)] == [
        ("2026-03-02T09:00+00:00", "ran"),
        ("2026-03-03T09:00+00:00", "ran"),
        ("2026-03-04T10:00+00:00", "ran"),
    ]
    [change] = [line for line in t.lines if line.kind == "change"]
    assert change.at == utc(2026, 3, 3, 10, 2)
    assert change.text == "schedule changed 0 9 * * * -> 0 10 * * * at revision abc1234"
    assert "2026-03-03 10:02 +00:00  updated      schedule changed 0 9" in timeline_text(t)


def test_slots_before_creation_are_not_applied() -> None:
    spec = job_spec("0 9 * * *")
    history = [hist("create", utc(2026, 3, 3, 12), spec)]
    t = timeline(spec, [], utc(2026, 3, 2), utc(2026, 3, 4, 12), history=history)
    assert [s[1:] for s in slots(t)] == [
        ("not applied", "before the job was created"),
        ("not applied", "before the job was created"),
        ("no run", explain._no_run_hint("local")),
    ]
    assert [line.status for line in t.lines if line.kind == "change"] == ["created"]


def test_no_line_repeats_its_status_in_its_text() -> None:
    """The text view prints status then text: `not applied  not applied: ...` said it twice."""
    spec = job_spec("0 9 * * *")
    history = [
        hist("create", utc(2026, 3, 3, 12), spec),
        hist("delete", utc(2026, 3, 5, 12), spec),
    ]
    t = timeline(spec, [], utc(2026, 3, 2), utc(2026, 3, 7), history=history)
    for line in t.lines:
        assert not line.text.startswith(line.status), line
    rendered = timeline_text(t, utc=True)
    for status in ("not applied", "created", "deleted", "upcoming"):
        assert f"{status}  {status}" not in rendered and f"{status}: " not in rendered


def test_no_history_assumes_current_spec_and_says_so() -> None:
    t = timeline(job_spec("0 9 * * *"), [], utc(2026, 3, 2), utc(2026, 3, 3), history=[])
    assert "the current spec is assumed" in t.notes[0]
    assert [s[1] for s in slots(t)] == ["no run"]


def test_no_run_hint_names_the_backend_and_recent_or_future_slots() -> None:
    spec = job_spec("0 * * * *")
    t = timeline(
        spec,
        [],
        utc(2026, 3, 2, 8, 30),
        utc(2026, 3, 2, 11, 30),
        now=utc(2026, 3, 2, 10, 1),
        backend="inngest",
    )
    assert [s[1:] for s in slots(t)] == [
        ("no run", explain._no_run_hint("inngest")),
        ("no run", "due: nothing recorded yet (may be starting)"),
        ("upcoming", "not due yet"),
    ]
    assert "Inngest did not call" in explain._no_run_hint("inngest")


# -- skips recorded by the scheduler ---------------------------------------------------------------


def test_overlap_skip_row_names_the_running_run() -> None:
    spec = job_spec("* * * * *")
    reason = "overlap: previous run sched-aaa still running"
    runs = [
        run("2026-03-02T10:00", utc(2026, 3, 2, 10), run_id="sched-aaa"),
        run("2026-03-02T10:01", utc(2026, 3, 2, 10, 1), "skipped", reason=reason),
    ]
    t = timeline(spec, runs, utc(2026, 3, 2, 9, 59, 30), utc(2026, 3, 2, 10, 1, 30))
    assert [s[1:] for s in slots(t)] == [
        ("ran", "succeeded: run sched-aaa via scheduler, started 0.0s after the slot"),
        ("skipped", reason),
    ]


def test_missed_slots_and_catch_up() -> None:
    spec = job_spec("0 * * * *")
    down = "missed while the operator was down; catchup: latest ran 2026-03-07T19:00"
    folded = (
        "missed while the operator was down: 3 slots from 2026-03-07T10:00 to "
        "2026-03-07T12:00 (not listed one by one); catchup: latest ran 2026-03-07T19:00"
    )
    restart = utc(2026, 3, 7, 19, 30)
    runs = [run("2026-03-07T12:00", restart, "skipped", reason=folded)]
    runs += [run(f"2026-03-07T{h}:00", restart, "skipped", reason=down) for h in range(13, 19)]
    runs += [run("2026-03-07T19:00", restart, origin="catchup")]
    t = timeline(spec, runs, utc(2026, 3, 7, 9, 30), utc(2026, 3, 7, 19, 45))
    got = slots(t)
    assert [s[1] for s in got] == ["skipped"] * 9 + ["ran"]
    assert got[0][2].startswith("missed while the operator was down (one of the slots folded")
    assert got[2][2] == folded and got[3][2] == down
    assert got[9][2].endswith("via catchup (catch-up after a restart), started 30m after the slot")
    text = timeline_text(t)
    assert "more slots alike (skipped)" not in text  # different reasons are not folded together
    assert "10 slot(s): 1 ran (1 succeeded), 9 skipped." in text


def test_manual_run_is_listed_at_its_time() -> None:
    spec = job_spec("0 9 * * *")
    manual = run("2026-03-02T11:17", utc(2026, 3, 2, 11, 17), origin="manual", run_id="manual-1")
    t = timeline(spec, [manual], utc(2026, 3, 2), utc(2026, 3, 3))
    [line] = [x for x in t.lines if x.kind == "run"]
    assert line.at == utc(2026, 3, 2, 11, 17)
    assert line.text == f"manual run (not a scheduled slot): succeeded (run {manual.id})"
    assert t.counts()["other runs"] == 1


def test_defaulted_window_keeps_the_latest_slots() -> None:
    spec = job_spec("* * * * *")
    t = explain.build(
        explain.Inputs(
            KEY,
            current(spec),
            [],
            [],
            utc(2026, 3, 2),
            utc(2026, 3, 2, 1),
            utc(2026, 3, 2, 1),
            max_slots=10,
        )
    )
    assert len([line for line in t.lines if line.kind == "slot"]) == 10
    assert t.start == utc(2026, 3, 2, 0, 50) and "pass --from" in t.notes[-1]
    assert "48 more slots alike" not in timeline_text(t)  # 10 lines: first, "8 more", last
    assert "8 more slots alike (no run)" in timeline_text(t)


# -- filters ------------------------------------------------------------------------------------


def test_explain_filter_names_the_failing_condition_and_agrees_with_matches() -> None:
    spec = specs.Filter.from_dict(
        {
            "subject": {"contains": "invoice"},
            "from.domain": {"in": ["acme.com", "acme.org"]},
            "any": [{"label": {"equals": "urgent"}}, {"priority": {"exists": True}}],
        }
    )
    payloads: list[dict[str, Any]] = [
        {"subject": "Your Invoice", "from": {"domain": "acme.com"}, "label": "urgent"},
        {"subject": "Hello", "from": {"domain": "acme.com"}, "priority": 1},
        {"subject": "invoice 7", "from": {"domain": "other.com"}},
        {},
    ]
    for payload in payloads:
        checks = events.explain_filter(spec, payload)
        assert all(c.passed for c in checks) == events.matches(spec, payload)
    checks = events.explain_filter(spec, payloads[1])
    assert [(c.path, c.passed) for c in checks] == [
        ("subject", False),
        ("from.domain", True),
        ("any", True),
    ]
    assert checks[0].value == "Hello" and checks[0].condition == {"contains": "invoice"}
    assert [m.passed for m in checks[2].children] == [False, True]
    missing = events.explain_filter(spec, {})[0]
    assert (missing.found, missing.passed) == (False, False)


# -- the scheduler records skips as rows -----------------------------------------------------------


def test_scheduler_writes_rows_for_overlap_skips(tmp_path: Path) -> None:
    release = threading.Event()

    class Slow:
        def start_thread(self, *, agent: str, message: str, context: Any) -> str:
            release.wait(5)
            return "t"

        def run(self, *, workflow: str, input: Any, context: Any) -> Any:
            return None

    with RunStore(tmp_path / "runs.db") as runs:
        clock = ManualClock(utc(2026, 3, 7, 12))
        job = Job("a/jobs/min", job_spec("* * * * *"))
        sched = Scheduler(JobRunner(runs, Executors(Slow(), Slow())), lambda: [job], clock=clock)
        sched.reload()
        [(j, first)] = sched.due(clock.advance(minutes=1))
        worker = threading.Thread(target=sched.fire, args=(j, first))
        worker.start()
        while "a/jobs/min" not in sched.running:
            pass
        [(j2, second)] = sched.due(clock.advance(minutes=1))
        assert sched.fire(j2, second) is None
        release.set()
        worker.join()
        sched.close()
        # the skip row may be written before the slow run's own row: order by slot, not by id
        ran, skipped = sorted(runs.list(key="a/jobs/min"), key=lambda r: r.slot or "")
        assert (ran.slot, ran.status) == ("2026-03-07T12:01", "succeeded")
        assert (skipped.slot, skipped.status, skipped.origin) == (
            "2026-03-07T12:02",
            "skipped",
            "scheduler",
        )
        assert skipped.reason == f"overlap: previous run {ran.run_id} still running"
        assert runs.counters()["a/jobs/min"].overlap_skipped == 1


def test_scheduler_writes_missed_rows_capped_and_marks_the_catch_up(tmp_path: Path) -> None:
    w = World(tmp_path, utc(2026, 3, 7, 12))
    try:
        w.jobs = [Job("a/jobs/min", job_spec("* * * * *"))]
        w.scheduler.reload()
        w.run_until(utc(2026, 3, 7, 12, 1, 30))  # fired 12:01
        w.scheduler.close()
        w.clock.set(utc(2026, 3, 7, 15, 0, 30))  # down: 12:02 .. 15:00 = 179 slots
        w.scheduler = w.new_scheduler()
        w.scheduler.reload()
        w.run_until(utc(2026, 3, 7, 15, 0, 45))
        rows = sorted(w.runs.list(key="a/jobs/min", limit=1000), key=lambda r: r.id)
        skipped = [r for r in rows if r.status == "skipped"]
        assert len(skipped) == MISSED_ROWS + 1  # 178 dropped: 77 folded into one, 100 rows
        assert skipped[0].reason == (
            "missed while the operator was down: 78 slots from 2026-03-07T12:02 to "
            "2026-03-07T13:19 (not listed one by one); catchup: latest ran 2026-03-07T15:00"
        )
        assert skipped[0].slot == "2026-03-07T13:19"
        assert skipped[1].slot == "2026-03-07T13:20" and skipped[-1].slot == "2026-03-07T14:59"
        assert skipped[-1].reason == (
            "missed while the operator was down; catchup: latest ran 2026-03-07T15:00"
        )
        [catchup] = [r for r in rows if r.origin == "catchup"]
        assert (catchup.slot, catchup.status) == ("2026-03-07T15:00", "succeeded")
        assert w.runs.counters()["a/jobs/min"].missed == 178  # counters unchanged
    finally:
        w.close()


# -- the CLI end to end ---------------------------------------------------------------------------

AGENT = """\
name: Agent A
timezone: UTC
planner:
  jobs:
    - name: tick
      schedule: "*/10 * * * *"
      action: {chat: {template: "tick {date}"}}
  triggers:
    - name: mail
      webhook: {secret_env: MAIL_SECRET}
      filter:
        subject: {contains: invoice}
      action: {chat: {template: "mail: {subject}"}}
"""

cli = CliRunner()


def invoke(*args: str) -> tuple[int, str, str]:
    result = cli.invoke(app, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.stdout, result.stderr


def test_cli_explain_job_and_deliveries(tmp_path: Path) -> None:
    agents, state = tmp_path / "agents", tmp_path / "state"
    agents.mkdir()
    (agents / "a.yaml").write_text(AGENT, encoding="utf-8")
    flags = ["--state-dir", str(state)]
    code, _, err = invoke("reconcile", "--yes", "--path", str(agents), *flags)
    assert code == 0, err
    settings = Settings.resolve(state_dir=state, env={})

    # a few fires of the applied job, a restart after an outage (missed slots, catch-up)
    start = datetime.now(UTC).replace(second=0, microsecond=0) + timedelta(minutes=1)
    start = start.replace(minute=start.minute - start.minute % 10) + timedelta(minutes=10)
    clock = ManualClock(start - timedelta(seconds=30))
    with RunStore(state / "runs.db") as runs, LocalOutbox(state / "outbox.db") as outbox:
        runner = JobRunner(runs, Executors(chat=outbox, workflow=outbox))
        for offline in (False, True):
            sched = Scheduler(runner, local_jobs(settings.state_db), clock=clock)
            sched.reload()
            stop = clock.now() + timedelta(minutes=25)
            while (at := sched.next_at()) is not None and at <= stop:
                clock.set(max(clock.now(), at))
                for job, fire in sched.due(clock.now()):
                    sched.fire(job, fire)
            sched.close()
            if not offline:
                clock.set(clock.now() + timedelta(minutes=40))  # down: 3 slots missed, 1 caught up

    fmt = "%Y-%m-%dT%H:%M:%S+00:00"
    window = ["--from", (start - timedelta(minutes=5)).strftime(fmt)]
    window += ["--to", (start + timedelta(minutes=95)).strftime(fmt)]
    code, out, err = invoke("explain", "a/tick", *window, *flags)
    assert code == 0, err
    hm = f"{start:%Y-%m-%d %H:%M} +00:00"
    assert out.startswith("a/jobs/tick (job on local, ")
    assert "schedule: */10 * * * * (Every 10 minutes) in UTC; dst vixie" in out
    assert f"{hm}  ran          succeeded: run sched-" in out
    assert "missed while the operator was down; catchup: latest ran" in out
    assert "via catchup (catch-up after a restart)" in out
    assert "upcoming" in out
    code, out, _ = invoke("explain", "a/jobs/tick", "--format", "json", *window, *flags)
    data = json.loads(out)
    counts = data["counts"]
    assert counts["ran"] == 6 and counts["skipped"] == 3 and data["key"] == "a/jobs/tick"

    # deliveries: one runs, one the filter ignores, one unknown
    with Inbox(state / INBOX_DB_FILE) as inbox:
        for delivery_id, subject in (("d_ok", "Invoice 42"), ("d_no", "Hello")):
            body = json.dumps({"subject": subject}).encode()
            headers = {"content-type": "application/json", "x-other": "not shown"}
            inbox.insert(
                NewDelivery(delivery_id, "webhook", body, headers, trigger_key="a/triggers/mail")
            )
        with RunStore(state / "runs.db") as runs, LocalOutbox(state / "outbox.db") as outbox:
            worker = Worker(
                inbox=inbox,
                routes=Routes(settings),
                runs=runs,
                executors=Executors(chat=outbox, workflow=outbox),
            )
            assert worker.drain() == 2
    code, out, err = invoke("explain", "--delivery", "d_ok", *flags)
    assert code == 0, err
    assert "ok  route     routed by key to a/triggers/mail (local" in out
    assert 'subject contains "invoice": passed (subject = "Invoice 42")' in out
    assert "would start a chat thread" in out and "mail: Invoice 42" in out
    assert re.search(r"run \d+ attempt 1 \(webhook\) succeeded", out)
    assert "content-type: application/json" in out and "not shown" not in out
    code, out, _ = invoke("explain", "--delivery", "d_no", *flags)
    assert code == 0
    assert "NO  filter    filter does not match: subject" in out
    assert 'subject contains "invoice": failed (subject = "Hello")' in out
    assert "skipped at" in out and "filter did not match" in out
    code, out, _ = invoke("explain", "--delivery", "d_no", "--format", "json", *flags)
    [step] = [s for s in json.loads(out)["steps"] if s["name"] == "filter"]
    assert step["ok"] is False and step["checks"][0]["value"] == "Hello"
    code, _, err = invoke("explain", "--delivery", "nope", *flags)
    assert code == 1 and "error: no delivery nope in the inbox" in err
    code, _, err = invoke("explain", "a/missing", *flags)
    assert code == 1 and "error: no applied job `a/missing`" in err
    code, _, err = invoke("explain", "a/triggers/mail", *flags)
    assert code == 1 and "is a trigger: explain one of its deliveries" in err


def test_unknown_key_is_not_found(tmp_path: Path) -> None:
    settings = Settings.resolve(state_dir=tmp_path, env={})
    with pytest.raises(NotFoundError, match="nothing was applied yet"):
        explain_load.job(settings, "a/jobs/x", start=None, end=None, now=utc(2026, 3, 1))


def test_inngest_spring_gap_is_explained_as_never_fired_not_as_missing() -> None:
    """Issue 16.6: robfig skips a wall time that does not exist, so on Inngest the vixie catch-up
    is not expected (no "no run recorded"), and the timeline says why."""
    spec = ny("30 2 * * *")
    t = timeline(spec, [], utc(2026, 3, 8, 0), utc(2026, 3, 8, 12), backend="inngest")
    [(at, status, text)] = slots(t)
    assert at.startswith("2026-03-08T03:00") and status != "no run"
    assert "does not exist that day; inngest (robfig/cron) never fires a skipped time" in text
    local = timeline(spec, [], utc(2026, 3, 8, 0), utc(2026, 3, 8, 12), backend="local")
    assert [s[1] for s in slots(local)] == ["no run"]  # the embedded scheduler would fire it
