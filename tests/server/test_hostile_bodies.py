"""Signed but hostile bodies against the real server: the signed half of the property suites.

``tests/server/api/test_openapi_property.py`` generates unsigned requests from the OpenAPI
document; here every body carries a valid signature for one of the three receivers (Composio,
Standard Webhooks, GitHub), so it gets past verification to parsing, routing, the inbox and the
worker, where a signature no longer protects anything. Bodies are built as JSON *text* (then
bytes), so they can hold what ``json.dumps`` never writes: nesting to any depth, lone surrogate
escapes in any field (``metadata.trigger_id`` included) and in keys, strings up to and past the
body cap, odd numbers (``1e400``, ``NaN``, ``-0``, 5,000-digit integers, ``01``), duplicate keys
whose two values disagree, bytes that are not UTF-8, a byte-order mark, UTF-16 and UTF-32.

Each hostile delivery is sent at the same moment as three valid ones, on a real uvicorn, so
they share the ingress group commit. The laws:

* no answer is a 5xx;
* every valid delivery is acknowledged 202 and, in the end, executed exactly once;
* a refused delivery has no inbox row and no executor call;
* an accepted one is executed exactly once if the worker says ``done``, never otherwise, and
  never fails in the worker on an unexpected error (those retry with ``(error)``).
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from planner_operator.core.settings import Settings
from planner_operator.server.app import create_app
from tests.fakes.serving import run_app
from tests.support.webhook_env import (
    ENV,
    MAIL_ID,
    Recorder,
    apply_triggers,
    composio_body,
    composio_headers,
    default_triggers,
    github_headers,
    standard_headers,
    wait_settled,
)

CAP = 256 * 1024  # PLANNER_WEBHOOK_MAX_BODY here, so "past the cap" stays cheap to send
VALID_PER_CASE = 3  # valid deliveries sent alongside each hostile one
RECEIVERS = {
    "composio": "/webhooks/composio",
    "standard": "/webhooks/engineering-agent/deploy-hook",
    "github": "/webhooks/engineering-agent/gh-push",
}
ODD_NUMBERS = (
    "1e400", "-1e400", "1e-400", "-0", "-0.0", "NaN", "Infinity", "-Infinity", "01", "1.",
    ".5", "0x10", "1" * 5000, "9" * 4000, "1E+2", "123456789012345678901234567890",
    "4.9e-324", "1.7976931348623157e308", "-", "+1", "1e", "0e0",
)  # fmt: skip
# Byte sequences that are not UTF-8: a stray continuation, overlong "/", CESU-8 surrogates
# (what a UTF-16 language's careless encoder writes), past U+10FFFF, a truncated sequence.
NOT_UTF8 = (
    b"\xff", b"\x80", b"\xc0\xaf", b"\xed\xa0\x80", b"\xed\xb0\x80", b"\xf4\x90\x80\x80",
    b"\xe2\x82", b"\xc3\x28", b"\xfe\xff",
)  # fmt: skip
# Where a Composio delivery's hostile value goes: every field of the envelope, and the data the
# trigger's template renders ({sender}, {subject}).
COMPOSIO_FIELDS = (
    "id", "timestamp", "type", "trigger_id", "trigger_slug", "connected_account_id",
    "user_id", "subject", "sender", "data", "key", "duplicate_trigger_id", "duplicate_data",
    "whole",
)  # fmt: skip
GENERIC_FIELDS = ("service", "version", "environment", "key", "duplicate", "whole")


def raw(data: bytes) -> str:
    """Bytes carried through text: ``surrogateescape`` turns them back into these bytes."""
    return data.decode("utf-8", "surrogateescape")


surrogate = st.integers(0xD800, 0xDFFF).map(lambda c: f"\\u{c:04x}")
text_piece = st.one_of(
    st.text(max_size=12).map(lambda t: json.dumps(t)[1:-1]),  # escaped, ASCII
    st.text(max_size=8).map(lambda t: json.dumps(t, ensure_ascii=False)[1:-1]),  # raw UTF-8
    surrogate,
    st.sampled_from(NOT_UTF8).map(raw),
    st.just("\\u0000"),
)
hostile_string = st.lists(text_piece, max_size=6).map(lambda parts: '"' + "".join(parts) + '"')


@st.composite
def nested(draw: st.DrawFn) -> str:
    """Arrays or objects nested from shallow to far past the depth cap (64)."""
    depth = draw(st.one_of(st.integers(0, 70), st.integers(60, 1100), st.just(5000)))
    leaf = draw(st.one_of(hostile_string, st.sampled_from(ODD_NUMBERS)))
    if draw(st.booleans()):
        return "[" * depth + leaf + "]" * depth
    return '{"k":' * depth + leaf + "}" * depth


def huge_string(draw: st.DrawFn) -> str:
    """A string near the body cap: plain, or all escapes (each costs the parser a decode)."""
    size = draw(st.sampled_from([CAP // 2, CAP - 400, CAP + 1, CAP * 3]))
    piece = draw(st.sampled_from(["x", "\\u00e9", "\\ud83d\\ude00", "\\ud800", "\\n"]))
    return '"' + piece * (size // len(piece)) + '"'


@st.composite
def fragment(draw: st.DrawFn) -> str:
    """One hostile JSON value (text), or text that is not JSON at all."""
    kind = draw(st.sampled_from(["nested", "string", "number", "huge", "broken"]))
    if kind == "nested":
        return draw(nested())
    if kind == "string":
        return draw(hostile_string)
    if kind == "number":
        return draw(st.sampled_from(ODD_NUMBERS))
    if kind == "huge":
        return huge_string(draw)
    return draw(st.sampled_from(['{"a": ', "[1,]", '"\\ud800', "\\", '{"a" 1}', "\x00", ""]))


def composio_text(value: str, where: str, trigger_first: bool) -> str:
    """A V3 Composio delivery for the applied mail trigger with ``value`` in field ``where``."""
    fields = {
        "id": '"m"',
        "timestamp": '"2026-01-01T00:00:00Z"',
        "type": '"composio.trigger.message"',
        "trigger_id": json.dumps(MAIL_ID),
        "trigger_slug": '"GMAIL_NEW_GMAIL_MESSAGE"',
        "connected_account_id": '"ca_1"',
        "user_id": '"user-1"',
        "subject": '"s"',
        "sender": '"x"',
    }
    if where in fields:
        fields[where] = value
    extra = ""
    if where == "data":
        extra = f', "v": {value}'
    elif where == "key" and value.startswith('"'):
        extra = f", {value}: 1"
    elif where == "duplicate_data":
        extra = f', "subject": {value}'  # a second "subject": the parser keeps the last
    data = f'{{"subject": {fields["subject"]}, "sender": {fields["sender"]}{extra}}}'
    ids = [f'"trigger_id": {fields["trigger_id"]}']
    if where == "duplicate_trigger_id":  # two trigger ids: which one routes, which one runs?
        ids.append(f'"trigger_id": {value}')
        if not trigger_first:
            ids.reverse()
    metadata = ", ".join(
        [
            *ids,
            f'"trigger_slug": {fields["trigger_slug"]}',
            f'"connected_account_id": {fields["connected_account_id"]}',
            f'"user_id": {fields["user_id"]}',
        ]
    )
    return (
        f'{{"id": {fields["id"]}, "timestamp": {fields["timestamp"]}, '
        f'"type": {fields["type"]}, "metadata": {{{metadata}}}, "data": {data}}}'
    )


def generic_text(value: str, where: str) -> str:
    """A deploy notification (Standard Webhooks or GitHub) with ``value`` in field ``where``."""
    fields = {"service": '"api"', "version": '"1.0"', "environment": '"x"'}
    if where in fields:
        fields[where] = value
    extra = f", {value}: 1" if where == "key" and value.startswith('"') else ""
    if where == "duplicate":
        extra = f', "version": {value}'
    return (
        f'{{"service": {fields["service"]}, "version": {fields["version"]}{extra}, '
        f'"deployment": {{"environment": {fields["environment"]}}}}}'
    )


def encode(text: str, encoding: str) -> bytes:
    data = text.encode("utf-8", "surrogateescape")
    if encoding == "utf-8":
        return data
    if encoding == "bom":
        return b"\xef\xbb\xbf" + data
    # UTF-16/32 of what decodes; json.loads(bytes) detects these by their zero bytes
    return data.decode("utf-8", "replace").encode(encoding)


@st.composite
def hostile(draw: st.DrawFn) -> tuple[str, bytes]:
    """(receiver, body): a hostile value placed where that receiver will read it."""
    receiver = draw(st.sampled_from(sorted(RECEIVERS)))
    value = draw(fragment())
    where = draw(st.sampled_from(COMPOSIO_FIELDS if receiver == "composio" else GENERIC_FIELDS))
    if where == "whole":
        text = value
    elif receiver == "composio":
        text = composio_text(value, where, draw(st.booleans()))
    else:
        text = generic_text(value, where)
    encoding = draw(
        st.sampled_from(["utf-8"] * 6 + ["bom", "utf-16", "utf-16-le", "utf-32", "utf-32-be"])
    )
    return receiver, encode(text, encoding)


def signed(receiver: str, msg_id: str, body: bytes) -> dict[str, str]:
    if receiver == "composio":
        return composio_headers(msg_id, body)
    if receiver == "standard":
        return standard_headers(msg_id, body)
    return github_headers(msg_id, body)


def valid(n: int) -> tuple[str, bytes]:
    receiver = ("composio", "standard", "github")[n % 3]
    if receiver == "composio":
        return receiver, composio_body(subject=f"valid {n}", sender="s@example.com")
    return receiver, json.dumps({"service": "api", "version": f"1.{n}"}).encode()


@dataclass
class Ledger:
    """What the senders saw: ids answered 2xx (hostile and valid), ids refused, every status."""

    accepted: set[str] = field(default_factory=set)
    valid: set[str] = field(default_factory=set)
    refused: int = 0
    statuses: Counter[int] = field(default_factory=Counter)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, Settings, Recorder]]:
    state = Settings.resolve(state_dir=tmp_path / "state", env={})
    apply_triggers(state, default_triggers())
    recorder = Recorder()
    app = create_app(
        state, {**ENV, "PLANNER_WEBHOOK_MAX_BODY": str(CAP)}, executors=recorder.executors()
    )
    with run_app(app, lifespan="on") as url:
        yield url, state, recorder


def run_suite(served: tuple[str, Settings, Recorder], examples: int) -> Ledger:
    url, state, recorder = served
    seen = Ledger()
    counter = iter(range(1_000_000))
    workers = 1 + VALID_PER_CASE
    with httpx.Client(base_url=url, timeout=60) as http, ThreadPoolExecutor(workers) as pool:

        def send(receiver: str, body: bytes, msg_id: str) -> tuple[str, int]:
            answer = http.post(
                RECEIVERS[receiver], content=body, headers=signed(receiver, msg_id, body)
            )
            key = answer.json().get("id") if answer.status_code in (200, 202) else None
            return key or "", answer.status_code

        @settings(
            max_examples=examples,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(hostile())
        def check(case: tuple[str, bytes]) -> None:
            n = next(counter)
            receiver, body = case
            bad = pool.submit(send, receiver, body, f"hostile-{n}")
            good = [
                pool.submit(send, *valid(n * VALID_PER_CASE + i), f"valid-{n}-{i}")
                for i in range(VALID_PER_CASE)
            ]
            bad_key, bad_status = bad.result()
            answers = [g.result() for g in good]
            seen.statuses[bad_status] += 1
            assert bad_status < 500, (bad_status, body[:200])
            for good_key, good_status in answers:
                assert good_status == 202, (good_status, body[:200])
                seen.valid.add(good_key)
                seen.accepted.add(good_key)
            if bad_key:
                seen.accepted.add(bad_key)
            else:
                seen.refused += 1

        check()
        wait_settled(state, timeout=120)
        batches = http.get("/api/inbox").json()["batches"]
    executed = Counter(recorder.keys)
    with sqlite3.connect(state.state_dir / "inbox.db") as inbox:
        rows = inbox.execute("SELECT id, status, outcome FROM deliveries").fetchall()
    stored = {row[0]: row for row in rows}
    assert set(stored) == seen.accepted, "an inbox row for a refused delivery, or one missing"
    assert set(executed) <= seen.accepted, "an executor call for a refused delivery"
    for key in seen.valid:
        assert executed[key] == 1, f"{key} executed {executed[key]} times"
    for key, status, outcome in rows:
        assert executed[key] == (1 if status == "done" else 0), (key, status, outcome)
        assert "(error)" not in (outcome or ""), f"{key} failed on an unexpected error: {outcome}"
    assert batches < len(rows), "deliveries never shared a group commit"
    return seen


def test_signed_hostile_bodies_never_5xx_never_run_when_refused_never_disturb_others(
    served: tuple[str, Settings, Recorder],
) -> None:
    seen = run_suite(served, 60)
    assert seen.refused and len(seen.accepted) > len(seen.valid), "both kinds were generated"
    assert {400, 413} <= set(seen.statuses), sorted(seen.statuses)


@pytest.mark.slow
def test_signed_hostile_bodies_long(served: tuple[str, Settings, Recorder]) -> None:
    started = time.monotonic()
    seen = run_suite(served, 600)
    print(
        f"{sum(seen.statuses.values())} hostile + {len(seen.valid)} valid deliveries in "
        f"{time.monotonic() - started:.0f} s; hostile statuses {dict(seen.statuses)}"
    )
