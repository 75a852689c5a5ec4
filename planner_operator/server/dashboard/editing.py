"""The edit dialogs' share of the dashboard: their script, who gets them, and their start data.

The dialogs are one static script (``static/edit.js``) over the edits API, so there is no
front-end build and nothing from a CDN. A page carries them only for a visitor who may save
(logged in) on a server whose ``PLANNER_EDIT_MODE`` writes; everyone else gets the read-only
page, byte for byte what it was. Who may press Save is still decided by ``server/auth.py``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from importlib import resources
from typing import Any

from fastapi import APIRouter
from fastapi.responses import Response

from planner_operator.read.views import AgentView

SCRIPT = (resources.files("planner_operator.server.dashboard") / "static" / "edit.js").read_bytes()
SCRIPT_VERSION = hashlib.sha256(SCRIPT).hexdigest()[:12]
WRITING = ("pr", "commit", "worktree")  # the PLANNER_EDIT_MODE values under which a save writes
MAX_AGENTS = 1000  # agents the Planner page's dialogs offer (an agent's page offers itself)


def editable(authenticated: bool, mode: str | None) -> bool:
    return authenticated and mode in WRITING


def start_data(mode: str | None, agents: Iterable[AgentView]) -> dict[str, Any]:
    """What the script starts from (the page embeds it as JSON): the mode and the agents."""
    return {
        "mode": mode,
        "agents": [{"id": a.id, "name": a.name, "timezone": a.timezone} for a in agents],
    }


def install(routes: APIRouter, base: str) -> None:
    @routes.get(f"{base}/static/edit.js")
    def edit_script() -> Response:
        return Response(
            SCRIPT,
            media_type="text/javascript",
            headers={"Cache-Control": "public, max-age=86400"},
        )
