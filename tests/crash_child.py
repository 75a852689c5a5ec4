"""A reconcile that kills itself with SIGKILL at a chosen point (run by tests/test_crash.py).

``python -m tests.crash_child AGENTS STATE_DIR K MODE``: MODE ``remote`` dies right after the
K-th backend write committed (before the ledger knows: the most dangerous window), ``ledger``
dies right after the K-th item was recorded in the ledger.
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

from planner_operator.backends.local import LocalFaults, LocalScheduleBackend, LocalTriggerBackend
from planner_operator.backends.select import Backends
from planner_operator.core.settings import Settings
from planner_operator.reconcile.apply import ItemResult
from planner_operator.reconcile.engine import SourceSpec, reconcile
from planner_operator.reconcile.plan import PlanOptions


class KillAfterWrites(LocalFaults):
    def __init__(self, counter: list[int], limit: int) -> None:
        super().__init__()
        self.counter = counter
        self.limit = limit

    def after_write(self, operation: str, target: str) -> None:
        self.counter[0] += 1
        if self.counter[0] >= self.limit:
            os.kill(os.getpid(), signal.SIGKILL)


def main() -> None:
    agents, state_dir, k, mode = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    settings = Settings.resolve(state_dir=state_dir, env={})
    counter = [0]

    def factory(s: Settings) -> Backends:
        faults = KillAfterWrites(counter, k) if mode == "remote" else LocalFaults()
        jobs = LocalScheduleBackend(s.state_db, faults=faults)
        triggers = LocalTriggerBackend(s.state_db, faults=faults)
        return Backends({"job": jobs, "trigger": triggers}, [jobs, triggers])

    def progress(index: int, total: int, item: ItemResult) -> None:
        if mode == "ledger" and index >= k:
            os.kill(os.getpid(), signal.SIGKILL)

    reconcile(
        SourceSpec(path=agents),
        settings,
        options=PlanOptions(allow_mass_delete=True),
        progress=progress,
        backends_factory=factory,
    )


if __name__ == "__main__":
    main()
