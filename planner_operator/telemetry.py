"""What the operator's own code reports about its work, apart from how it is exported.

The reconciler, the executors and the inbox worker count what they do, but they sit on the
CLI's import path, which never needs prometheus_client or fastapi, and below the server layer
that owns ``GET /metrics``. So they report here, in plain values, and whoever exports metrics
installs a :class:`Recorder` (``server.metrics`` installs the Prometheus one when it builds an
app). With none installed a report costs a loop over an empty list.

Values are bounded by construction: enums (op, kind, outcome, action), never ids or URLs.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

ReconcileResult = Literal["success", "incomplete", "failed", "error"]
ChangeOutcome = Literal["applied", "failed", "blocked", "skipped", "unchanged"]


@dataclass(frozen=True)
class ChangeReport:
    """One planned change as an apply left it."""

    op: str  # create, update, replace, delete, noop
    kind: str  # job, trigger
    outcome: ChangeOutcome


@dataclass(frozen=True)
class ReconcileReport:
    """One reconcile apply (dry runs are never reported)."""

    result: ReconcileResult
    seconds: float
    changes: Sequence[ChangeReport] = ()
    load_errors: int = 0


class Recorder(Protocol):
    def reconciled(self, report: ReconcileReport) -> None: ...

    def executor_called(self, action: str, outcome: str, seconds: float) -> None: ...

    def inbox_processed(self, outcome: str) -> None: ...


_recorders: list[Recorder] = []
_lock = threading.Lock()


def install(recorder: Recorder) -> None:
    """Add ``recorder`` (once: installing the same object again is a no-op)."""
    with _lock:
        if all(r is not recorder for r in _recorders):
            _recorders.append(recorder)


def uninstall(recorder: Recorder) -> None:
    with _lock:
        _recorders[:] = [r for r in _recorders if r is not recorder]


def reconciled(report: ReconcileReport) -> None:
    for recorder in tuple(_recorders):
        recorder.reconciled(report)


def inbox_processed(outcome: str) -> None:
    for recorder in tuple(_recorders):
        recorder.inbox_processed(outcome)


@contextlib.contextmanager
def executor_call(action: str) -> Iterator[None]:
    """Time one executor call; an exception counts as ``error`` and passes through."""
    started = time.perf_counter()
    outcome = "error"
    try:
        yield
        outcome = "success"
    finally:
        seconds = time.perf_counter() - started
        for recorder in tuple(_recorders):
            recorder.executor_called(action, outcome, seconds)
