"""What a schedule expected in a window, for ``explain``: slots per DST policy, the slots the
policy drops on DST nights (and why), and the zone's clock changes.

``scheduling`` decides what fires; this module only asks it, a few ways, to show what did not:
a fire another policy would make is exactly a slot this job's policy dropped.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from planner_operator.core import scheduling, specs


@dataclass(frozen=True)
class Transition:
    """A change of the zone's UTC offset: clocks go ``forward`` or ``back`` at ``at`` (UTC)."""

    at: datetime
    way: str
    text: str


def expected(
    job: specs.JobSpec, lo: datetime, hi: datetime, backend: str | None = None
) -> Iterator[tuple[scheduling.FireTime, str | None]]:
    """Fires in [lo, hi) under the job's DST policy, plus the ones the policy drops (with why).

    A dropped fire is one another policy would make: ``literal`` shows the second occurrence of
    a repeated time, ``vixie`` the catch-up fire of a time the spring gap skips. Only computed
    when the window holds a clock change, so a minutely job costs one pass otherwise.
    """
    expr, tz = job.schedule, job.timezone
    policy = scheduling.effective_dst(job.dst, expr, backend)  # what the backend does
    kept = list(fires(expr, tz, policy, lo, hi))
    yield from ((f, None) for f in kept)
    if not transitions(ZoneInfo(tz), lo, hi):
        return
    instants = {f.utc for f in kept}
    others: tuple[specs.DstPolicy, ...] = ("literal", "vixie")
    for other in others:
        if other == policy:
            continue
        for fire in fires(expr, tz, other, lo, hi):
            if fire.utc in instants:
                continue
            instants.add(fire.utc)
            hm = f"{fire.slot:%H:%M}"
            if other == "vixie" and policy != job.dst:
                why = (
                    f"DST gap: {hm} does not exist that day; {backend} (robfig/cron) never "
                    f"fires a skipped time, whatever dst policy {job.dst} asks"
                )
            elif other == "vixie":
                why = f"DST gap: {hm} does not exist that day; dst policy {policy} never fires it"
            else:
                why = (
                    f"DST repeat: {hm} occurs twice; dst policy {job.dst} fires only the first "
                    "occurrence"
                )
            yield fire, why


def fires(
    expr: str, tz: str, policy: specs.DstPolicy, lo: datetime, hi: datetime
) -> Iterator[scheduling.FireTime]:
    """Fires in [lo, hi) (``iter_fires`` starts strictly after its start, hence the second)."""
    for fire in scheduling.iter_fires(expr, tz, start=lo - timedelta(seconds=1), dst=policy):
        if fire.utc >= hi:
            return
        yield fire


def next_fire(job: specs.JobSpec, after: datetime, backend: str | None = None) -> datetime | None:
    if not job.enabled:
        return None
    policy = scheduling.effective_dst(job.dst, job.schedule, backend)
    following = fires(job.schedule, job.timezone, policy, after, after + timedelta(days=400))
    first = next(following, None)
    return first.utc if first else None


def transitions(zone: ZoneInfo, start: datetime, end: datetime) -> list[Transition]:
    """Each UTC-offset change of ``zone`` in [start, end), found hour by hour then bisected."""
    out = []
    probe = start
    before = _offset(zone, probe)
    while probe < end:
        step = min(probe + timedelta(hours=1), end)
        after = _offset(zone, step)
        if after != before:
            lo, hi = probe, step
            while hi - lo > timedelta(seconds=1):
                mid = lo + (hi - lo) / 2
                lo, hi = (mid, hi) if _offset(zone, mid) == before else (lo, mid)
            hi = hi.replace(microsecond=0)
            old_wall = (hi.astimezone(zone) - (after - before)).strftime("%H:%M")
            new_wall = hi.astimezone(zone).strftime("%H:%M")
            way = "forward" if after > before else "back"
            text = (
                f"clocks go {way}: {old_wall} becomes {new_wall} "
                f"(UTC{hm(before)} -> UTC{hm(after)})"
            )
            out.append(Transition(hi, way, text))
        before, probe = after, step
    return out


def wall(fire: scheduling.FireTime) -> str:
    """What ``jobrun.Fire.wall`` records for this fire: wall-clock minutes in its zone."""
    return fire.at.replace(tzinfo=None).isoformat(timespec="minutes")


def hm(offset: timedelta) -> str:
    """``-05:00``: an offset as ISO 8601 writes it."""
    minutes = int(offset.total_seconds() // 60)
    sign = "+" if minutes >= 0 else "-"
    return f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def _offset(zone: ZoneInfo, at: datetime) -> timedelta:
    return at.astimezone(zone).utcoffset() or timedelta(0)
