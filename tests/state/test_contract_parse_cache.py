"""The parse cache contract on SQLite and PostgreSQL: many keys read at once, a batch written in
one transaction, rows of another loader version dropped, the table bounded."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from planner_operator.core.clock import ManualClock
from planner_operator.core.settings import Settings
from planner_operator.state import open as state_open
from planner_operator.state import parse_cache
from planner_operator.state.parse_cache import ParseCache


@pytest.fixture
def cache(store: Settings) -> Iterator[ParseCache]:
    with state_open.parse_cache(store) as opened:
        yield opened


def test_get_reads_many_keys_and_skips_missing_ones(cache: ParseCache) -> None:
    results = {f"k{i}": f'{{"n": {i}}}' for i in range(1200)}  # more than one IN (...) batch
    cache.put("v1", results)
    found = cache.get([*results, "absent", "k3"])
    assert found == results
    assert cache.get([]) == {}


def test_put_replaces_a_key_and_drops_other_versions(cache: ParseCache) -> None:
    cache.put("v1", {"a": "one", "b": "two"})
    cache.put("v1", {"a": "uno"})
    assert cache.get(["a", "b"]) == {"a": "uno", "b": "two"}
    cache.put("v2", {"c": "three"})  # the loader changed: nothing of v1 may be served
    assert cache.get(["a", "b", "c"]) == {"c": "three"}
    assert cache.count() == 1
    cache.put("v2", {})  # nothing to keep: nothing written
    assert cache.count() == 1


def test_the_table_keeps_the_newest_rows(store: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(parse_cache, "MAX_ROWS", 3)
    clock = ManualClock(datetime(2026, 1, 1, tzinfo=UTC))
    with state_open.parse_cache(store, clock=clock) as cache:
        cache.put("v", {"old1": "x", "old2": "x"})
        clock.advance(60)
        cache.put("v", {"new1": "y", "new2": "y"})
        assert cache.count() == 3
        assert set(cache.get(["old1", "old2", "new1", "new2"])) == {"old2", "new1", "new2"}
        cache.clear()
        assert cache.count() == 0


def test_text_round_trips_exactly(cache: ParseCache) -> None:
    text = '{"s":"caf\u00e9 \\u0000 \U0001f600","quote":"it\'s"}'
    cache.put("v", {"k": text})
    assert cache.get(["k"]) == {"k": text}
