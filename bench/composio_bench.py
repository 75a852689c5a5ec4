"""Create 1,000 Composio triggers through the request budget, against the fake API.

The operator may spend 50% of a 2,000 requests/min organisation budget, so creating 1,000
triggers (one upsert each, plus the reads around them) takes a bit over a minute by design.
To measure that without waiting a minute, the limiter and the fake's per-minute budget share a
``ScaledClock`` running ``SCALE`` times faster than real time: every request is still real HTTP
through the real SDK to the fake on 127.0.0.1; only the clock both sides read is sped up. The
speed-up is kept low enough that the machine is not the bottleneck: unthrottled, this apply loop
(SDK, fake, ledger write per item) does ~160 requests/s here, and SCALE=3 allows ~50/s, so the
rate measured is the limiter's (``limiter_wait_share`` shows how much of the run it held back).

Reported, in simulated time from the fake's own request log: the most requests in any 60 s
window (must stay <= 50% of the budget) and the rate achieved against the allowed one (must be
>= 90%): over the whole run, and in steady state (the second half, after the initial burst).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

from planner_operator.backends import ratelimit, select
from planner_operator.backends.local import LocalScheduleBackend
from planner_operator.backends.select import Backends
from planner_operator.core import clock as clock_mod
from planner_operator.core.settings import Settings
from planner_operator.reconcile.engine import SourceSpec, reconcile
from tests.fakes.composio_server import DEFAULT_ACCOUNTS, FakeComposio

TRIGGERS = 1000
FILES = 100
ACCOUNTS = 10
BUDGET_PER_MIN = 2000
SHARE = 0.5
SCALE = 3.0  # simulated seconds per real second
WINDOW = 60.0


def write_agents(directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    per_file = TRIGGERS // FILES
    for f in range(FILES):
        triggers = "".join(
            f"    - name: mail-{t}\n"
            "      toolkit: gmail\n"
            "      event: GMAIL_NEW_GMAIL_MESSAGE\n"
            f"      connected_account: ca_bench_{f % ACCOUNTS}\n"
            f"      config: {{labelIds: LABEL_{f}_{t}, interval: 5}}\n"
            '      action: {chat: {template: "Mail: {subject} from {sender}"}}\n'
            for t in range(per_file)
        )
        text = f"name: Agent {f}\nplanner:\n  triggers:\n{triggers}"
        (directory / f"agent-{f:03d}.yaml").write_text(text, encoding="utf-8")


def max_in_window(times: list[float], window: float) -> int:
    best, start = 0, 0
    for end, at in enumerate(times):
        while at - times[start] >= window:
            start += 1
        best = max(best, end - start + 1)
    return best


def run() -> dict[str, Any]:
    clock = clock_mod.ScaledClock(SCALE)
    accounts = {**DEFAULT_ACCOUNTS, **{f"ca_bench_{a}": ("bench", "gmail") for a in range(10)}}
    started = time.perf_counter()
    with (
        tempfile.TemporaryDirectory() as tmp,
        FakeComposio(
            budget_per_minute=BUDGET_PER_MIN, clock=clock.monotonic, accounts=accounts
        ) as fake,
    ):
        agents = Path(tmp) / "agents"
        write_agents(agents)
        settings = Settings.resolve(state_dir=Path(tmp) / "state", env={})
        env = fake.env(
            PLANNER_COMPOSIO_BUDGET_PER_MIN=str(BUDGET_PER_MIN),
            PLANNER_COMPOSIO_BUDGET_SHARE=str(SHARE),
        )

        limiters: list[ratelimit.RateLimiter] = []

        def backends(settings: Settings) -> Backends:
            jobs = LocalScheduleBackend(settings.state_db)
            triggers = select.composio_triggers(settings, env, clock=clock)
            assert triggers.events.limiter is not None
            limiters.append(triggers.events.limiter)
            return Backends({"job": jobs, "trigger": triggers}, [jobs, triggers])

        outcome = reconcile(SourceSpec(path=agents), settings, backends_factory=backends)
        assert outcome.applied is not None and outcome.applied.ok, outcome.applied
        created = len(fake.instances())
        times = sorted(s.at for s in fake.requests)
        limited = sum(1 for s in fake.requests if s.status == 429)
        noop_from = len(fake.requests)
        noop = reconcile(SourceSpec(path=agents), settings, backends_factory=backends)
        assert not noop.plan.has_changes
        noop_requests = len(fake.requests) - noop_from
    real = time.perf_counter() - started
    allowed = BUDGET_PER_MIN * SHARE
    span = times[-1] - times[0]
    overall = (len(times) - 1) / span * WINDOW if span else 0.0
    steady = times[len(times) // 2 :]  # the burst (5% of a window's allowance) is long spent
    steady_rate = (len(steady) - 1) / (steady[-1] - steady[0]) * WINDOW
    busiest = max_in_window(times, WINDOW)
    return {
        "triggers": created,
        "requests": len(times),
        "rate_limited": limited,
        "budget_per_min": BUDGET_PER_MIN,
        "allowed_per_min": allowed,
        "max_in_60s": busiest,
        "max_share_of_budget": busiest / BUDGET_PER_MIN,
        "utilization_overall": overall / allowed,
        "utilization_steady": steady_rate / allowed,
        "simulated_seconds": span,
        "real_seconds": real,
        "scale": SCALE,
        "limiter_wait_share": limiters[0].waited / span if span else 0.0,
        "noop_requests": noop_requests,
        "ok": busiest <= allowed and min(overall, steady_rate) >= 0.9 * allowed,
    }


if __name__ == "__main__":
    for name, value in run().items():
        print(f"{name}: {value:.3f}" if isinstance(value, float) else f"{name}: {value}")
