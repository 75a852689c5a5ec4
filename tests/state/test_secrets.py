"""Operator secrets on SQLite only: the file is private from its first byte (the engine-neutral
behaviour is the contract suite, ``test_contract_secrets.py``)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from planner_operator.core.settings import Settings
from planner_operator.errors import StateError
from planner_operator.state import open as state_open
from tests.support import canaries


def test_the_file_is_private_from_its_first_byte_and_refused_when_open(tmp_path: Path) -> None:
    settings = Settings.at(tmp_path)
    umask = os.umask(0)
    try:
        with state_open.secrets(settings) as store:
            store.put("s", canaries.COMPOSIO_WEBHOOK_SECRET)
    finally:
        os.umask(umask)
    path = settings.secrets_db
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    for extra in ("-wal", "-shm"):
        if path.with_name(path.name + extra).exists():
            assert stat.S_IMODE(path.with_name(path.name + extra).stat().st_mode) == 0o600
    path.chmod(0o644)
    with pytest.raises(StateError, match="chmod 600") as err:
        state_open.secrets(settings)
    assert canaries.COMPOSIO_WEBHOOK_SECRET not in str(err.value)
