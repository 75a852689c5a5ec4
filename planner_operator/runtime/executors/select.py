"""Executors by environment: the agent platform over HTTP when configured, local otherwise.

| variable | effect |
|---|---|
| ``PLANNER_PLATFORM_URL`` | chat threads start at ``{url}/api/workforce/{agentId}/chat`` |
| ``PLANNER_CHAT_PATH`` | another path shape under the platform URL (``{agentId}`` filled in) |
| ``PLANNER_CHAT_URL`` | the whole chat URL (overrides the two above; may hold ``{agentId}``) |
| ``PLANNER_WORKFLOW_URL`` | workflows nobody registered locally run there |
| ``PLANNER_WORKFLOWS`` | ``id=module:function;id=https://...;id=inngest:event`` registrations |
| ``PLANNER_PLATFORM_TOKEN`` | bearer token for the platform |
| ``PLANNER_EXECUTOR_TIMEOUT`` | seconds per platform call (default 30) |

With nothing set, chat messages go to the local outbox (labelled ``"sink": "local"`` in run
history) and workflows run the shipped Python examples, so the embedded default shows the
whole path working without any cloud.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from planner_operator.core.settings import Settings
from planner_operator.errors import SourceError
from planner_operator.runtime.executors.base import Executors
from planner_operator.runtime.executors.http import CHAT_PATH, HttpExecutor
from planner_operator.runtime.executors.local import LocalOutbox
from planner_operator.runtime.executors.workflows import Registry, WorkflowRunner

ENV_PLATFORM_URL = "PLANNER_PLATFORM_URL"
ENV_CHAT_PATH = "PLANNER_CHAT_PATH"
ENV_CHAT_URL = "PLANNER_CHAT_URL"
ENV_WORKFLOW_URL = "PLANNER_WORKFLOW_URL"
ENV_TOKEN = "PLANNER_PLATFORM_TOKEN"
ENV_TIMEOUT = "PLANNER_EXECUTOR_TIMEOUT"


def from_env(settings: Settings, env: Mapping[str, str] | None = None) -> Executors:
    env = os.environ if env is None else env
    outbox = LocalOutbox(settings.state_dir / "outbox.db")
    platform = env.get(ENV_PLATFORM_URL) or None
    chat_url = env.get(ENV_CHAT_URL) or None
    workflow_url = env.get(ENV_WORKFLOW_URL) or None
    remote: HttpExecutor | None = None
    if platform or chat_url or workflow_url:
        remote = HttpExecutor(
            chat_url=chat_url,
            workflow_url=workflow_url,
            platform_url=platform,
            chat_path=env.get(ENV_CHAT_PATH) or CHAT_PATH,
            token=env.get(ENV_TOKEN) or None,
            timeout=_timeout(env),
        )
    chat = remote if remote is not None and remote.chat_url else outbox
    workflow = WorkflowRunner(
        Registry.discover(env),
        journal=outbox,
        state_dir=settings.state_dir,
        fallback=remote if workflow_url else None,
        env=env,
    )
    return Executors(chat=chat, workflow=workflow)


def _timeout(env: Mapping[str, str]) -> float:
    raw = env.get(ENV_TIMEOUT) or "30"
    try:
        value = float(raw)
    except ValueError:
        raise SourceError(f"{ENV_TIMEOUT}={raw!r} is not a number of seconds") from None
    if value <= 0:
        raise SourceError(f"{ENV_TIMEOUT} must be positive")
    return value
