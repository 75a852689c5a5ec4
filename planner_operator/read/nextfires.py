"""Next fire times, computed once per (schedule, timezone, DST policy) and kept until they pass.

A cron walk costs tens of microseconds per fire; the status API and the dashboard used to walk
five fires for every job on every request, which at 10,000 jobs was most of a request's time.
But the answer only changes when time moves past the first fire: "the fires strictly after
now" is the same list for every ``now`` before that fire. So :class:`NextFires` keeps each
list with the instant it stops being true (its first fire) and recomputes it, from the clock's
now, on the first read after that. Jobs that share a schedule and timezone (a team's "09:00 on
weekdays") share one entry. Time comes from the injected clock only (``core/clock``).

Only as many fires are walked as were asked for: the catalog needs each job's first fire
(one step), a page shows five. A schedule that cannot be walked (the spec was applied by an
older version that accepted it) has no fires: cached too, since asking again gives the same
answer.
"""

from __future__ import annotations

import threading
from datetime import datetime

from planner_operator.core import clock as clock_mod
from planner_operator.core import scheduling, specs
from planner_operator.errors import PlannerError

COUNT = 5  # what the views show; a smaller count is served from the same entry
SIZE = 50_000  # distinct (schedule, timezone, policy) triples kept; the oldest go first

Key = tuple[str, str, specs.DstPolicy]


class NextFires:
    """Thread-safe; one per reader, shared by every request."""

    def __init__(self, clock: clock_mod.Clock, *, size: int = SIZE) -> None:
        self.clock = clock
        self.size = size
        self.computed = 0  # cron walks made (tests and the benchmark read it)
        self._lock = threading.Lock()
        # key -> (valid until, the fires walked, whether the series ended before the count)
        self._cache: dict[Key, tuple[datetime | None, tuple[scheduling.FireTime, ...], bool]] = {}

    def get(
        self,
        schedule: str,
        timezone: str,
        dst: specs.DstPolicy,
        *,
        count: int = COUNT,
        now: datetime | None = None,
    ) -> tuple[scheduling.FireTime, ...]:
        """The first ``count`` (at most :data:`COUNT`) fires strictly after now."""
        now = now or self.clock.now()
        count = min(count, COUNT)
        key = (schedule, timezone, dst)
        with self._lock:
            found = self._cache.get(key)
        valid = found is not None and (found[0] is None or now < found[0])
        if found is not None and valid and (len(found[1]) >= count or found[2]):
            return found[1][:count]
        fires = self._walk(schedule, timezone, dst, now, count)
        until = fires[0].utc if fires else None  # no fires: true for ever
        with self._lock:
            self.computed += 1
            self._cache.pop(key, None)
            if len(self._cache) >= self.size:
                self._cache.pop(next(iter(self._cache)))
            self._cache[key] = (until, fires, len(fires) < count)
        return fires

    def first(
        self, schedule: str, timezone: str, dst: specs.DstPolicy, *, now: datetime | None = None
    ) -> scheduling.FireTime | None:
        fires = self.get(schedule, timezone, dst, count=1, now=now)
        return fires[0] if fires else None

    @staticmethod
    def _walk(
        schedule: str, timezone: str, dst: specs.DstPolicy, now: datetime, count: int
    ) -> tuple[scheduling.FireTime, ...]:
        try:
            fires = scheduling.next_fires(schedule, timezone, start=now, count=count, dst=dst)
            return tuple(fires)
        except PlannerError:
            return ()
