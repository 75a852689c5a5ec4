"""One read model: `status`, the API, the dashboard and /metrics agree on every resource's state.

A table of fixture states is built on real state (the example agents plus a small agent whose
file breaks, reconciled with Composio triggers on the fake Composio API and the rest embedded;
then remote edits and a deletion, instances Composio disabled, an expired account and
Composio lifecycle events) and read through all four consumers: the CLI's
``status --format json``, ``GET /api/jobs`` and ``/api/triggers``, the dashboard page and the
``planner_resource_state`` series of ``/metrics``. Each must say what the table says, for every
row, and so all four agree. A backend that cannot be read is its own case (every row error).
"""

from __future__ import annotations

import json
import re
import shutil
import time
from collections.abc import Iterator, Mapping
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from planner_operator.backends.local import LocalScheduleBackend, LocalTriggerBackend
from planner_operator.backends.select import open_backends
from planner_operator.cli.main import app as cli
from planner_operator.core.settings import Settings
from planner_operator.reconcile.engine import SourceSpec, reconcile
from planner_operator.server.app import create_app
from planner_operator.state.inbox import Inbox
from planner_operator.state.ledger import Ledger
from tests.fakes.composio_server import FakeComposio
from tests.server.api.status_state import AGENTS, ENV

FROZEN_AGENT = """\
id: ops-agent
name: Ops Agent
planner:
  jobs:
    - name: steady
      schedule: "0 6 * * *"
      action: {chat: {template: "Morning checks."}}
    - name: resting
      schedule: "0 7 * * *"
      enabled: false
      action: {chat: {template: "Weekly checks."}}
    - name: moved
      schedule: "0 8 * * *"
      action: {chat: {template: "Moved checks."}}
"""

# key -> (the state every consumer must show, a fragment of the detail the CLI and API show)
TABLE: dict[str, tuple[str, str]] = {
    "job-application-agent/jobs/morning-job-check": ("active", ""),
    "sales-agent/jobs/quarterly-forecast": ("paused", "enabled: false in its file"),
    "engineering-agent/jobs/slack-digest": ("drifted", "changed remotely: schedule"),
    "engineering-agent/triggers/deploy-hook": ("drifted", "missing remotely"),
    # Composio disabled it, the account is fine: the next reconcile re-enables it
    "sales-agent/triggers/new-contact": ("drifted", "changed remotely: enabled"),
    # the account expired: Composio disabled it and only a reconnect helps
    "job-application-agent/triggers/recruiter-email": ("error", "EXPIRED"),
    "engineering-agent/triggers/new-issue": ("error", "disabled: too many errors"),
    # a lifecycle error outranks the drift that comes with it (a reconcile alone repairs that)
    "engineering-agent/triggers/incident-mention": ("error", "changed remotely: enabled"),
    "ops-agent/jobs/steady": ("frozen", "ops-agent.yaml failed to load"),
    "ops-agent/jobs/resting": ("frozen", "enabled: false in its file"),  # frozen over paused
    "ops-agent/jobs/moved": ("drifted", "failed to load"),  # drifted over frozen
}


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeComposio]:
    with FakeComposio() as server:
        yield server


@pytest.fixture(scope="module")
def backend_env(fake: FakeComposio) -> dict[str, str]:
    """Composio triggers on the fake Composio API, jobs and webhook triggers embedded."""
    return fake.env(PLANNER_SCHEDULE_BACKEND="local")


def _reconcile(agents: Path, settings: Settings, env: Mapping[str, str]) -> None:
    reconcile(SourceSpec(path=agents), settings, backends_factory=lambda s: open_backends(s, env))


@pytest.fixture(scope="module")
def fixture_states(
    tmp_path_factory: pytest.TempPathFactory, fake: FakeComposio, backend_env: dict[str, str]
) -> Settings:
    root = tmp_path_factory.mktemp("one-read-model")
    agents = root / "agents"
    shutil.copytree(AGENTS, agents)
    (agents / "ops-agent.yaml").write_text(FROZEN_AGENT, encoding="utf-8")
    settings = Settings.resolve(state_dir=root / "state", env={})
    _reconcile(agents, settings, backend_env)
    (agents / "ops-agent.yaml").write_text(FROZEN_AGENT + "  triggers: [oops", encoding="utf-8")
    _reconcile(agents, settings, backend_env)  # records ops-agent.yaml as frozen
    with Ledger(settings.ledger_db) as ledger:
        found = {key: ledger.get(key) for key in TABLE}
    owned = {key: e for key, e in found.items() if e is not None}
    assert owned.keys() == TABLE.keys()
    with LocalScheduleBackend(settings.state_db) as jobs:
        for key in ("engineering-agent/jobs/slack-digest", "ops-agent/jobs/moved"):
            e = owned[key]
            jobs.update(e.remote_id, e.key, {**e.spec, "schedule": "0 5 * * *"})
    with LocalTriggerBackend(settings.state_db) as triggers:
        triggers.delete(owned["engineering-agent/triggers/deploy-hook"].remote_id)
    fake.expire_account("ca_gmail_jobsearch")
    for key in ("sales-agent/triggers/new-contact", "engineering-agent/triggers/incident-mention"):
        fake.disable_by_composio(owned[key].remote_id)
    with Inbox(settings.inbox_db) as box:  # composio.trigger.disabled events
        for key in (
            "engineering-agent/triggers/new-issue",
            "engineering-agent/triggers/incident-mention",
        ):
            box.set_trigger_status(
                f"trigger:{owned[key].remote_id}",
                "disabled",
                "too many errors",
                delivery_id=f"d-{key}",
                at=time.time(),
            )
    return settings


# -- the four consumers, each reduced to {key: (state, detail)} --------------------------------


def cli_states(settings: Settings) -> dict[str, tuple[str, str]]:
    result = CliRunner().invoke(
        cli, ["status", "--format", "json", "--state-dir", str(settings.state_dir)]
    )
    assert result.exit_code == 0, result.stdout
    rows = json.loads(result.stdout)["rows"]
    return {r["key"]: (r["state"], r["detail"]) for r in rows if r["state"] != "unmanaged"}


def api_states(client: TestClient) -> dict[str, tuple[str, str]]:
    rows = client.get("/api/jobs").json() + client.get("/api/triggers").json()
    return {r["key"]: (r["state"], r["detail"]) for r in rows}


class _Badges(HTMLParser):
    """The first badge of each ``<tr data-key=...>``: the row's status column."""

    def __init__(self) -> None:
        super().__init__()
        self.key: str | None = None
        self.found: dict[str, str] = {}
        self.taking = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        named = dict(attrs)
        if tag == "tr" and named.get("data-key"):
            self.key = named["data-key"]
        classes = (named.get("class") or "").split()
        if tag == "span" and "badge" in classes and self.key and self.key not in self.found:
            self.taking = True

    def handle_data(self, data: str) -> None:
        if self.taking and self.key:
            self.found[self.key] = data.strip()
            self.taking = False


def dashboard_states(client: TestClient) -> dict[str, str]:
    page = client.get("/planner/")
    assert page.status_code == 200
    parser = _Badges()
    parser.feed(page.text)
    return parser.found


SERIES = re.compile(
    r'^planner_resource_state\{agent="([^"]+)",kind="([^"]+)",name="([^"]+)",state="([^"]+)"\} '
    r"(\S+)$"
)


def metrics_states(client: TestClient) -> dict[str, str]:
    out: dict[str, list[str]] = {}
    for line in client.get("/metrics").text.splitlines():
        match = SERIES.match(line)
        if match is not None:
            agent, kind, name, state, value = match.groups()
            key = f"{agent}/{kind}s/{name}"
            out.setdefault(key, [])
            if float(value) == 1.0:
                out[key].append(state)
    assert all(len(states) == 1 for states in out.values()), out  # exactly one state each
    return {key: states[0] for key, states in out.items()}


def all_four(settings: Settings, env: Mapping[str, str]) -> dict[str, dict[str, Any]]:
    """Each consumer's view; ``env`` picks the backends for the server and (os.environ, set by
    the caller) the CLI alike."""
    with TestClient(create_app(settings, {**ENV, **env})) as client:
        return {
            "cli": cli_states(settings),
            "api": api_states(client),
            "dashboard": dashboard_states(client),
            "metrics": metrics_states(client),
        }


def test_every_fixture_state_reads_the_same_through_all_four(
    fixture_states: Settings, backend_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in backend_env.items():
        monkeypatch.setenv(name, value)
    seen = all_four(fixture_states, backend_env)
    keys = seen["api"].keys()
    assert seen["cli"].keys() == keys == seen["dashboard"].keys() == seen["metrics"].keys()
    for key in keys:
        states = {
            "cli": seen["cli"][key][0],
            "api": seen["api"][key][0],
            "dashboard": seen["dashboard"][key],
            "metrics": seen["metrics"][key],
        }
        assert len(set(states.values())) == 1, (key, states)
        if states["api"] != "active":  # an active trigger's CLI row names its event instead
            assert seen["cli"][key][1] == seen["api"][key][1], key
    for key, (state, fragment) in TABLE.items():
        assert seen["api"][key][0] == state, (key, seen["api"][key])
        assert fragment in seen["api"][key][1], (key, seen["api"][key])
        assert fragment in seen["cli"][key][1], (key, seen["cli"][key])
    untouched = keys - TABLE.keys()
    assert untouched and {seen["api"][k][0] for k in untouched} == {"active"}


def test_a_backend_that_cannot_be_read_is_error_everywhere(
    fixture_states: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Composio forced as the trigger backend without its API key: every backend read fails
    monkeypatch.setenv("PLANNER_TRIGGER_BACKEND", "composio")
    monkeypatch.delenv("COMPOSIO_API_KEY", raising=False)
    seen = all_four(fixture_states, {"PLANNER_TRIGGER_BACKEND": "composio"})
    keys = seen["api"].keys()
    assert len(keys) == 15
    for key in keys:
        assert seen["cli"][key][0] == seen["api"][key][0] == "error", key
        assert seen["dashboard"][key] == seen["metrics"][key] == "error", key
        assert "cannot read the backend" in seen["cli"][key][1]
        assert seen["cli"][key][1] == seen["api"][key][1]
