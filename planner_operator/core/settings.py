"""Where the operator keeps its state, from flags first, then environment, then defaults.

One table of these is in the README; every long-running command and every one-shot command
reads them the same way.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from planner_operator.errors import SourceError

ENV_STATE_DIR = "PLANNER_STATE_DIR"
ENV_STATE_DB = "PLANNER_STATE_DB"
ENV_LEDGER_DB = "PLANNER_LEDGER_DB"
ENV_LOCK_TIMEOUT = "PLANNER_LOCK_TIMEOUT"


@dataclass(frozen=True)
class Settings:
    state_dir: Path
    state_db: Path  # the embedded backend's database
    ledger_db: Path  # what the operator owns, the apply lock, reconcile history
    lock_timeout: float = 30.0

    @classmethod
    def resolve(
        cls,
        *,
        state_dir: Path | None = None,
        state_db: Path | None = None,
        ledger_db: Path | None = None,
        lock_timeout: float | None = None,
        env: Mapping[str, str] | None = None,
    ) -> Settings:
        env = os.environ if env is None else env
        directory = state_dir or Path(env.get(ENV_STATE_DIR) or ".planner")
        timeout = lock_timeout
        if timeout is None:
            raw = env.get(ENV_LOCK_TIMEOUT) or "30"
            try:
                timeout = float(raw)
            except ValueError:
                raise SourceError(
                    f"{ENV_LOCK_TIMEOUT}={raw!r} is not a number of seconds"
                ) from None
        return cls(
            state_dir=directory,
            state_db=state_db or Path(env.get(ENV_STATE_DB) or directory / "state.db"),
            ledger_db=ledger_db or Path(env.get(ENV_LEDGER_DB) or directory / "ledger.db"),
            lock_timeout=timeout,
        )
