"""Workflows shipped with the operator, for the example agents and the embedded default.

Each is a plain ``run(input, context)`` function (see ``executors.workflows`` for how ids map
to callables). ``job-application-check``, ``qualify-lead``, ``slack-digest`` and
``post-deploy-checks`` do real local work on what they are given; ``sales-forecast`` is a
labelled stub that records its input. With ``PLANNER_WORKFLOW_URL`` set, the platform runs
these ids instead.
"""

from __future__ import annotations

BUILTIN: dict[str, str] = {
    "job-application-check": "planner_operator.runtime.workflows.job_application_check:run",
    "qualify-lead": "planner_operator.runtime.workflows.qualify_lead:run",
    "slack-digest": "planner_operator.runtime.workflows.slack_digest:run",
    "post-deploy-checks": "planner_operator.runtime.workflows.post_deploy_checks:run",
    "sales-forecast": "planner_operator.runtime.workflows.sales_forecast:run",
}
