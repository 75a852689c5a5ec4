"""The serving process's composition root: every long-lived object a request needs, built once.

``create_app`` builds one :class:`Runtime` from settings and environment and hands each router
only what it uses (a reader, the operations, the webhook ingress), so no router reaches into a
service locator and none imports the app. Tests build the same runtime with their own settings,
executors and a fake Inngest.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from planner_operator.backends import select
from planner_operator.backends.inngest.sdk import InngestConfig
from planner_operator.core import clock as clock_mod
from planner_operator.core import variables
from planner_operator.core.settings import Settings
from planner_operator.edit import propose
from planner_operator.edit import target as edit_target
from planner_operator.read.views import Reader
from planner_operator.runtime import waiting
from planner_operator.runtime.executors import select as executor_select
from planner_operator.runtime.executors.base import Executors
from planner_operator.runtime.jobrun import DurableJobHandler, JobRunner
from planner_operator.server import webhooks
from planner_operator.server.api.operations import Operations
from planner_operator.server.inngest_mount import InngestMount
from planner_operator.state import open as state_open
from planner_operator.state.runs import RunStore


@dataclass(frozen=True)
class Runtime:
    settings: Settings
    env: Mapping[str, str]
    runs: RunStore
    executors: Executors
    reader: Reader  # the status API's and dashboard's read model
    operations: Operations  # run now, trigger tests, workflow runs
    webhooks: webhooks.Webhooks  # ingress, durable inbox and worker
    inngest: InngestMount | None = None  # the Inngest endpoint, when Inngest runs the jobs
    clock: clock_mod.Clock = clock_mod.SYSTEM  # the one "now" of every part above
    editor: propose.Editor | None = None  # API edits of the agent files (None: no source)


def build(
    settings: Settings,
    env: Mapping[str, str],
    *,
    executors: Executors | None = None,
    worker: bool | None = None,
    worker_process: bool = False,
    clock: clock_mod.Clock = clock_mod.SYSTEM,
    edits: edit_target.Target | None = None,
) -> Runtime:
    """``executors`` replaces the environment's (tests, benchmarks); ``worker`` False leaves the
    inbox to ``planner-operator worker`` processes (default: env ``PLANNER_WORKER``, on);
    ``worker_process`` runs it as a child process, which needs the environment's executors
    (injected ``executors`` keep it a thread of this process).
    ``clock`` is handed to every part, so a test that pins it pins the whole app's time.
    ``edits`` is the agent source ``run`` follows: the API edits it (``PLANNER_EDIT_MODE``)."""
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    runs = state_open.runs(settings, clock=clock)
    worker_process = worker_process and executors is None  # a child builds its own from env
    executors = executors or executor_select.from_env(settings, env, clock=clock)
    reader = Reader(settings, env=env, clock=clock, background=True)
    hooks = webhooks.Webhooks(
        settings=settings,
        env=env,
        runs=runs,
        executors=executors,
        worker=worker,
        worker_process=worker_process,
        clock=clock,
    )
    operations = Operations(
        settings=settings,
        env=env,
        runs=runs,
        executors=executors,
        reader=reader,
        webhooks=hooks,
        clock=clock,
    )
    inngest = None
    if select.schedule_backend_name(env) == "inngest":
        config = InngestConfig.from_env(env)  # refuses production mode without a signing key
        policy = waiting.WaitPolicy.from_env(env)
        handler = DurableJobHandler(JobRunner(runs, executors, clock=clock, policy=policy))
        inngest = InngestMount(
            config,
            state_open.served_jobs(settings, clock=clock),
            handler,
            clock=clock,
            verify_interval=variables.INNGEST_VERIFY_INTERVAL.read(env),
        )
    editor = None
    if edits is not None:  # an impossible mode for this source refuses to start (SourceError)
        edit_config = edit_target.Config.from_env(edits, env)
        editor = propose.Editor(edits, edit_config, settings, clock=clock)
    return Runtime(
        settings, env, runs, executors, reader, operations, hooks, inngest, clock, editor
    )
