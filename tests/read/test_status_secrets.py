"""`planner-operator status` says which trigger's secret is unset in its environment (issue 17),
through the one classifier, as the API and the dashboard do (tests/server/test_webhooks.py)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from planner_operator.core.settings import Settings
from planner_operator.read import status
from tests.support.webhook_env import (
    DEPLOY_KEY,
    ENV,
    GITHUB_KEY,
    MAIL_KEY,
    apply_triggers,
    default_triggers,
)

NOW = datetime(2026, 1, 5, 12, tzinfo=UTC)


def test_status_rows_name_the_unset_secret_and_leave_the_rest_alone(tmp_path: Path) -> None:
    settings = Settings.resolve(state_dir=tmp_path, env={})
    apply_triggers(settings, default_triggers())
    env = {k: v for k, v in ENV.items() if k != "GH_WEBHOOK_SECRET"}
    rows = {r.key: r for r in status.collect(settings, now=NOW, env=env).rows}
    assert rows[GITHUB_KEY].state == "error"
    assert rows[GITHUB_KEY].detail.startswith(
        "secret $GH_WEBHOOK_SECRET is not set: its deliveries are refused (503)"
    )
    assert "secret" not in rows[DEPLOY_KEY].detail
    assert "secret" not in rows[MAIL_KEY].detail  # COMPOSIO_WEBHOOK_SECRET is set in ENV
    rows = {r.key: r for r in status.collect(settings, now=NOW, env=ENV).rows}
    assert all("secret" not in r.detail for r in rows.values())
