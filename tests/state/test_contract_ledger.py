"""The ledger contract: ownership rows, replace bookkeeping, history and intents on SQLite and
PostgreSQL (tests taking ``ledger``); schema safety of the SQLite files (tests taking a path)."""

from __future__ import annotations

import sqlite3
import tempfile
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from planner_operator.core.canonical import spec_hash
from planner_operator.core.records import Intent, OwnedEntry
from planner_operator.core.settings import Settings
from planner_operator.errors import StateError
from planner_operator.state import db
from planner_operator.state import open as state_open
from planner_operator.state.ledger import COMPONENT, MIGRATIONS, Ledger

SPEC = {"schedule": "0 9 * * 1", "enabled": True, "action": {"chat": {"template": "hi {name}"}}}


def entry(key: str = "agent/jobs/a", remote_id: str = "job_1", **changes: object) -> OwnedEntry:
    base = OwnedEntry(
        key=key,
        kind="job" if "/jobs/" in key else "trigger",
        backend="local",
        remote_id=remote_id,
        spec_hash=spec_hash(SPEC),
        spec=SPEC,
        revision="abc123",
        source="agents/agent.yaml",
        applied_at=datetime(2025, 1, 2, 3, 4, 5, 678000, tzinfo=UTC),
    )
    return replace(base, **changes)  # type: ignore[arg-type]


@pytest.fixture
def ledger(store: Settings) -> Iterator[Ledger]:
    with state_open.ledger(store) as led:
        yield led


def test_new_ledger_is_empty(ledger: Ledger) -> None:
    assert ledger.entries() == []
    assert ledger.get("agent/jobs/a") is None
    assert ledger.get_meta("last_revision") is None


def test_get_many_is_get_of_each_key_in_one_read(ledger: Ledger) -> None:
    """A page's ledger rows at once, across more keys than one IN list holds; retired rows
    and unknown keys are absent, as ``get`` answers None for them."""
    ledger.record(entry("agent/jobs/a", "job_1"))
    ledger.record(entry("agent/triggers/t", "ti_1"))
    ledger.record(entry("agent/jobs/b", "job_2"))
    ledger.forget(backend="local", remote_id="job_2")
    keys = [
        "agent/jobs/a",
        "agent/triggers/t",
        "agent/jobs/b",
        *(f"x/jobs/{n}" for n in range(600)),
    ]
    found = ledger.get_many(keys)
    assert sorted(found) == ["agent/jobs/a", "agent/triggers/t"]
    for key in keys:
        assert found.get(key) == ledger.get(key)


def test_record_then_get_round_trips_every_field(ledger: Ledger) -> None:
    e = entry(protect=True)
    ledger.record(e)
    assert ledger.get(e.key) == e
    assert ledger.entries() == [e]


def test_record_is_an_upsert_for_the_same_remote_id(ledger: Ledger) -> None:
    ledger.record(entry())
    newer = entry(spec={"schedule": "@daily"}, spec_hash="h2", revision="def456")
    ledger.record(newer)
    assert ledger.entries() == [newer]


def test_record_replaces_another_active_owner_of_the_key(ledger: Ledger) -> None:
    ledger.record(entry(remote_id="job_1"))
    ledger.record(entry(remote_id="job_2"))
    assert [e.remote_id for e in ledger.entries()] == ["job_2"]


def test_record_refuses_a_retired_entry(ledger: Ledger) -> None:
    with pytest.raises(ValueError, match="swap"):
        ledger.record(entry(retired=True))


def test_default_applied_at_is_now_and_naive_times_are_utc(ledger: Ledger) -> None:
    before = datetime.now(UTC).replace(microsecond=0)  # stored times keep milliseconds
    ledger.record(entry(key="agent/jobs/now", applied_at=None))
    got = ledger.get("agent/jobs/now")
    assert got is not None
    assert got.applied_at is not None
    assert before <= got.applied_at <= datetime.now(UTC)

    ledger.record(entry(key="agent/jobs/naive", remote_id="j2", applied_at=datetime(2025, 5, 1)))
    naive = ledger.get("agent/jobs/naive")
    assert naive is not None
    assert naive.applied_at == datetime(2025, 5, 1, tzinfo=UTC)

    berlin = timezone(timedelta(hours=2))
    ledger.record(
        entry(
            key="agent/jobs/tz", remote_id="j3", applied_at=datetime(2025, 5, 1, 12, tzinfo=berlin)
        )
    )
    tz = ledger.get("agent/jobs/tz")
    assert tz is not None
    assert tz.applied_at == datetime(2025, 5, 1, 10, tzinfo=UTC)
    assert tz.applied_at.utcoffset() == timedelta(0)


def test_swap_retires_the_old_owner(ledger: Ledger) -> None:
    key = "agent/triggers/mail"
    old = entry(key, "trg_old")
    new = entry(key, "trg_new", spec_hash="h2")
    ledger.record(old)
    ledger.swap(key, new)
    assert ledger.get(key) == new
    assert ledger.entries() == [new, replace(old, retired=True)]
    assert ledger.entries(include_retired=False) == [new]


def test_swap_without_previous_owner_just_records(ledger: Ledger) -> None:
    new = entry("agent/triggers/mail", "trg_new")
    ledger.swap(new.key, new)
    assert ledger.entries() == [new]


def test_swap_twice_keeps_both_old_objects_owned(ledger: Ledger) -> None:
    key = "agent/triggers/mail"
    ledger.record(entry(key, "trg_1"))
    ledger.swap(key, entry(key, "trg_2"))
    ledger.swap(key, entry(key, "trg_3"))  # crash before deleting trg_1, replaced again
    rows = {(e.remote_id, e.retired) for e in ledger.entries()}
    assert rows == {("trg_1", True), ("trg_2", True), ("trg_3", False)}


def test_swap_checks_the_key(ledger: Ledger) -> None:
    with pytest.raises(ValueError, match="agent/jobs/other"):
        ledger.swap("agent/jobs/a", entry("agent/jobs/other"))


def test_forget_removes_active_or_retired_rows_and_is_idempotent(ledger: Ledger) -> None:
    key = "agent/triggers/mail"
    ledger.record(entry(key, "trg_old"))
    ledger.swap(key, entry(key, "trg_new"))
    ledger.forget(backend="local", remote_id="trg_old")
    assert [e.remote_id for e in ledger.entries()] == ["trg_new"]
    ledger.forget(backend="local", remote_id="trg_old")
    ledger.forget(backend="elsewhere", remote_id="trg_new")  # other backend: not ours
    assert [e.remote_id for e in ledger.entries()] == ["trg_new"]
    ledger.forget(backend="local", remote_id="trg_new")
    assert ledger.entries() == []
    assert ledger.get(key) is None


def test_adopt_takes_an_unowned_key(ledger: Ledger) -> None:
    ledger.adopt(entry())
    ledger.adopt(entry(revision="again"))  # same object again: fine
    assert ledger.get("agent/jobs/a") == entry(revision="again")


def test_adopt_refuses_a_key_owned_by_another_object(ledger: Ledger) -> None:
    ledger.record(entry(remote_id="job_mine"))
    with pytest.raises(StateError) as err:
        ledger.adopt(entry(remote_id="job_theirs"))
    assert "job_mine" in str(err.value)
    assert "job_theirs" in str(err.value)
    assert [e.remote_id for e in ledger.entries()] == ["job_mine"]


def test_adopt_refuses_an_object_owned_under_another_key(ledger: Ledger) -> None:
    ledger.record(entry("agent/jobs/a", "job_1"))
    with pytest.raises(StateError, match="agent/jobs/a"):
        ledger.adopt(entry("agent/jobs/b", "job_1"))


def test_one_active_owner_per_key_is_enforced_by_the_schema(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    with Ledger(path) as led:
        led.record(entry())
    conn = sqlite3.connect(path)
    with pytest.raises(sqlite3.IntegrityError):
        conn.execute(
            "INSERT INTO resources (backend, remote_id, key, kind, spec_hash, spec_json, "
            "applied_at) VALUES ('local', 'job_9', 'agent/jobs/a', 'job', 'h', '{}', 'now')"
        )
    conn.close()


def test_meta_set_get_overwrite(ledger: Ledger) -> None:
    ledger.set_meta("last_revision", "abc")
    ledger.set_meta("last_error", "")
    ledger.set_meta("last_revision", "def")
    assert ledger.get_meta("last_revision") == "def"
    assert ledger.get_meta("last_error") == ""


def test_state_persists_across_reopen(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "state.db"
    key = "agent/triggers/mail"
    with Ledger(path) as led:
        led.record(entry("agent/jobs/a", "job_1"))
        led.record(entry(key, "trg_old"))
        led.swap(key, entry(key, "trg_new"))
        led.set_meta("last_revision", "abc123")
        before = led.entries()
    with Ledger(path) as led:
        assert led.entries() == before
        assert led.get_meta("last_revision") == "abc123"


def test_migrations_are_idempotent_across_reopen(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    for _ in range(3):
        Ledger(path).close()
    conn = db.connect(path)
    rows = conn.execute(
        "SELECT version FROM schema_migrations WHERE component = ?", (COMPONENT,)
    ).fetchall()
    conn.close()
    assert rows == [(v,) for v in range(1, len(MIGRATIONS.sqlite) + 1)]


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    Ledger(path).close()
    conn = db.connect(path)
    conn.execute(
        "INSERT INTO schema_migrations (component, version, applied_at) VALUES (?, 5, 'x')",
        (COMPONENT,),
    )
    conn.close()
    newest = len(MIGRATIONS.sqlite)
    with pytest.raises(
        StateError, match=rf"newer planner-operator \(ledger schema v5 > v{newest}\)"
    ):
        Ledger(path)


def test_garbage_file_is_a_state_error(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    path.write_text("key,remote_id\nagent/jobs/a,job_1\n" * 100)
    with pytest.raises(StateError, match="not a usable"):
        Ledger(path)


# -- a model check: the ledger behaves like a dict of active owners plus a set of retired ones --

KEYS = ["a/jobs/x", "a/jobs/y", "a/triggers/z"]
op_strategy = st.tuples(
    st.sampled_from(["record", "swap", "forget", "adopt"]),
    st.sampled_from(KEYS),
    st.sampled_from(["r1", "r2", "r3", "r4"]),
)


@settings(max_examples=40, deadline=None)
@given(st.lists(op_strategy, max_size=25))
def test_ledger_matches_a_simple_model(ops: list[tuple[str, str, str]]) -> None:
    active: dict[str, str] = {}
    retired: set[tuple[str, str]] = set()  # (key, remote_id)

    def owner_of(remote_id: str) -> str | None:
        keys = [k for k, r in active.items() if r == remote_id]
        keys += [k for k, r in retired if r == remote_id]
        return keys[0] if keys else None

    with tempfile.TemporaryDirectory() as tmp, Ledger(Path(tmp) / "state.db") as led:
        for op, key, rid in ops:
            e = entry(key, rid)
            previous = owner_of(rid)
            if op in ("record", "swap", "adopt") and previous not in (None, key):
                continue  # moving one object between keys is not something apply does
            if op == "record":
                led.record(e)
                retired.discard((key, rid))
                active[key] = rid
            elif op == "swap":
                led.swap(key, e)
                if key in active and active[key] != rid:
                    retired.add((key, active[key]))
                retired.discard((key, rid))
                active[key] = rid
            elif op == "forget":
                led.forget(backend="local", remote_id=rid)
                active = {k: r for k, r in active.items() if r != rid}
                retired = {(k, r) for k, r in retired if r != rid}
            elif key in active and active[key] != rid:
                with pytest.raises(StateError):
                    led.adopt(e)
            else:
                led.adopt(e)
                retired.discard((key, rid))
                active[key] = rid
            got_active = {x.key: x.remote_id for x in led.entries() if not x.retired}
            got_retired = {(x.key, x.remote_id) for x in led.entries() if x.retired}
            assert got_active == active
            assert got_retired == retired
            for k in KEYS:
                found = led.get(k)
                assert (found.remote_id if found else None) == active.get(k)
                assert replayed_owner(led, k) == active.get(k)  # history never disagrees


def replayed_owner(led: Ledger, key: str) -> str | None:
    """The key's active remote id according to its history alone (what `explain` replays)."""
    owner: str | None = None
    for row in led.history(key):
        if row.op == "delete" and row.remote_id == owner:
            owner = None
        elif row.op in ("baseline", "create", "update", "adopt"):
            owner = row.remote_id
    return owner


def test_history_records_each_change_in_order(ledger: Ledger) -> None:
    key = "agent/jobs/a"
    paused = {**SPEC, "enabled": False, "timezone": "Europe/Berlin"}
    ledger.record(entry())
    ledger.record(entry())  # the same object and spec again: not a change
    ledger.record(entry(spec=paused, spec_hash=spec_hash(paused), revision="def456"))
    ledger.swap(key, entry(remote_id="job_2"))
    ledger.forget(backend="local", remote_id="job_1")  # the retired object of the replace
    ledger.forget(backend="local", remote_id="job_2")  # the key's own object: deleted
    ledger.adopt(entry(remote_id="job_3"))
    rows = ledger.history(key)
    assert [(r.op, r.remote_id) for r in rows] == [
        ("create", "job_1"),
        ("update", "job_1"),
        ("update", "job_2"),
        ("forget", "job_1"),
        ("delete", "job_2"),
        ("adopt", "job_3"),
    ]
    update = rows[1]
    assert (update.enabled, update.schedule, update.timezone) == (
        False,
        "0 9 * * 1",
        "Europe/Berlin",
    )
    assert update.revision == "def456" and update.spec == paused
    assert rows[0].at == datetime(2025, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)


def test_history_migration_seeds_a_baseline_per_active_row(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    conn = db.connect(path)
    db.migrate(conn, COMPONENT, MIGRATIONS.sqlite[:1])  # a ledger written before history existed
    conn.execute(
        "INSERT INTO resources (backend, remote_id, key, kind, spec_hash, spec_json, revision, "
        "applied_at) VALUES ('local', 'job_1', 'agent/jobs/a', 'job', 'h', ?, 'abc', ?)",
        (
            '{"enabled": false, "schedule": "0 9 * * *", "timezone": "Asia/Tokyo"}',
            "2026-01-01T00:00:00+00:00",
        ),
    )
    conn.close()
    with Ledger(path) as led:
        [row] = led.history("agent/jobs/a")
    assert (row.op, row.enabled, row.schedule, row.timezone) == (
        "baseline",
        False,
        "0 9 * * *",
        "Asia/Tokyo",
    )
    assert row.at == datetime(2026, 1, 1, tzinfo=UTC)


# -- write-ahead intents -------------------------------------------------------------------------


def intent(key: str = "agent/jobs/a", backend: str = "local", **changes: object) -> Intent:
    base = Intent(
        key=key,
        kind="job" if "/jobs/" in key else "trigger",
        backend=backend,
        spec_hash=spec_hash(SPEC),
        spec=SPEC,
        revision="abc123",
        created_at=datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC),
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def test_intent_is_written_once_per_backend_and_key(ledger: Ledger) -> None:
    first, fresh = ledger.write_intent(intent())
    assert fresh and first.id > 0
    assert (first.key, first.backend, first.spec, first.revision) == (
        "agent/jobs/a",
        "local",
        SPEC,
        "abc123",
    )
    assert first.created_at == datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
    # a pending one is kept as it is: it may cover an object an earlier create left
    again, fresh_again = ledger.write_intent(intent(revision="def456"))
    assert (again, fresh_again) == (first, False)
    other, other_fresh = ledger.write_intent(intent(backend="inngest"))
    assert other_fresh and other.id != first.id
    assert ledger.intents() == [other, first]  # ordered by key, then backend


def test_clear_intent_is_by_row_so_a_newer_intent_survives(ledger: Ledger) -> None:
    old, _ = ledger.write_intent(intent())
    ledger.clear_intent(old)
    ledger.clear_intent(old)  # idempotent
    assert ledger.intents() == []
    newer, _ = ledger.write_intent(intent())
    ledger.clear_intent(old)  # a stale handle on the same key clears nothing
    assert ledger.intents() == [newer]


def test_record_clears_its_intent_in_the_same_transaction(ledger: Ledger) -> None:
    mine, _ = ledger.write_intent(intent())
    other, _ = ledger.write_intent(intent("agent/jobs/b"))
    ledger.record(entry(), intent=mine)
    assert ledger.intents() == [other]
    assert [e.key for e in ledger.entries()] == ["agent/jobs/a"]


def test_record_without_an_intent_leaves_intents_alone(ledger: Ledger) -> None:
    pending, _ = ledger.write_intent(intent())
    ledger.record(entry())  # an update: nothing was announced
    assert ledger.intents() == [pending]


def test_swap_clears_its_intent(ledger: Ledger) -> None:
    key = "agent/triggers/t"
    ledger.record(entry(key, "trg_old"))
    mine, _ = ledger.write_intent(intent(key))
    ledger.swap(key, entry(key, "trg_new"), intent=mine)
    assert ledger.intents() == []
    assert sorted((e.remote_id, e.retired) for e in ledger.entries()) == [
        ("trg_new", False),
        ("trg_old", True),
    ]


def test_record_that_fails_keeps_the_intent(ledger: Ledger) -> None:
    mine, _ = ledger.write_intent(intent())
    with pytest.raises(ValueError, match="only active entries"):
        ledger.record(entry(retired=True), intent=mine)
    assert ledger.intents() == [mine]


def test_intents_survive_reopen_and_upgrade_from_a_v2_ledger(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    conn = db.connect(path)
    db.migrate(conn, COMPONENT, MIGRATIONS.sqlite[:2])  # a ledger written before intents existed
    conn.close()
    with Ledger(path) as led:
        assert led.intents() == []
        written, _ = led.write_intent(intent())
    with Ledger(path) as led:
        assert led.intents() == [written]


def test_change_mark_moves_with_every_ownership_change_and_reconcile_record(
    ledger: Ledger,
) -> None:
    marks = [ledger.change_mark()]
    ledger.record(entry())
    marks.append(ledger.change_mark())
    ledger.record(entry(spec={**SPEC, "enabled": False}, spec_hash="changed"))
    marks.append(ledger.change_mark())
    ledger.swap("agent/jobs/a", entry(remote_id="job_2"))
    marks.append(ledger.change_mark())
    ledger.forget(backend="local", remote_id="job_1")
    marks.append(ledger.change_mark())
    ledger.set_meta("last_reconcile", '{"at": "2026-12-07T09:00:00Z"}')
    marks.append(ledger.change_mark())
    ledger.set_meta("agents", "{}")
    marks.append(ledger.change_mark())
    assert len(set(marks)) == len(marks), marks
    assert marks[0] == (0, 0, None, None)
    assert marks[-2][1:3] == (1, '{"at": "2026-12-07T09:00:00Z"}')
    ledger.set_meta("last_applied_revision", "abc")  # other meta does not move it
    assert ledger.change_mark() == marks[-1]
