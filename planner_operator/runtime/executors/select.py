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
| ``PLANNER_MASTRA_URL`` | chats start on Mastra agents, workflows nobody registered run on Mastra |

With nothing set, chat messages go to the local outbox (labelled ``"sink": "local"`` in run
history) and workflows run the shipped Python examples, so the embedded default shows the
whole path working without any cloud.
"""

from __future__ import annotations

from collections.abc import Mapping

from planner_operator.backends.mastra.client import MastraClient
from planner_operator.core import clock as clock_mod
from planner_operator.core import variables
from planner_operator.core.settings import Settings
from planner_operator.runtime.executors.base import ChatExecutor, Executors, WorkflowExecutor
from planner_operator.runtime.executors.http import HttpExecutor
from planner_operator.runtime.executors.local import LocalOutbox
from planner_operator.runtime.executors.mastra import MastraExecutor
from planner_operator.runtime.executors.workflows import Registry, WorkflowRunner


def from_env(
    settings: Settings,
    env: Mapping[str, str] | None = None,
    *,
    clock: clock_mod.Clock = clock_mod.SYSTEM,
) -> Executors:
    env = variables.environ(env)
    outbox = LocalOutbox(settings.outbox_db, clock=clock)
    platform = variables.PLATFORM_URL.read(env)
    chat_url = variables.CHAT_URL.read(env)
    workflow_url = variables.WORKFLOW_URL.read(env)
    remote: HttpExecutor | None = None
    if platform or chat_url or workflow_url:
        remote = HttpExecutor(
            chat_url=chat_url,
            workflow_url=workflow_url,
            platform_url=platform,
            chat_path=variables.CHAT_PATH.read(env),
            token=variables.PLATFORM_TOKEN.read(env),
            timeout=variables.EXECUTOR_TIMEOUT.read(env),
            clock=clock,
        )
    chat: ChatExecutor = remote if remote is not None and remote.chat_url else outbox
    fallback: WorkflowExecutor | None = remote if workflow_url else None
    mastra_url = variables.MASTRA_URL.read(env)
    if mastra_url:
        mastra = MastraExecutor(
            MastraClient(
                mastra_url,
                token=variables.MASTRA_TOKEN.read(env),
                timeout=variables.EXECUTOR_TIMEOUT.read(env),
                clock=clock,
            ),
            wait=variables.MASTRA_WAIT.read(env),
            clock=clock,
        )
        chat, fallback = mastra, mastra
    workflow = WorkflowRunner(
        Registry.discover(env),
        journal=outbox,
        state_dir=settings.state_dir,
        fallback=fallback,
        env=env,
        clock=clock,
    )
    return Executors(chat=chat, workflow=workflow)
