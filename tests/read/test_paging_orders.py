"""The orders the index keeps per generation page exactly as filtering and sorting per request.

``Index.ordered`` sorts a kind's rows by next fire once per generation and ``paging.page``
bisects its cursor into that order instead of sorting the matches on every request; the
agent fast path takes an agent's rows from ``Index.of_agent``. This checks both against the
plain definition (filter every row, sort the matches, cut after the cursor), by walking every
page of random catalogs.
"""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from planner_operator.read import paging, views
from planner_operator.read.catalog import NEVER, Index, Row
from planner_operator.read.states import STATES, State


@st.composite
def rows(draw: st.DrawFn) -> tuple[Row, ...]:
    n = draw(st.integers(0, 40))
    out = {}
    for _ in range(n):
        agent = draw(st.sampled_from(["a", "b", "c"]))
        kind = draw(st.sampled_from(["job", "trigger"]))
        name = draw(st.text("xyz0123", min_size=1, max_size=3))
        key = f"{agent}/{kind}s/{name}"
        # few distinct fire times: ties must fall back on the key
        fires = kind == "job" and draw(st.booleans())
        at = float(draw(st.integers(0, 3))) if fires else NEVER
        out[key] = Row(
            key=key,
            kind="job" if kind == "job" else "trigger",
            agent=agent,
            name=name,
            state=draw(st.sampled_from(STATES)),
            detail="",
            text=key.casefold(),
            source=None if kind == "job" else "composio",
            toolkit=None,
            job=("* * * * *", "UTC", "skip") if fires else None,
            next_utc=at,
        )
    return tuple(out[k] for k in sorted(out))


def _reference(all_rows: tuple[Row, ...], kind: str, query: paging.Query) -> list[str]:
    """Every match of ``query``, in its order: the definition the pages must follow."""
    matched = [
        r
        for r in all_rows
        if r.kind == kind
        and (query.agent is None or r.agent == query.agent)
        and (query.state is None or r.state == query.state)
        and (query.q is None or query.q.casefold() in r.text)
    ]
    if query.sort == "next_fire":
        matched.sort(key=lambda r: (r.next_utc, r.key))
    return [r.key for r in matched]


def _walk(index: Index, kind: str, query: paging.Query) -> tuple[list[str], set[int]]:
    listing = "jobs" if kind == "job" else "triggers"
    seen: list[str] = []
    totals: set[int] = set()
    cursor: str | None = None
    while True:
        at = paging.Query(**{**query.__dict__, "cursor": cursor})
        cut = paging.page(views._rows(index, kind, at), at, listing)  # type: ignore[arg-type]
        seen += [r.key for r in cut.rows]
        totals.add(cut.total)
        if cut.next_cursor is None:
            return seen, totals
        cursor = cut.next_cursor


@settings(max_examples=200, deadline=None)
@given(
    all_rows=rows(),
    kind=st.sampled_from(["job", "trigger"]),
    agent=st.none() | st.sampled_from(["a", "b", "zz"]),
    state=st.none() | st.sampled_from(STATES),
    q=st.none() | st.sampled_from(["x", "y0", "jobs/"]),
    sort=st.sampled_from(paging.SORTS),
    limit=st.integers(1, 7),
)
def test_pages_over_the_kept_orders_list_every_match_once_in_order(
    all_rows: tuple[Row, ...],
    kind: str,
    agent: str | None,
    state: State | None,
    q: str | None,
    sort: paging.Sort,
    limit: int,
) -> None:
    if kind == "trigger" and sort == "next_fire":
        sort = "key"  # triggers have no next fire (refused: tested with the API)
    index = Index(all_rows, (), min((r.next_utc for r in all_rows), default=math.inf))
    query = paging.Query(agent=agent, state=state, q=q, sort=sort, limit=limit)
    expected = _reference(all_rows, kind, query)
    seen, totals = _walk(index, kind, query)
    assert seen == expected
    assert totals == {len(expected)}


def test_the_kept_next_fire_order_puts_ties_by_key_and_never_firing_jobs_last() -> None:
    def job(key: str, at: float) -> Row:
        return Row(key, "job", "a", key, "active", "", key, None, None, None, at)

    index = Index((job("a/jobs/1", NEVER), job("a/jobs/2", 5.0), job("a/jobs/3", 5.0)), (), 5.0)
    assert [r.key for r in index.ordered("job", "next_fire")] == [
        "a/jobs/2",
        "a/jobs/3",
        "a/jobs/1",
    ]
    assert index.counts() == {"active": 3}
    assert index.of_agent("a") == index.rows
