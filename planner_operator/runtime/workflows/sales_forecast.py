"""``sales-forecast``: a labelled local stub.

The sales agent's quarterly forecast job is paused until the real forecast workflow exists on
the agent platform. Until then this records the input it was given, so a manual run shows what
the job would send, and says plainly that nothing was forecast.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def run(input: Mapping[str, Any], context: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "stub": True,
        "recorded_input": dict(input),
        "note": "local stub: input recorded, no forecast computed "
        "(register the real workflow or set PLANNER_WORKFLOW_URL)",
    }
