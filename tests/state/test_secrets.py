"""Operator secrets: current and previous-with-expiry, private on disk, never in a repr."""

from __future__ import annotations

import os
import stat
from datetime import UTC, datetime
from pathlib import Path

import pytest

from planner_operator.core.clock import ManualClock, epoch
from planner_operator.errors import PlannerError, StateError
from planner_operator.state import secrets


def test_a_rotation_keeps_the_old_value_accepted_until_its_grace_runs_out(tmp_path: Path) -> None:
    clock = ManualClock(datetime(2026, 1, 1, tzinfo=UTC))
    with secrets.open_secrets(tmp_path, clock=clock) as store:
        assert store.get("s") is None
        store.put("s", "whsec_old")
        store.put("s", "whsec_new", keep_previous_for=3600)
        found = store.get("s")
        assert found is not None and found.value == "whsec_new"
        now = epoch(clock)
        assert found.accepted(now) == ("whsec_new", "whsec_old")
        assert found.accepted(now + 3599) == ("whsec_new", "whsec_old")
        assert found.accepted(now + 3600) == ("whsec_new",)
        store.put("s", "whsec_new")  # the same value again keeps the grace window
        assert store.get("s") == found
        store.put("s", "whsec_third")  # no grace: the old one goes at once
        assert store.get("s").accepted(now) == ("whsec_third",)  # type: ignore[union-attr]
        assert "whsec" not in repr(store.get("s"))
        with pytest.raises(PlannerError, match="empty"):
            store.put("s", "")


def test_the_store_is_shared_by_every_process_that_opens_it(tmp_path: Path) -> None:
    with secrets.open_secrets(tmp_path) as writer, secrets.open_secrets(tmp_path) as reader:
        writer.put("s", "whsec_a", keep_previous_for=60)
        assert reader.get("s") is not None and reader.get("s").value == "whsec_a"  # type: ignore[union-attr]


def test_the_file_is_private_from_its_first_byte_and_refused_when_open(tmp_path: Path) -> None:
    umask = os.umask(0)
    try:
        with secrets.open_secrets(tmp_path) as store:
            store.put("s", "whsec_a")
    finally:
        os.umask(umask)
    path = tmp_path / secrets.FILE_NAME
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    for extra in ("-wal", "-shm"):
        if path.with_name(path.name + extra).exists():
            assert stat.S_IMODE(path.with_name(path.name + extra).stat().st_mode) == 0o600
    path.chmod(0o644)
    with pytest.raises(StateError, match="chmod 600") as err:
        secrets.open_secrets(tmp_path)
    assert "whsec_a" not in str(err.value)
