"""``planner_resource_state``: each applied job's and trigger's state, for alerts.

The state is the read model's (``states.classify`` through ``views.Reader``), the one the CLI's
``status``, the API and the dashboard show, so an alert fires on exactly what a person sees.
One series per resource and state, 1 for the state it is in and 0 for the others (as
kube-state-metrics exports a pod's phase): ``planner_resource_state{state="error"} == 1``
alerts, and a resource that changes state never leaves a stale 1 behind. The backend read
behind it is the reader's cached one, so a scrape costs no Composio request of its own.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

from prometheus_client.core import GaugeMetricFamily, Metric

from planner_operator.core.keys import split_key
from planner_operator.core.records import OwnedEntry
from planner_operator.read import states

NAME = "planner_resource_state"

ResourceStates = Callable[[], Sequence[tuple[OwnedEntry, states.ResourceState]]]


class ResourceStateCollector:
    """Collects ``planner_resource_state`` from ``read`` (e.g. ``Reader.resource_states``)."""

    def __init__(self, read: ResourceStates) -> None:
        self.read = read

    def collect(self) -> Iterator[Metric]:
        family = GaugeMetricFamily(
            NAME,
            "The state of each applied job and trigger, as `status`, the API and the dashboard "
            "show it: 1 for its state (active, paused, frozen: its file fails to load, drifted: "
            "changed or missing remotely, error: Composio or the backend says it is broken or "
            "cannot be read), 0 for the others.",
            labels=["agent", "kind", "name", "state"],
        )
        for entry, found in self.read():
            agent, kind, name = split_key(entry.key)
            for state in states.STATES:
                family.add_metric([agent, kind, name, state], 1 if found.state == state else 0)
        yield family
