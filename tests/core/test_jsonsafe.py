"""The one JSON reader for bodies from outside: depth cap, real characters, finite numbers."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from planner_operator.core import jsonsafe


def nested(depth: int, leaf: str = "1") -> bytes:
    return ("[" * depth + leaf + "]" * depth).encode()


def depth_of(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max((depth_of(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((depth_of(v) for v in value), default=0)
    return 0


@pytest.mark.parametrize("depth", [jsonsafe.MAX_DEPTH + 1, 300, 950, 1_000, 100_000])
def test_nesting_past_the_cap_is_invalid_json_not_recursion_error(depth: int) -> None:
    with pytest.raises(jsonsafe.InvalidJSON, match=f"deeper than {jsonsafe.MAX_DEPTH} levels"):
        jsonsafe.loads(nested(depth))


def test_nesting_up_to_the_cap_is_read() -> None:
    assert depth_of(jsonsafe.loads(nested(jsonsafe.MAX_DEPTH))) == jsonsafe.MAX_DEPTH
    deep_object = '{"a":' * jsonsafe.MAX_DEPTH + "1" + "}" * jsonsafe.MAX_DEPTH
    assert depth_of(jsonsafe.loads(deep_object)) == jsonsafe.MAX_DEPTH
    with pytest.raises(jsonsafe.InvalidJSON):
        jsonsafe.loads('{"a":' + deep_object + "}")


def test_lone_surrogates_are_read_as_the_replacement_character() -> None:
    text = (
        b'{"id": "\\ud800", "\\udfffkey": ["x\\udc00y", {"k": "\\ud83d"}], "ok": "\\ud83d\\ude00"}'
    )
    value = jsonsafe.loads(text)
    assert value == {"id": "\ufffd", "\ufffdkey": ["x\ufffdy", {"k": "\ufffd"}], "ok": "\U0001f600"}
    json.dumps(value, ensure_ascii=False).encode("utf-8")  # storable and sendable
    assert jsonsafe.loads(b'"\\ud800"') == "\ufffd"


@pytest.mark.parametrize("text", ["NaN", "[Infinity]", '{"a": -Infinity}', "1e400", "[-1e309]"])
def test_numbers_json_cannot_carry_are_refused(text: str) -> None:
    with pytest.raises(jsonsafe.InvalidJSON):
        jsonsafe.loads(text)


@pytest.mark.parametrize("data", [b"", b"\xff\xfe", b"{", b"1" * 5000, b'{"a": 1} x'])
def test_everything_else_that_is_not_json_is_invalid_json(data: bytes) -> None:
    with pytest.raises(jsonsafe.InvalidJSON, match="not JSON"):
        jsonsafe.loads(data)


@given(st.binary(max_size=300) | st.text(max_size=300).map(str.encode))
def test_any_bytes_give_a_clean_value_or_invalid_json(data: bytes) -> None:
    try:
        value = jsonsafe.loads(data)
    except jsonsafe.InvalidJSON:
        return
    json.dumps(value, ensure_ascii=False, allow_nan=False).encode("utf-8")
    assert depth_of(value) <= jsonsafe.MAX_DEPTH


@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(),
        lambda c: st.lists(c) | st.dictionaries(st.text(), c),
    )
)
def test_real_json_reads_back_as_json_would(value: Any) -> None:
    text = json.dumps(value)
    if depth_of(value) <= jsonsafe.MAX_DEPTH and text.isascii() and "\\ud" not in text:
        assert jsonsafe.loads(text) == json.loads(text)
