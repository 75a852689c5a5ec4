"""Filters, sorts and keyset pages over the catalog's rows: pure, so a page is a function.

A page is cut by *keyset*, not offset: the cursor names the last row shown (its key, and its
next fire when sorting by next fire), and the next page starts strictly after it. A job
created or deleted while someone pages therefore neither repeats nor hides another one, which
an offset would do. Sorting by next fire orders by (next fire, key), so ties and paused jobs
(no next fire: last) still have one order.

The cursor is opaque to clients (base64url JSON) but checked: it carries a digest of the query
it belongs to (kind, filters, sort) and a checksum of itself, so a cursor from another query,
an edited one or a truncated one is refused with a message naming ``cursor``, never
misread as some other position.
"""

from __future__ import annotations

import base64
import bisect
import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeVar, get_args

from planner_operator.errors import InvalidRequest
from planner_operator.read.catalog import NEVER, AgentRow, Row
from planner_operator.read.states import STATES, State

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
MAX_QUERY = 200  # characters of `q`
Sort = Literal["key", "next_fire"]
SORTS: tuple[Sort, ...] = get_args(Sort)
Source = Literal["composio", "webhook"]
Listing = Literal["jobs", "triggers", "agents"]
_SALT = b"planner-operator cursor v1\n"

R = TypeVar("R", Row, AgentRow)


@dataclass(frozen=True)
class Query:
    """What a list request asks for; :meth:`check` says what is wrong with it, by parameter."""

    agent: str | None = None
    state: State | None = None
    source: Source | None = None
    toolkit: str | None = None
    q: str | None = None
    sort: Sort = "key"
    limit: int = DEFAULT_LIMIT
    cursor: str | None = None

    def check(self, listing: Listing) -> None:
        if not 1 <= self.limit <= MAX_LIMIT:
            raise InvalidRequest(
                f"`limit` is 1 to {MAX_LIMIT} (default {DEFAULT_LIMIT}), got {self.limit}",
                field="limit",
            )
        if self.state is not None and self.state not in STATES:
            raise InvalidRequest(
                f"unknown state `{self.state}`: use one of {', '.join(STATES)}", field="state"
            )
        if self.sort not in SORTS:
            raise InvalidRequest(
                f"unknown sort `{self.sort}`: use one of {', '.join(SORTS)}", field="sort"
            )
        if self.sort == "next_fire" and listing == "triggers":
            raise InvalidRequest(
                "triggers have no next fire: sort them by `key` (the default)", field="sort"
            )
        for name in ("source", "toolkit"):
            if getattr(self, name) is not None and listing != "triggers":
                raise InvalidRequest(
                    f"`{name}` filters triggers (GET /api/triggers?{name}=...); {listing} "
                    "have none",
                    field=name,
                )
        if self.source is not None and self.source not in get_args(Source):
            raise InvalidRequest(
                f"unknown source `{self.source}`: use composio or webhook", field="source"
            )
        if self.q is not None and len(self.q) > MAX_QUERY:
            raise InvalidRequest(f"`q` is at most {MAX_QUERY} characters", field="q")

    def digest(self, listing: Listing) -> str:
        """What a cursor must have been made for: everything but the position and page size."""
        parts = [listing, self.agent, self.state, self.source, self.toolkit, self.q, self.sort]
        text = json.dumps(parts, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Cut:
    """One page of rows, the cursor of the next one (None: last page) and how many matched."""

    rows: list[Any]
    next_cursor: str | None
    total: int


def page(rows: Sequence[R], query: Query, listing: Listing) -> Cut:
    """The page of ``rows`` that ``query`` asks for. ``rows`` come in the order of
    ``query.sort`` (:func:`order`): the catalog keeps each order once per index generation, so
    a request filters (only when it has filters) and bisects, never sorts."""
    query.check(listing)
    matched: Sequence[R] = rows
    if _filtered(query):
        wanted = _predicate(query)
        matched = [r for r in rows if wanted(r)]
    position = _position(query.sort)
    start = 0
    if query.cursor is not None:
        after = decode(query.cursor, query.digest(listing))
        start = bisect.bisect_right(matched, after, key=position)
    chosen = list(matched[start : start + query.limit])
    more = start + query.limit < len(matched)
    cursor = encode(position(chosen[-1]), query.digest(listing)) if more and chosen else None
    return Cut(chosen, cursor, len(matched))


def order(rows: Sequence[R], sort: Sort) -> list[R]:
    """``rows`` (in key order) in the order :func:`page` expects for ``sort``: by key, or by
    (next fire, key) with the rows that never fire last."""
    return sorted(rows, key=_position(sort))


def _position(sort: Sort) -> Callable[[Any], tuple[float, str]]:
    if sort == "next_fire":
        return lambda r: (r.next_utc, _key(r))
    return lambda r: (0.0, _key(r))


def _filtered(query: Query) -> bool:
    return any(
        value is not None
        for value in (query.agent, query.state, query.source, query.toolkit, query.q)
    )


def _key(row: Row | AgentRow) -> str:
    return row.key if isinstance(row, Row) else row.id


def _predicate(query: Query) -> Callable[[Any], bool]:
    needle = query.q.casefold().strip() if query.q else None
    toolkit = query.toolkit.casefold() if query.toolkit else None

    def wanted(row: Row | AgentRow) -> bool:
        if isinstance(row, AgentRow):
            if query.agent is not None and row.id != query.agent:
                return False
            if query.state is not None and not row.states.get(query.state):
                return False
        else:
            if query.agent is not None and row.agent != query.agent:
                return False
            if query.state is not None and row.state != query.state:
                return False
            if query.source is not None and row.source != query.source:
                return False
            if toolkit is not None and (row.toolkit or "").casefold() != toolkit:
                return False
        return needle is None or needle in row.text

    return wanted


def encode(position: tuple[float, str], digest: str) -> str:
    at, key = position
    payload = json.dumps(
        {"at": None if at == NEVER else at, "key": key, "for": digest}, separators=(",", ":")
    ).encode()
    check = hashlib.sha256(_SALT + payload).hexdigest()[:12]
    return base64.urlsafe_b64encode(payload).decode().rstrip("=") + "." + check


def decode(cursor: str, digest: str) -> tuple[float, str]:
    """The position a cursor names, or ``InvalidRequest`` naming ``cursor``."""
    bad = InvalidRequest(
        "`cursor` is not one this server gave out (copy `next_cursor` / the X-Next-Cursor "
        "header of the previous page unchanged, or leave it out for the first page)",
        field="cursor",
    )
    body, _, check = cursor.partition(".")
    try:
        payload = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
        data = json.loads(payload)
    except ValueError:
        raise bad from None
    if hashlib.sha256(_SALT + payload).hexdigest()[:12] != check or not isinstance(data, dict):
        raise bad
    if data.get("for") != digest:
        raise InvalidRequest(
            "`cursor` belongs to another query (other filters or sort): keep the filters of "
            "the page it came from, or start again without it",
            field="cursor",
        )
    at, key = data.get("at"), data.get("key")
    if not isinstance(key, str) or not (at is None or isinstance(at, int | float)):
        raise bad
    return (NEVER if at is None else float(at), key)
