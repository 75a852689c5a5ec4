"""Plan renderers: one plan, three readers.

``text`` is for a person at a terminal, ``markdown`` for a reviewer reading a pull-request
comment, ``json`` for a program. All are pure functions of the plan (and of ``now``, passed in,
for fire-time previews), so a dry run is ``plan`` + ``render`` and tests need no clock.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal, get_args

from planner_operator.reconcile.plan import Plan
from planner_operator.reconcile.render import jsonout, markdown, text

Format = Literal["text", "markdown", "json"]
FORMATS: tuple[str, ...] = get_args(Format)

__all__ = ["FORMATS", "Format", "render"]


def render(plan: Plan, fmt: Format, *, now: datetime, color: bool = False) -> str:
    """Render ``plan`` in ``fmt``; ``color`` only affects text; ``now`` dates fire previews."""
    if fmt == "text":
        return text.render_text(plan, color=color, now=now)
    if fmt == "markdown":
        return markdown.render_markdown(plan, now=now)
    if fmt == "json":
        return jsonout.render_json(plan)
    raise ValueError(f"unknown plan format {fmt!r}; use one of {', '.join(FORMATS)}")
