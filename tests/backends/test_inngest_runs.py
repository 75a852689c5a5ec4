"""Runs of Inngest cron functions as the real server drives them: retries, reruns, invokes.

The fake server (tests/fakes/inngest_server.py) drives the real SDK endpoint of `serve`; the chat
platform is an HTTP endpoint scripted per test (``httpx.MockTransport``, the pattern of
tests/runtime/test_executors.py), so the HTTP executor's own error mapping decides what is
retryable (503) and what is permanent (404).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from planner_operator.core.settings import Settings
from planner_operator.reconcile.engine import SourceSpec, reconcile
from planner_operator.runtime.executors.base import Executors
from planner_operator.runtime.executors.http import HttpExecutor
from planner_operator.state.runs import RunStore
from tests.fakes.inngest_server import FakeInngest
from tests.support.inngest_serve import inngest_env, operator_server, wait_served

APP = "planner-operator"
KEY = "a/jobs/daily"
FN = f"{APP}-a--daily"
SLOT = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
AGENT = (
    "name: A\nplanner:\n  jobs:\n    - name: daily\n      schedule: '0 9 * * *'\n"
    "      action: {chat: {template: 'Good morning, it is {date}'}}\n"
)


class Platform:
    """The chat platform: answers each POST with the next scripted status (then 200s)."""

    def __init__(self, *statuses: int) -> None:
        self.statuses = list(statuses)
        self.keys: list[str] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.keys.append(request.headers.get("idempotency-key", ""))
        status = self.statuses.pop(0) if self.statuses else 200
        if status != 200:
            return httpx.Response(status, json={"error": f"scripted {status}"})
        return httpx.Response(200, json={"thread_id": f"t{len(self.keys)}"})

    def executors(self) -> Executors:
        client = httpx.Client(transport=httpx.MockTransport(self))
        http = HttpExecutor(chat_url="http://platform.test/chat/{agentId}", client=client)
        return Executors(chat=http, workflow=http)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings.resolve(state_dir=tmp_path / "state", env={})


@pytest.fixture
def agents(tmp_path: Path) -> Path:
    directory = tmp_path / "agents"
    directory.mkdir()
    (directory / "a.yaml").write_text(AGENT)
    return directory


@pytest.fixture
def fake() -> Iterator[FakeInngest]:
    with FakeInngest() as server:
        yield server


def serving(
    fake: FakeInngest,
    platform: Platform,
    settings: Settings,
    agents: Path,
    monkeypatch: pytest.MonkeyPatch,
    *,
    retries: int = 3,
) -> Iterator[None]:
    env = inngest_env(fake, monkeypatch)
    env["PLANNER_INNGEST_RETRIES"] = str(retries)
    monkeypatch.setenv("PLANNER_INNGEST_RETRIES", str(retries))
    with operator_server(settings, env, executors=platform.executors()) as origin:
        monkeypatch.setenv("INNGEST_SERVE_ORIGIN", origin)
        outcome = reconcile(SourceSpec(path=agents), settings)
        assert outcome.applied is not None and outcome.applied.ok, outcome.applied
        wait_served(origin)
        yield


def rows(settings: Settings) -> list[tuple[str, str, int, str | None]]:
    with RunStore(settings.state_dir / "runs.db") as runs:
        return [(r.run_id, r.status, r.attempt, r.error) for r in reversed(runs.list(key=KEY))]


def test_step_retries_keep_one_run_row_that_ends_succeeded(
    fake: FakeInngest,
    settings: Settings,
    agents: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    platform = Platform(503, 503)
    for _ in serving(fake, platform, settings, agents, monkeypatch):
        run = fake.fire_cron(FN, SLOT)
    assert run.status == "completed", run.error
    assert run.attempts == 3  # two step retries
    [(run_id, status, attempt, error)] = rows(settings)
    assert (run_id, status, attempt, error) == (run.run_id, "succeeded", 2, None)
    assert len(set(platform.keys)) == 1  # every attempt is the same idempotent call


def test_failure_on_every_attempt_ends_the_run_failed(
    fake: FakeInngest,
    settings: Settings,
    agents: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    platform = Platform(*[503] * 10)
    for _ in serving(fake, platform, settings, agents, monkeypatch, retries=2):
        run = fake.fire_cron(FN, SLOT)
    assert run.status == "failed"
    assert len(platform.keys) == 3  # retries=2: three attempts, then Inngest gives up
    [(run_id, status, attempt, error)] = rows(settings)
    assert (run_id, status, attempt) == (run.run_id, "failed", 2)
    assert error is not None and "503" in error


def test_permanent_executor_error_is_not_retried(
    fake: FakeInngest,
    settings: Settings,
    agents: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    platform = Platform(404)
    for _ in serving(fake, platform, settings, agents, monkeypatch):
        run = fake.fire_cron(FN, SLOT)
    assert run.status == "failed"
    assert len(platform.keys) == 1  # not retried
    assert run.calls[-1].no_retry  # Inngest's non-retriable error: x-inngest-no-retry
    [(_, status, attempt, error)] = rows(settings)
    assert (status, attempt) == ("failed", 0)
    assert error is not None and "404" in error


def test_rerun_of_a_failed_cron_run_runs(
    fake: FakeInngest,
    settings: Settings,
    agents: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    platform = Platform(*[503] * 2)
    for _ in serving(fake, platform, settings, agents, monkeypatch, retries=1):
        failed = fake.fire_cron(FN, SLOT)
        assert failed.status == "failed"
        rerun = fake.rerun(failed)  # the dashboard's Rerun: same event, new run id
    assert rerun.event == failed.event and rerun.run_id != failed.run_id
    assert rerun.status == "completed"
    assert isinstance(rerun.output, dict) and "thread_id" in rerun.output, rerun.output
    assert [(r[0], r[1]) for r in rows(settings)] == [
        (failed.run_id, "failed"),
        (rerun.run_id, "succeeded"),
    ]
    assert platform.keys[-1] != platform.keys[0]  # a rerun is a new call, not a deduped retry


def test_invoke_in_the_same_minute_as_the_cron_fire_runs(
    fake: FakeInngest,
    settings: Settings,
    agents: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    platform = Platform()
    for _ in serving(fake, platform, settings, agents, monkeypatch):
        fired = fake.fire_cron(FN, SLOT)
        fake.clock = lambda: SLOT.timestamp() + 20  # the dashboard's Invoke, 20 s later
        invoked = fake.invoke(FN)
    assert fired.status == invoked.status == "completed"
    assert isinstance(invoked.output, dict) and "thread_id" in invoked.output, invoked.output
    assert [r[1] for r in rows(settings)] == ["succeeded", "succeeded"]
    assert len(set(platform.keys)) == 2
