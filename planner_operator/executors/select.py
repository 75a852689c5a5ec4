"""Executors by environment: the agent platform over HTTP when configured, the outbox otherwise."""

from __future__ import annotations

import os
from collections.abc import Mapping

from planner_operator.executors.base import Executors
from planner_operator.executors.http import HttpExecutor
from planner_operator.executors.local import LocalOutbox
from planner_operator.settings import Settings

ENV_CHAT_URL = "PLANNER_CHAT_URL"
ENV_WORKFLOW_URL = "PLANNER_WORKFLOW_URL"
ENV_TOKEN = "PLANNER_PLATFORM_TOKEN"


def from_env(settings: Settings, env: Mapping[str, str] | None = None) -> Executors:
    env = os.environ if env is None else env
    outbox = LocalOutbox(settings.state_dir / "outbox.db")
    chat_url, workflow_url = env.get(ENV_CHAT_URL), env.get(ENV_WORKFLOW_URL)
    if not chat_url and not workflow_url:
        return Executors(chat=outbox, workflow=outbox)
    remote = HttpExecutor(chat_url=chat_url, workflow_url=workflow_url, token=env.get(ENV_TOKEN))
    return Executors(
        chat=remote if chat_url else outbox, workflow=remote if workflow_url else outbox
    )
