"""``planner_resource_state``: each applied job's and trigger's state, for alerts; bounded.

The state is the read model's (``states.classify``, kept in ``views.Reader``'s catalog), the
one the CLI's ``status``, the API and the dashboard show, so an alert fires on exactly what a
person sees. One series per resource and state, 1 for the state it is in and 0 for the others
(as kube-state-metrics exports a pod's phase): ``planner_resource_state{state="error"} == 1``
alerts, and a resource that changes state never leaves a stale 1 behind. The states come from
the reader's cached backend read, so a scrape costs no Composio request of its own.

Five series per resource is 100,000 series at 20,000 resources: more than a Prometheus target
should carry, and megabytes per scrape. So at most ``limit`` resources
(``PLANNER_METRICS_RESOURCE_SERIES``) get their own series, those needing attention first
(error, drifted, frozen, then paused, then active; by key within a state), and
``planner_resources{kind,state}`` counts every resource whatever the limit:
``planner_resources{state="error"} > 0`` alerts at any size.
``planner_metrics_resources_omitted`` says how many resources have no series of their own.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

from prometheus_client.core import GaugeMetricFamily, Metric

from planner_operator.core.keys import split_key
from planner_operator.read import states

NAME = "planner_resource_state"
OTHER = "(other)"  # the label value of what is summed past the limit: never an agent id (slug)
_RANK = {"error": 0, "drifted": 1, "frozen": 2, "paused": 3, "active": 4}

ResourceStates = Callable[[], Sequence[tuple[str, states.State]]]  # (key, state), key order


class ResourceStateCollector:
    """Collects ``planner_resource_state`` from ``read`` (e.g. ``Reader.resource_states``)."""

    def __init__(self, read: ResourceStates, *, limit: int) -> None:
        self.read = read
        self.limit = limit
        # the last scrape's states and what was derived from them: the reader hands out the
        # same sequence while nothing changed, and ranking 20,000 resources per scrape was
        # most of its CPU
        self._last: tuple[object, Sequence[tuple[str, states.State]], dict[Any, int]] | None
        self._last = None

    def collect(self) -> Iterator[Metric]:
        found = self.read()
        last = self._last
        if last is not None and last[0] is found:
            chosen, tally = last[1], last[2]
        else:
            chosen, tally = self._derive(found)
            self._last = (found, chosen, tally)
        family = GaugeMetricFamily(
            NAME,
            "The state of each applied job and trigger, as `status`, the API and the dashboard "
            "show it: 1 for its state (active, paused, frozen: its file fails to load, drifted: "
            "changed or missing remotely, error: Composio or the backend says it is broken or "
            "cannot be read), 0 for the others. At most PLANNER_METRICS_RESOURCE_SERIES "
            "resources, those needing attention first: planner_resources counts them all.",
            labels=["agent", "kind", "name", "state"],
        )
        for key, state in chosen:
            agent, kind, name = split_key(key)
            for each in states.STATES:
                family.add_metric([agent, kind, name, each], 1 if state == each else 0)
        yield family
        counts = GaugeMetricFamily(
            "planner_resources",
            "Applied jobs and triggers by kind and state (every one, however many).",
            labels=["kind", "state"],
        )
        for kind in ("job", "trigger"):
            for state in states.STATES:
                counts.add_metric([kind, state], tally.get((kind, state), 0))
        yield counts
        yield GaugeMetricFamily(
            "planner_metrics_resources_omitted",
            "Applied resources without planner_resource_state series of their own, past "
            "PLANNER_METRICS_RESOURCE_SERIES (counted in planner_resources).",
            value=len(found) - len(chosen),
        )

    def _derive(
        self, found: Sequence[tuple[str, states.State]]
    ) -> tuple[Sequence[tuple[str, states.State]], dict[Any, int]]:
        """The resources that get their own series, and the count per (kind, state)."""
        chosen = (
            found
            if len(found) <= self.limit
            else sorted(found, key=lambda pair: (_RANK[pair[1]], pair[0]))[: self.limit]
        )
        tally: dict[Any, int] = {}
        for key, state in found:
            kind = split_key(key)[1]
            tally[(kind, state)] = tally.get((kind, state), 0) + 1
        return chosen, tally
