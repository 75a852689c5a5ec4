"""Escaping what a sender controls before it reaches a log line."""

from __future__ import annotations

import io
import logging

import pytest

from planner_operator.core import logsafe


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("a\nb", "a\\nb"),
        ("a\r\nb", "a\\r\\nb"),
        ("\x1b[31m", "\\x1b[31m"),
        ("nul\x00", "nul\\x00"),
        ("\x85\u2028\u2029", "\\x85\\u2028\\u2029"),
        ("\u202eevil", "\\u202eevil"),
        ("\ud800", "\\ud800"),
        ("plain ünïcode ✓ and tabs\t", "plain ünïcode ✓ and tabs\\t"),
    ],
)
def test_escape(raw: str, shown: str) -> None:
    assert logsafe.escape(raw) == shown


def test_the_filter_escapes_values_and_exception_messages_but_keeps_traceback_lines() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    logger = logging.getLogger("tests.logsafe")
    logger.addHandler(handler)
    logger.propagate = False
    logsafe.install([logger])
    try:
        logger.warning("delivery %s trigger=%s", "id\nFORGED line", "\x1b[2J")
        try:
            try:
                raise KeyError("inner\nFORGED")
            except KeyError as exc:
                raise ValueError("outer\r\nFORGED \ud800") from exc
        except ValueError:
            logger.exception("failed %s", "x")
    finally:
        logger.removeHandler(handler)
    text = stream.getvalue()
    assert not [line for line in text.splitlines() if line.startswith("FORGED")]
    assert "id\\nFORGED line trigger=\\x1b[2J" in text
    assert "Traceback (most recent call last):" in text and "direct cause" in text
    assert "ValueError: outer\\r\\nFORGED \\ud800" in text
    text.encode("utf-8")
