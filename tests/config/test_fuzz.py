"""Whatever bytes an agent file holds, loading gives a result with our typed errors, never a crash.

Two generators: arbitrary text, and YAML-ish documents (random nested data dumped by ruamel,
then damaged the way hands and merges damage files: a character deleted, a line duplicated, a
`:` or an anchor, alias or tag dropped in). Crashes found here are kept as explicit cases in
``test_loader.py``'s regression tests.
"""

from __future__ import annotations

import io
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML

from planner_operator.config import loader
from planner_operator.errors import ConfigError
from planner_operator.reconcile import source

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

KEYS = st.sampled_from(
    [
        "id",
        "name",
        "timezone",
        "variables",
        "planner",
        "jobs",
        "triggers",
        "schedule",
        "action",
        "chat",
        "workflow",
        "template",
        "input",
        "webhook",
        "filter",
        "all",
        "any",
        "equals",
        "in",
        "toolkit",
        "event",
        "user_id",
    ]
) | st.text(min_size=1, max_size=8)
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    | st.text(max_size=20)
    | st.sampled_from(["@daily", "0 9 * * 1", "Europe/Berlin", "{date}", "{", "}}", "ca_1"])
)
DATA = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(KEYS, inner, max_size=5),
    max_leaves=25,
)
INSERTS = [
    *(":", ": ", "&a ", "*a", "!!tag ", "!x ", "- ", "{", "[", "'", '"', "\t", "---\n", "? "),
    *(" !x [a]", " !x {a: 1}", " !!omap [a: 1]", " !!set {a}", " !!binary aGk=", " !!str 1"),
    *("\n<<: {a: 1}\n", "<<: *a\n", "&a [*a]", "1: x\n", "2001-02-30"),
]


def dump(data: Any) -> str:
    yaml = YAML(typ="rt", pure=True)
    yaml.default_flow_style = False
    stream = io.StringIO()
    yaml.dump(data, stream)
    return stream.getvalue()


@st.composite
def yamlish(draw: st.DrawFn) -> str:
    """A dumped document (an agent-shaped mapping or any data) with a few random mutations."""
    data = draw(DATA | st.fixed_dictionaries({"name": SCALARS, "planner": DATA}))
    text = dump(data)
    for _ in range(draw(st.integers(0, 3))):
        lines = text.splitlines(keepends=True)
        kind = draw(st.sampled_from(["delete", "duplicate", "insert"]))
        if kind == "delete" and text:
            at = draw(st.integers(0, len(text) - 1))
            text = text[:at] + text[at + 1 :]
        elif kind == "duplicate" and lines:
            at = draw(st.integers(0, len(lines) - 1))
            text = "".join([*lines[: at + 1], lines[at], *lines[at + 1 :]])
        else:
            at = draw(st.integers(0, len(text)))
            text = text[:at] + draw(st.sampled_from(INSERTS)) + text[at:]
    return text


def assert_loaded(result: loader.LoadedFile, file: str) -> None:
    assert isinstance(result, loader.LoadedFile)
    assert result.file == file
    assert all(isinstance(e, ConfigError) for e in result.errors)
    assert result.ok or result.errors, "a file that did not load must say why"
    for error in result.errors:
        assert error.file == file
        assert error.position.line >= 1
        assert error.position.col >= 1
        assert error.render().startswith(f"{file}:{error.position.line}:{error.position.col}: ")


@FUZZ
@given(st.text(max_size=400))
def test_any_text_loads_without_raising(text: str) -> None:
    assert_loaded(loader.load_text(text, "agents/fuzz.yaml"), "agents/fuzz.yaml")


@FUZZ
@given(st.binary(max_size=200))
def test_any_bytes_load_without_raising(data: bytes) -> None:
    assert_loaded(loader.load_bytes(data, "agents/fuzz.yaml"), "agents/fuzz.yaml")


@FUZZ
@given(yamlish())
def test_mutated_yaml_loads_without_raising(text: str) -> None:
    assert_loaded(loader.load_text(text, "agents/fuzz.yaml"), "agents/fuzz.yaml")


@FUZZ
@given(st.lists(yamlish() | st.text(max_size=100), min_size=1, max_size=4))
def test_source_load_keeps_every_file(texts: list[str]) -> None:
    """Each file gets its own result, in order, however broken its neighbours are."""
    files = [
        source.SourceFile(f"agents/a{i}.yaml", t.encode(), len(t)) for i, t in enumerate(texts)
    ]
    results = source.load(files)
    assert [r.file for r in results] == [f.display for f in files]
    for result in results:
        assert_loaded(result, result.file)
    for result, text in zip(results, texts, strict=True):
        alone = source.load([source.SourceFile(result.file, text.encode(), len(text))])[0]
        # Neighbours can only add a duplicate-id error, never hide or change this file's own.
        own = {e.render() for e in alone.errors}
        assert own <= {e.render() for e in result.errors}
        assert (alone.agent is None) == (result.agent is None)
