"""The `{placeholder}` language: names, dotted names, `{{`/`}}` escapes and nothing else."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from planner_operator.core import templates
from planner_operator.errors import TemplateError


def test_parse_splits_text_and_placeholders() -> None:
    parsed = templates.parse("Hi {user}, today is {date}.")
    assert parsed.parts == (
        "Hi ",
        templates.Placeholder("user", 3),
        ", today is ",
        templates.Placeholder("date", 20),
        ".",
    )
    assert parsed.placeholders == ("user", "date")


def test_dotted_placeholders() -> None:
    assert templates.parse("{a.b} {payload.items.0.name}").placeholders == (
        "a.b",
        "payload.items.0.name",
    )


def test_escaped_braces_are_text() -> None:
    parsed = templates.parse("{{literal}} and {{{name}}}")
    assert parsed.placeholders == ("name",)
    assert templates.render(parsed, {"name": "x"}) == "{literal} and {x}"


def test_text_only_and_empty() -> None:
    assert templates.parse("").parts == ()
    assert templates.parse("plain").parts == ("plain",)


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("a { b", "unmatched `{` at column 3 (write `{{` for a literal brace)"),
        ("end {", "unmatched `{` at column 5 (write `{{` for a literal brace)"),
        ("a } b", "unmatched `}` at column 3 (write `}}` for a literal brace)"),
        (
            "a {} b",
            "empty placeholder `{}` at column 3: put a name inside, or write `{{}}` for literal "
            "braces",
        ),
        (
            "x {a b}",
            "`{a b}` at column 3 is not a placeholder: names are letters, digits and _ with dots "
            "between parts; write `{{` for a literal brace",
        ),
        (
            "{a[0]}",
            "`{a[0]}` at column 1 is not a placeholder: names are letters, digits and _ with "
            "dots between parts; write `{{` for a literal brace",
        ),
        (
            "{a!r}",
            "`{a!r}` at column 1 is not a placeholder: names are letters, digits and _ with dots "
            "between parts; write `{{` for a literal brace",
        ),
        (
            "{a:>10}",
            "`{a:>10}` at column 1 is not a placeholder: names are letters, digits and _ with "
            "dots between parts; write `{{` for a literal brace",
        ),
        (
            "{1a}",
            "`{1a}` at column 1 is not a placeholder: names are letters, digits and _ with dots "
            "between parts; write `{{` for a literal brace",
        ),
        (
            "{a.}",
            "`{a.}` at column 1 is not a placeholder: names are letters, digits and _ with dots "
            "between parts; write `{{` for a literal brace",
        ),
    ],
)
def test_bad_templates(source: str, message: str) -> None:
    with pytest.raises(TemplateError) as info:
        templates.parse(source)
    assert str(info.value) == message


def test_render_values() -> None:
    values: dict[str, Any] = {
        "s": "text",
        "n": 3,
        "f": 1.5,
        "t": True,
        "no": False,
        "none": None,
        "items": ["a", 1, True],
        "obj": {"k": [1, None], "ok": True, "é": "ü"},
    }
    rendered = templates.render("{s}|{n}|{f}|{t}|{no}|{none}|{items}|{obj}", values)
    assert rendered == 'text|3|1.5|true|false||a, 1, true|{"k": [1, null], "ok": true, "é": "ü"}'


def test_render_dotted_lookup() -> None:
    values = {"payload": {"sender": {"name": "Ada"}, "labels": ["INBOX", "WORK"]}}
    assert templates.render("{payload.sender.name} {payload.labels.1}", values) == "Ada WORK"


def test_flat_key_with_a_dot_wins_over_nesting() -> None:
    assert templates.render("{a.b}", {"a.b": "flat", "a": {"b": "nested"}}) == "flat"


def test_render_missing_names_each_once() -> None:
    with pytest.raises(TemplateError) as info:
        templates.render("{a} {b.c} {a} {ok}", {"ok": 1, "b": {"d": 1}})
    assert str(info.value) == "no value for {a}, {b.c}"


@pytest.mark.parametrize(
    ("name", "found"),
    [("x", (True, 1)), ("y.0", (True, "a")), ("y.5", (False, None)), ("x.z", (False, None))],
)
def test_lookup(name: str, found: tuple[bool, Any]) -> None:
    assert templates.lookup({"x": 1, "y": ["a"]}, name) == found


def test_strings_in_and_render_value() -> None:
    value = {"a": "{x}", "b": ["{x}!", 2, {"c": "plain"}], "d": None}
    assert list(templates.strings_in(value)) == [("a", "{x}"), ("b.0", "{x}!"), ("b.2.c", "plain")]
    assert templates.render_value(value, {"x": "X"}) == {
        "a": "X",
        "b": ["X!", 2, {"c": "plain"}],
        "d": None,
    }


def test_job_builtins() -> None:
    slot = datetime(2026, 3, 9, 9, 30, tzinfo=ZoneInfo("Europe/Berlin"))
    values = templates.job_builtins(slot=slot, agent="sales", job="daily", run_id="r1")
    assert values == {
        "date": "2026-03-09",
        "time": "09:30",
        "datetime": "2026-03-09T09:30+01:00",
        "weekday": "Monday",
        "agent": "sales",
        "job": "daily",
        "run_id": "r1",
    }
    assert set(values) == templates.JOB_BUILTINS


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=60))
def test_escaped_text_renders_back_to_itself(text: str) -> None:
    """Doubling every brace makes any text a template that renders to exactly that text."""
    escaped = text.replace("{", "{{").replace("}", "}}")
    assert templates.parse(escaped).placeholders == ()
    assert templates.render(escaped, {}) == text


NAMES = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,8}", fullmatch=True)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.text(alphabet="ab .,", max_size=5), NAMES), max_size=5))
def test_placeholders_render_their_values(pieces: list[tuple[str, str]]) -> None:
    source = "".join(f"{text}{{{name}}}" for text, name in pieces)
    values = {name: f"<{name}>" for _, name in pieces}
    assert templates.parse(source).placeholders == tuple(name for _, name in pieces)
    assert templates.render(source, values) == "".join(f"{t}<{n}>" for t, n in pieces)
