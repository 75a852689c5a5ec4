"""/metrics stays bounded however many resources there are (PLANNER_METRICS_RESOURCE_SERIES).

Over the example agents (12 resources, one paused) with the limit at 3: three resources keep
``planner_resource_state`` series (the paused one first: attention before active), every
resource is still counted in ``planner_resources``, and the per-job counters keep their first
keys and sum the rest under ``(other)``, so a family's total is still the truth.
"""

from __future__ import annotations

from fastapi.testclient import TestClient

from planner_operator.core.settings import Settings
from planner_operator.state.runs import FireCount, RunStore
from tests.server.api.status_state import applied, applied_once, client, serve
from tests.server.test_metrics import scrape, value

__all__ = ["applied", "applied_once", "client"]  # fixtures

JOBS = [f"agent-{n}/jobs/job-{n}" for n in range(5)]


def series(
    samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str
) -> list[dict[str, str]]:
    return [dict(labels) for (n, labels) in samples if n == name]


def test_resource_states_are_capped_attention_first_and_all_counted(applied: Settings) -> None:
    with serve(applied, None, PLANNER_METRICS_RESOURCE_SERIES="3") as client:
        samples = scrape(client)
    states = series(samples, "planner_resource_state")
    names = sorted({(s["agent"], s["name"]) for s in states})
    assert len(states) == 3 * 5 and len(names) == 3
    assert ("sales-agent", "quarterly-forecast") in names  # paused ranks before active
    counted = {
        (s["kind"], s["state"]): value(samples, "planner_resources", **s)
        for s in series(samples, "planner_resources")
    }
    assert counted[("job", "active")] == 5 and counted[("job", "paused")] == 1
    assert sum(v or 0 for v in counted.values()) == 12
    assert value(samples, "planner_metrics_resources_omitted") == 9


def test_per_job_counters_keep_the_first_keys_and_sum_the_rest(applied: Settings) -> None:
    with RunStore(applied.state_dir / "runs.db") as runs:
        for n, key in enumerate(JOBS):
            runs.count_fires(key, FireCount(fires=n + 1))
            row = runs.start(key=key, kind="job", run_id=f"r{n}", origin="scheduler")
            runs.finish(row, status="succeeded")
    with serve(applied, None, PLANNER_METRICS_RESOURCE_SERIES="3") as client:
        samples = scrape(client)
    fires = {
        (s["agent"], s["job"]): value(samples, "planner_job_fires_total", **s)
        for s in series(samples, "planner_job_fires_total")
    }
    assert fires == {
        ("agent-0", "job-0"): 1,
        ("agent-1", "job-1"): 2,
        ("agent-2", "job-2"): 3,
        ("(other)", "(other)"): 4 + 5,
    }
    other = {"agent": "(other)", "job": "(other)", "origin": "scheduler", "status": "succeeded"}
    assert value(samples, "planner_job_runs_total", **other) == 2
    assert len(series(samples, "planner_job_last_success_timestamp_seconds")) == 3


def test_under_the_limit_every_resource_has_its_series(client: TestClient) -> None:
    samples = scrape(client)
    assert len(series(samples, "planner_resource_state")) == 12 * 5
    assert value(samples, "planner_metrics_resources_omitted") == 0


def test_a_scrape_of_unchanged_states_reuses_the_ranking_and_a_change_redoes_it() -> None:
    """The reader hands out one states tuple per index generation: ranking 20,000 resources
    again for it was most of a scrape's CPU; a new tuple (a change) is ranked anew."""
    from planner_operator.read.metrics_resources import ResourceStateCollector

    current: list[tuple[tuple[str, str], ...]] = [
        (("a/jobs/x", "active"), ("a/jobs/y", "error"), ("a/triggers/t", "active"))
    ]
    collector = ResourceStateCollector(lambda: current[0], limit=1)  # type: ignore[arg-type,return-value]

    def shown() -> list[tuple[str, float]]:
        family = next(iter(collector.collect()))
        return [(s.labels["name"], s.value) for s in family.samples if s.labels["state"] == "error"]

    assert shown() == [("y", 1)]
    ranked = collector._last
    assert shown() == [("y", 1)] and collector._last is ranked  # the same tuple: kept
    current[0] = (("a/jobs/x", "error"), ("a/jobs/y", "active"), ("a/triggers/t", "active"))
    assert shown() == [("x", 1)]
