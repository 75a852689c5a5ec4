"""CI against the shared state: a dry run takes no lock and writes nothing, on both engines,
and every applier sees what another one applied.

The backends are the production ones (Inngest and Composio on their fakes), as on a CI runner;
the state is a SQLite directory or a throwaway PostgreSQL schema.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from planner_operator.core.settings import Settings
from planner_operator.reconcile import plan as plan_mod
from planner_operator.reconcile.engine import SourceSpec, reconcile
from planner_operator.state import open as state_open
from tests.fakes.composio_server import FakeComposio
from tests.fakes.inngest_server import FakeInngest
from tests.support import shared_state
from tests.support.inngest_serve import serving_mount


@pytest.fixture
def backends(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[FakeInngest, FakeComposio]]:
    for name in ("INNGEST_SIGNING_KEY", "INNGEST_EVENT_KEY", "COMPOSIO_WEBHOOK_SECRET"):
        monkeypatch.delenv(name, raising=False)
    with FakeInngest() as inngest, FakeComposio() as composio:
        for name, value in shared_state.production_env(inngest, composio).items():
            monkeypatch.setenv(name, value)
        yield inngest, composio


@pytest.fixture(params=["sqlite", "postgres"])
def engine(request: pytest.FixtureRequest) -> str | None:
    return request.getfixturevalue("pg_url") if request.param == "postgres" else None


@contextmanager
def serving(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The serving app over the shared served-job table: only it syncs Inngest."""
    with serving_mount(settings, dict(os.environ)) as origin:
        monkeypatch.setenv("INNGEST_SERVE_ORIGIN", origin)
        yield


def settings_in(directory: Path, url: str | None) -> Settings:
    """A runner's settings: its own state directory, the shared database if there is one."""
    at = Settings.at(directory / "state")
    return Settings(at.state_dir, at.state_db, at.ledger_db, 0.0, database_url=url)


def agents_in(directory: Path, schedule: str) -> SourceSpec:
    agents = directory / "agents"
    agents.mkdir(parents=True, exist_ok=True)
    (agents / "recruiting.yaml").write_text(shared_state.agent(schedule), encoding="utf-8")
    return SourceSpec(path=agents)


def test_a_dry_run_takes_no_lock_and_writes_nothing(
    backends: tuple[FakeInngest, FakeComposio],
    engine: str | None,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    inngest, composio = backends
    settings = settings_in(tmp_path, engine)
    with serving(settings, monkeypatch):
        applied = reconcile(agents_in(tmp_path, "0 9 * * 1"), settings)
    assert applied.applied is not None and applied.applied.ok, applied.applied
    changed = agents_in(tmp_path, "0 10 * * 1")  # the PR: one schedule moves
    before = shared_state.fingerprint(settings)
    writes = (len(composio.requests), [r for r in inngest.requests if r[0] != "GET"])
    # another applier holds the lock: a dry run that took it would fail at once (timeout 0)
    with state_open.apply_lock(settings, holder="the applier", timeout=0.0):
        outcome = reconcile(changed, settings, dry_run=True)
    assert outcome.applied is None
    assert [(c.op, c.key) for c in outcome.plan.changes if c.op is not plan_mod.Op.NOOP] == [
        (plan_mod.Op.UPDATE, "recruiting/jobs/morning")
    ]
    assert shared_state.fingerprint(settings) == before
    assert [r for r in inngest.requests if r[0] != "GET"] == writes[1]
    assert all(r.method == "GET" for r in composio.requests[writes[0] :])


def test_a_fresh_runner_plans_no_changes_after_another_applied(
    backends: tuple[FakeInngest, FakeComposio],
    pg_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Two runners, one database: nothing of the apply may stay in the first runner's files."""
    first, second = tmp_path / "runner-1", tmp_path / "runner-2"
    with serving(settings_in(first, pg_url), monkeypatch):
        applied = reconcile(agents_in(first, "0 9 * * 1"), settings_in(first, pg_url))
    assert applied.applied is not None and applied.applied.ok, applied.applied
    again = reconcile(agents_in(second, "0 9 * * 1"), settings_in(second, pg_url), dry_run=True)
    assert not again.plan.has_changes, [str(c) for c in again.plan.changes]
    assert again.plan.ok


def test_a_fresh_runner_deletes_what_another_created(
    backends: tuple[FakeInngest, FakeComposio],
    pg_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The Composio accounts the operator created triggers under are shared too, so a runner
    that no longer declares one still lists (and deletes) its trigger."""
    first, second = tmp_path / "runner-1", tmp_path / "runner-2"
    with serving(settings_in(first, pg_url), monkeypatch):
        assert reconcile(agents_in(first, "0 9 * * 1"), settings_in(first, pg_url)).plan.ok
    spec = agents_in(second, "0 9 * * 1")
    assert spec.path is not None
    text = shared_state.agent("0 9 * * 1")
    start, end = text.index("    - name: recruiter-email"), text.index("    - name: deploys")
    (spec.path / "recruiting.yaml").write_text(text[:start] + text[end:], encoding="utf-8")
    outcome = reconcile(spec, settings_in(second, pg_url), dry_run=True)
    assert [(c.op, c.key) for c in outcome.plan.changes if c.op is not plan_mod.Op.NOOP] == [
        (plan_mod.Op.DELETE, "recruiting/triggers/recruiter-email")
    ]
