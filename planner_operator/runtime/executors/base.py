"""The executor Protocols: the seam between the operator and the agent platform.

A job or trigger ends in one of two calls. Keeping them behind Protocols lets the embedded
default (a local outbox), an HTTP platform, and test doubles plug in without the scheduler,
Inngest functions or the webhook worker knowing which one runs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True)
class ChatStarted:
    """A chat a platform started and answered at once (Mastra): the reply goes in run history.

    A platform that only opens the thread returns its id as a plain ``str`` instead.
    """

    thread_id: str
    reply: str | None = None
    finish_reason: str | None = None
    usage: Mapping[str, Any] | None = None
    link: str | None = None  # where a person can read the thread


class ChatExecutor(Protocol):
    def start_thread(
        self, *, agent: str, message: str, context: Mapping[str, Any]
    ) -> str | ChatStarted:
        """Start a new chat thread with ``agent`` opened by ``message``; returns its thread id
        (or, when the platform answered too, a :class:`ChatStarted`).

        ``context`` carries the idempotency key (``run_key``): a retried call with the same key
        must not start a second thread.
        """
        ...


class WorkflowExecutor(Protocol):
    def run(self, *, workflow: str, input: Mapping[str, Any], context: Mapping[str, Any]) -> Any:
        """Run the named workflow with ``input``; returns its (JSON-able) result."""
        ...


@dataclass(frozen=True)
class Executors:
    chat: ChatExecutor
    workflow: WorkflowExecutor
