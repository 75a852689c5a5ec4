"""`reconcile` and `status` end to end on the Composio backend: the CLI, the real SDK, the fake API.

Each test starts the fake on a random port and points the operator at it through the same
environment variables production uses (``COMPOSIO_API_KEY``, ``COMPOSIO_BASE_URL``).
"""

from __future__ import annotations

import email.utils
import json
import stat
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from planner_operator.backends.composio import subscription as composio_webhooks
from planner_operator.cli.main import app
from planner_operator.core.settings import Settings
from planner_operator.reconcile.apply import RetryPolicy
from planner_operator.reconcile.engine import SourceSpec, reconcile
from tests.fakes.composio_server import FakeComposio, Fault

runner = CliRunner()

AGENT = """\
name: Mail agent
planner:
  triggers:
    - name: recruiter-email
      toolkit: gmail
      event: GMAIL_NEW_GMAIL_MESSAGE
      connected_account: ca_gmail_jobsearch
      enabled: {enabled}
      config: {{labelIds: {label}, interval: 5}}
      action:
        chat:
          template: "From {{sender}}: {{subject}}"
    - name: {issue_name}
      toolkit: github
      event: GITHUB_ISSUE_ADDED_EVENT
      connected_account: ca_github_eng
      config: {{owner: acme, repo: platform}}
      action:
        workflow: {{id: triage, input: {{title: "{{title}}", url: "{{url}}"}}}}
"""
GMAIL_KEY = "mail/triggers/recruiter-email"


def agent(
    *, enabled: bool = True, label: str = "INBOX", issue_name: str = "new-issue", only: str = ""
) -> str:
    text = AGENT.format(enabled=str(enabled).lower(), label=label, issue_name=issue_name)
    if only == "gmail":  # drop the second trigger
        text = text[: text.index("    - name: " + issue_name)]
    return text


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeComposio]:
    with FakeComposio() as server:
        for name, value in server.env(PLANNER_SCHEDULE_BACKEND="local").items():
            monkeypatch.setenv(name, value)
        monkeypatch.delenv("COMPOSIO_WEBHOOK_SECRET", raising=False)
        yield server


@pytest.fixture
def agents(tmp_path: Path) -> Path:
    directory = tmp_path / "agents"
    directory.mkdir()
    (directory / "mail.yaml").write_text(agent(), encoding="utf-8")
    return directory


@pytest.fixture
def state(tmp_path: Path) -> list[str]:
    return ["--state-dir", str(tmp_path / "state")]


def invoke(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.stdout, result.stderr


def apply(agents: Path, state: list[str], *extra: str) -> tuple[int, str, str]:
    return invoke("reconcile", "--yes", "--path", str(agents), *state, *extra)


def status_rows(state: list[str]) -> dict[str, dict[str, Any]]:
    code, out, _ = invoke("status", "--format", "json", *state)
    assert code == 0, out
    return {r["key"]: r for r in json.loads(out)["rows"]}


def ids(fake: FakeComposio) -> dict[str, str]:
    """Trigger slug -> instance id (one instance per slug in these tests)."""
    return {i["trigger_name"]: i["id"] for i in fake.instances()}


def test_reconcile_creates_the_instances_and_the_subscription(
    fake: FakeComposio, agents: Path, state: list[str], tmp_path: Path
) -> None:
    code, out, _ = apply(agents, state, "--dry-run", "--detailed-exitcode")
    assert code == 2 and "Plan: 2 to create" in out and fake.count("POST") == 0
    assert "Composio webhook subscription:\n  + (new)  (no webhook subscription" in out
    assert "webhook subscription: create." in out  # the closing line counts it
    code, out, err = apply(agents, state)
    assert code == 0, out + err
    assert "Apply: 2 change(s) applied, 0 failed." in out
    made = ids(fake)
    assert set(made) == {"GMAIL_NEW_GMAIL_MESSAGE", "GITHUB_ISSUE_ADDED_EVENT"}
    rows = status_rows(state)
    assert rows[GMAIL_KEY]["remote_id"] == made["GMAIL_NEW_GMAIL_MESSAGE"]
    assert rows[GMAIL_KEY]["backend"] == "composio" and rows[GMAIL_KEY]["state"] == "active"

    sub = fake.subscription
    assert sub is not None
    assert sub["webhook_url"] == "https://planner.example.com/webhooks/composio"
    assert (sub["version"], sorted(sub["enabled_events"])) == (
        "V3",
        sorted(composio_webhooks.EVENTS),
    )
    settings = Settings.at(tmp_path / "state")
    assert composio_webhooks.accepted_secrets(settings, {}) == (sub["secret"],)
    assert stat.S_IMODE((settings.state_dir / "secrets.db").stat().st_mode) == 0o600
    assert sub["secret"] not in out + err

    code, out, _ = apply(agents, state, "--dry-run", "--detailed-exitcode")
    assert code == 0 and "No changes." in out


def test_a_config_edit_is_a_replace_and_the_ledger_follows(
    fake: FakeComposio, agents: Path, state: list[str]
) -> None:
    apply(agents, state)
    old = ids(fake)["GMAIL_NEW_GMAIL_MESSAGE"]
    (agents / "mail.yaml").write_text(agent(label="STARRED"), encoding="utf-8")
    code, out, _ = apply(agents, state, "--dry-run")
    assert "-/+ " + GMAIL_KEY in out and "config cannot change in place" in out
    code, out, _ = apply(agents, state)
    assert code == 0 and "1 change(s) applied" in out
    new = ids(fake)["GMAIL_NEW_GMAIL_MESSAGE"]
    assert new != old and old not in {i["id"] for i in fake.instances()}
    assert len(fake.instances()) == 2
    assert [i["trigger_config"] for i in fake.instances() if i["id"] == new] == [
        {"labelIds": "STARRED", "interval": 5}
    ]
    rows = status_rows(state)
    assert rows[GMAIL_KEY]["remote_id"] == new and len(rows) == 2


def test_disable_then_delete(fake: FakeComposio, agents: Path, state: list[str]) -> None:
    apply(agents, state)
    (agents / "mail.yaml").write_text(agent(enabled=False), encoding="utf-8")
    code, out, _ = apply(agents, state)
    assert code == 0 and "~ " + GMAIL_KEY in out and "disabled" in out
    [gmail] = [i for i in fake.instances() if i["trigger_name"] == "GMAIL_NEW_GMAIL_MESSAGE"]
    assert gmail["disabled_at"] is not None
    assert status_rows(state)[GMAIL_KEY]["state"] == "paused"

    (agents / "mail.yaml").write_text(agent(enabled=False, only="gmail"), encoding="utf-8")
    code, out, _ = apply(agents, state)
    assert code == 0 and "- mail/triggers/new-issue" in out
    assert set(ids(fake)) == {"GMAIL_NEW_GMAIL_MESSAGE"}


def test_a_rename_keeps_the_instance(fake: FakeComposio, agents: Path, state: list[str]) -> None:
    """Composio hands the new key the old key's instance; deleting the old key must not."""
    apply(agents, state)
    before = ids(fake)
    (agents / "mail.yaml").write_text(agent(issue_name="issue-triage"), encoding="utf-8")
    code, out, err = apply(agents, state)
    assert "renamed" in out, out + err
    assert code == 0, out + err  # the old key's delete sees the instance moved: nothing to do
    assert ids(fake) == before
    assert fake.count("DELETE", before["GITHUB_ISSUE_ADDED_EVENT"]) == 0
    rows = status_rows(state)
    assert rows["mail/triggers/issue-triage"]["remote_id"] == before["GITHUB_ISSUE_ADDED_EVENT"]
    assert "mail/triggers/new-issue" not in rows
    code, out, _ = apply(agents, state, "--dry-run", "--detailed-exitcode")
    assert code == 0 and "No changes." in out


def test_unmanaged_instances_are_reported_and_never_touched(
    fake: FakeComposio, agents: Path, state: list[str]
) -> None:
    foreign = fake.add_instance("GMAIL_NEW_GMAIL_MESSAGE", "ca_gmail_jobsearch", {"query": "x"})
    _, out, _ = apply(agents, state, "--dry-run")
    assert "unmanaged" in out.lower() and foreign in out
    apply(agents, state)
    (agents / "mail.yaml").write_text(agent(only="gmail"), encoding="utf-8")
    apply(agents, state)
    assert foreign in {i["id"] for i in fake.instances()}
    assert [r["state"] for r in status_rows(state).values() if r["remote_id"] == foreign] == [
        "unmanaged"
    ]
    assert fake.count("DELETE", foreign) == 0 and fake.count("PATCH", foreign) == 0


def test_an_instance_composio_disabled_is_shown_and_reenabled(
    fake: FakeComposio, agents: Path, state: list[str]
) -> None:
    apply(agents, state)
    gmail = ids(fake)["GMAIL_NEW_GMAIL_MESSAGE"]
    fake.disable_by_composio(gmail)  # a failing poller: the account is fine
    code, out, _ = apply(agents, state, "--dry-run", "--detailed-exitcode")
    assert code == 2 and "resume" in out
    row = status_rows(state)[GMAIL_KEY]
    assert row["state"] == "drifted" and "changed remotely: enabled" in row["detail"]
    code, out, _ = invoke("reconcile", "--check", *state)
    assert code == 2 and "changed remotely: enabled" in out
    code, out, _ = apply(agents, state)
    assert code == 0 and "resume" in out
    assert [i["disabled_at"] for i in fake.instances() if i["id"] == gmail] == [None]


def test_an_expired_account_stops_its_file_and_nothing_loops(
    fake: FakeComposio, agents: Path, state: list[str]
) -> None:
    """Composio disabled the instance because the connection expired: say so, do not re-enable."""
    apply(agents, state)
    gmail = ids(fake)["GMAIL_NEW_GMAIL_MESSAGE"]
    fake.expire_account("ca_gmail_jobsearch")
    code, out, err = apply(agents, state)
    assert code == 1 and "mail.yaml:4:" in out + err
    assert "connected account `ca_gmail_jobsearch` is EXPIRED" in out + err
    assert fake.count("PATCH", gmail) == 0  # not re-enabled
    row = status_rows(state)[GMAIL_KEY]
    assert row["state"] == "error" and "is EXPIRED: reconnect it in Composio" in row["detail"]
    fake.reconnect("ca_gmail_jobsearch")
    code, out, _ = apply(agents, state)
    assert code == 0 and "resume" in out
    assert [i["disabled_at"] for i in fake.instances() if i["id"] == gmail] == [None]


def test_a_create_whose_answer_was_lost_converges_on_rerun_without_a_duplicate(
    fake: FakeComposio, agents: Path, tmp_path: Path
) -> None:
    (agents / "mail.yaml").write_text(agent(only="gmail"), encoding="utf-8")
    settings = Settings.resolve(state_dir=tmp_path / "state", env={})
    source = SourceSpec(path=agents)
    fake.inject(Fault("commit_then_500", "GMAIL.*/upsert$", times=3))  # every SDK attempt
    first = reconcile(source, settings, retry=RetryPolicy(attempts=1))
    assert first.applied is not None and not first.applied.ok
    [landed] = fake.instances()  # the write happened, once, and nobody recorded it

    second = reconcile(source, settings, retry=RetryPolicy(attempts=1))
    # No key on a Composio instance: until the create takes it back, it shows as unmanaged.
    assert [u.remote_id for u in second.plan.unmanaged] == [landed["id"]]
    assert second.applied is not None and second.applied.ok
    assert [i["id"] for i in fake.instances()] == [landed["id"]]
    assert [r.remote_id for r in second.applied.items] == [landed["id"]]
    third = reconcile(source, settings)
    assert not third.plan.has_changes and not third.plan.unmanaged


def test_429_storms_never_bring_a_request_before_retry_after(
    fake: FakeComposio, agents: Path, state: list[str]
) -> None:
    fake.inject(Fault("429", "/upsert$", times=3, retry_after="1"))
    date = email.utils.formatdate(time.time() + 2, usegmt=True)
    fake.inject(Fault("429", "/active$", times=1, retry_after=date))
    code, out, err = apply(agents, state)
    assert code == 0, out + err
    assert len(fake.instances()) == 2
    seen = fake.requests
    limited = [(n, s.not_before) for n, s in enumerate(seen) if s.not_before is not None]
    assert len(limited) == 4
    for index, not_before in limited:
        assert all(later.at >= not_before for later in seen[index + 1 :]), (index, seen)


def test_missing_and_rejected_keys_are_clear_errors(
    fake: FakeComposio, agents: Path, state: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("COMPOSIO_API_KEY")
    code, _, err = apply(agents, state)
    assert code == 1 and "COMPOSIO_API_KEY is not set" in err
    monkeypatch.setenv("COMPOSIO_API_KEY", "ak_wrong_but_secret_123")
    code, out, err = apply(agents, state)
    assert code == 1 and "rejected COMPOSIO_API_KEY (401" in err
    assert "ak_wrong_but_secret_123" not in out + err
    assert fake.count("POST") == 0


def test_preflight_errors_stop_the_file_before_any_write(
    fake: FakeComposio, agents: Path, state: list[str]
) -> None:
    # (a misspelt placeholder of this known type is caught offline, before preflight:
    # tests/config/test_semantic.py)
    text = agent().replace("ca_gmail_jobsearch", "ca_unknown")
    (agents / "mail.yaml").write_text(text, encoding="utf-8")
    code, out, err = apply(agents, state)
    assert code == 1
    assert "mail.yaml:4:" in out + err  # the trigger's line
    assert "connected account `ca_unknown` does not exist" in out + err
    assert fake.count("POST") == 0 and fake.instances() == []


def test_another_apps_subscription_is_shown_and_taken_over_only_with_the_flag(
    fake: FakeComposio, agents: Path, state: list[str]
) -> None:
    """Issue 15/16: reconcile used to re-point it silently, printing 'No changes'."""
    with httpx.Client(base_url=fake.base_url, headers={"x-api-key": fake.api_key}) as http:
        http.post(
            "/api/v3.1/webhook_subscriptions",
            json={
                "webhook_url": "https://crm.example.com/hooks",
                "enabled_events": ["composio.trigger.message"],
                "version": "V2",
            },
        ).raise_for_status()
    code, out, _ = apply(agents, state, "--dry-run")
    assert code == 1 and "No changes" not in out
    assert "points at https://crm.example.com/hooks (V2), set by another app" in out
    assert "--take-over-subscription" in out
    code, out, _ = apply(agents, state)
    assert code == 1 and "Apply: 2 change(s) applied" in out  # the triggers, not the subscription
    assert fake.count("PATCH", "webhook_subscriptions") == 0
    assert fake.subscription is not None and fake.subscription["version"] == "V2"
    sub = status_json(state)["subscription"]
    assert sub["owned"] is False and sub["blocked"]

    code, out, _ = apply(agents, state, "--take-over-subscription")
    assert code == 0, out
    assert fake.subscription["webhook_url"] == "https://planner.example.com/webhooks/composio"
    code, out, _ = apply(agents, state, "--dry-run", "--detailed-exitcode")
    assert code == 0 and "No changes." in out


def test_a_missing_secret_is_named_and_never_rotated_by_reconcile(
    fake: FakeComposio, agents: Path, state: list[str], tmp_path: Path
) -> None:
    apply(agents, state)
    (tmp_path / "state" / "secrets.db").unlink()  # e.g. a new state directory
    fake.secret_on_read = False  # the docs' Composio: no secret on reads
    code, out, _ = apply(agents, state, "--dry-run")
    assert "planner-operator composio rotate-secret" in out
    code, out, err = apply(agents, state)
    assert code == 1 and "planner-operator composio rotate-secret" in err
    assert fake.count("POST", "rotate_secret") == 0


def status_json(state: list[str]) -> dict[str, Any]:
    code, out, _ = invoke("status", "--format", "json", *state)
    assert code == 0, out
    return dict(json.loads(out))


def test_with_composio_configured_the_live_type_list_replaces_the_bundled_catalog(
    fake: FakeComposio, agents: Path, state: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 18: offline, the bundled catalog says a slug is unknown; with Composio configured,
    Composio's own list says it (once), so a type added since the snapshot is never refused."""
    typo = agent(only="gmail").replace("GMAIL_NEW_GMAIL_MESSAGE", "GMAIL_NEW_GMAIL_MESAGE")
    (agents / "mail.yaml").write_text(typo, encoding="utf-8")
    _, out, err = apply(agents, state, "--dry-run")
    text = out + err
    assert "unknown Composio trigger type `GMAIL_NEW_GMAIL_MESAGE` for toolkit `gmail`" in text
    assert "did you mean `GMAIL_NEW_GMAIL_MESSAGE`?" in text
    assert "unknown trigger type `GMAIL_NEW_GMAIL_MESAGE`" not in text  # the offline finding
    monkeypatch.setenv("PLANNER_TRIGGER_BACKEND", "local")  # no Composio: the catalog speaks
    _, out, err = apply(agents, state, "--dry-run")
    assert "mail.yaml:6:14: planner.triggers[0].event: unknown trigger type " in out + err
