"""The served job table contract (what ``serve`` registers with Inngest), on both engines."""

from __future__ import annotations

from planner_operator.core.settings import Settings
from planner_operator.state import open as state_open


def test_every_change_bumps_the_version_and_sync_is_recorded(store: Settings) -> None:
    with state_open.served_jobs(store) as table:
        assert table.jobs() == [] and table.versions() == (0, 0)
        table.put("a/jobs/x", "a-jobs-x", {"schedule": "0 9 * * *"})
        table.put("a/jobs/x", "a-jobs-x", {"schedule": "0 10 * * *"})
        assert table.versions() == (2, 0)
        got = table.get("a/jobs/x")
        assert got is not None and got.spec == {"schedule": "0 10 * * *"}
        assert table.key_of("a-jobs-x") == "a/jobs/x"
        table.mark_synced(2)
        assert table.versions() == (2, 2)
        assert table.remove_fn("a-jobs-x") is True
        assert table.remove_fn("a-jobs-x") is False
        assert table.jobs() == [] and table.versions()[0] == 4


def test_replicas_see_one_table(store: Settings) -> None:
    with state_open.served_jobs(store) as applier, state_open.served_jobs(store) as server:
        applier.put("a/jobs/y", "a-jobs-y", {"schedule": "@daily"})
        assert [j.key for j in server.jobs()] == ["a/jobs/y"]
        assert server.versions() == applier.versions()
