"""``slack-digest``: compose a digest of an agent's recent events from run history.

The engineering agent's weekday digest summarises what its triggers saw (new issues, incident
mentions, deploy hooks) since the last digest. This local version reads the operator's own run
history (the run store of ``state_dir``) for the agent over the last ``hours`` (default 24) and
returns the text it would post to ``channel``. It posts nothing: the result says ``posted:
false`` and names the channel, so the embedded default shows the digest without a Slack
connection.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from planner_operator.core import clock as clock_mod
from planner_operator.core import times, variables
from planner_operator.core.settings import Settings
from planner_operator.state import open as state_open


def run(input: Mapping[str, Any], context: Mapping[str, Any]) -> dict[str, Any]:
    agent = str(context.get("key", "")).split("/", 1)[0] or str(input.get("agent", ""))
    hours = float(input.get("hours") or 24)
    now = _now(context)
    since = now - timedelta(hours=hours)
    state_dir = context.get("state_dir") or variables.STATE_DIR.default
    # the state dir the run came from; a shared database, if any, from the environment
    settings = Settings.resolve(state_dir=Path(str(state_dir)))
    events: list[tuple[str, str]] = []
    if state_open.exists(settings, "runs") and agent:
        with state_open.runs(settings) as runs:
            for r in runs.list(prefix=f"{agent}/triggers/", limit=500):
                if times.parse(r.started_at) >= since and r.status == "succeeded":
                    events.append((r.key.rsplit("/", 1)[-1], r.rendered or ""))
    counts = Counter(name for name, _ in events)
    day = input.get("day") or now.date().isoformat()
    lines = [f"Digest for {agent or 'the agent'} ({day}), last {hours:g} h:"]
    if not events:
        lines.append("- nothing happened")
    for name, count in sorted(counts.items()):
        latest = next(text for n, text in events if n == name)
        lines.append(f"- {name}: {count} event(s); latest: {latest[:140]}")
    return {
        "channel": input.get("channel"),
        "text": "\n".join(lines),
        "events": len(events),
        "posted": False,
        "note": "local: composed from run history, not posted (no Slack connection here)",
    }


def _now(context: Mapping[str, Any]) -> datetime:
    """The run's "now" from the operator's clock (``context["now"]``); called without one (a
    script, a test), the system clock's."""
    given = context.get("now")
    if not given:
        return clock_mod.SYSTEM.now()
    moment = datetime.fromisoformat(str(given))
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
