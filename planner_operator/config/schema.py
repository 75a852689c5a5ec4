"""JSON Schema for agent files, generated from the models so it can never disagree with them.

Editors (yaml-language-server via the ``$schema`` modeline at the top of each agent file) use it
for completion and inline errors; ``make schema`` regenerates it and CI fails when the committed
copy is stale.
"""

from __future__ import annotations

import json
from typing import Any

from planner_operator.config import models

SCHEMA_ID = "https://planner-operator.dev/schemas/agent.schema.json"


def agent_schema() -> dict[str, Any]:
    schema = models.AgentFile.model_json_schema(by_alias=True, mode="validation")
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        **schema,
        "title": "planner-operator agent file",
        "examples": [_example()],
    }


def render_schema() -> str:
    return json.dumps(agent_schema(), indent=2, sort_keys=False, ensure_ascii=False) + "\n"


def _example() -> dict[str, Any]:
    return {
        "id": "job-application-agent",
        "name": "Job Application Agent",
        "timezone": "Europe/Berlin",
        "planner": {
            "jobs": [
                {
                    "name": "morning-job-check",
                    "schedule": "0 9 * * 1",
                    "action": {
                        "chat": {
                            "template": "Check job boards for postings matching {userCriteria}.",
                            "variables": {"userCriteria": "senior Python roles, remote"},
                        }
                    },
                }
            ],
            "triggers": [
                {
                    "name": "recruiter-email",
                    "toolkit": "gmail",
                    "event": "GMAIL_NEW_GMAIL_MESSAGE",
                    "connected_account": "ca_123",
                    "config": {"labelIds": "INBOX"},
                    "action": {"chat": {"template": "A new email arrived: {subject}"}},
                }
            ],
        },
    }
