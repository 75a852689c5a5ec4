"""Resource identity: what a job or trigger is called everywhere (ledger, backends, API, CLI).

A key is ``<agent>/jobs/<name>`` or ``<agent>/triggers/<name>``: stable across edits, so a
changed schedule is an update, not a delete and a create. Every layer builds and splits keys
here, so no module re-states the format.
"""

from __future__ import annotations

from typing import Literal

Kind = Literal["job", "trigger"]

_PLURAL: dict[Kind, str] = {"job": "jobs", "trigger": "triggers"}


def job_key(agent: str, name: str) -> str:
    return f"{agent}/jobs/{name}"


def trigger_key(agent: str, name: str) -> str:
    return f"{agent}/triggers/{name}"


def key_for(kind: Kind, agent: str, name: str) -> str:
    return f"{agent}/{_PLURAL[kind]}/{name}"


def split_key(key: str) -> tuple[str, Kind, str]:
    """``agent/jobs/name`` -> (agent, "job", name)."""
    agent, plural, name = key.split("/", 2)
    return agent, ("job" if plural == "jobs" else "trigger"), name
