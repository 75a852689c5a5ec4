"""Replays the fuzzer's seed corpus and every crash it found through the fuzz target's check.

``fuzz/target.py`` holds the contract the Atheris harness fuzzes (``make fuzz``); running the
same check here means a crash, once its input is saved in ``tests/fuzz_regressions/``, stays
fixed under plain pytest, without Atheris installed.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from fuzz import target
from planner_operator.config import loader
from planner_operator.reconcile import source

ROOT = Path(__file__).resolve().parents[2]
CORPUS = sorted((ROOT / "fuzz" / "corpus").iterdir())
CRASHES = sorted((ROOT / "tests" / "fuzz_regressions").iterdir())


@pytest.mark.parametrize("path", CORPUS, ids=[p.name for p in CORPUS])
def test_seed_corpus_keeps_the_contract(path: Path) -> None:
    target.check(path.read_bytes())


@pytest.mark.parametrize("path", CRASHES, ids=[p.name for p in CRASHES])
def test_crashes_found_stay_fixed(path: Path) -> None:
    target.check(path.read_bytes())


def test_the_corpus_and_crash_directories_are_not_empty() -> None:
    assert len(CORPUS) >= 10 and CRASHES  # a moved directory must not turn these into no-ops


@pytest.mark.parametrize("value", [".nan", ".NaN", ".inf", "-.Inf", "+.INF", "1e400"])
def test_non_finite_numbers_are_errors_at_the_value(value: str) -> None:
    """JSON has no NaN/infinity: stored, the spec never equals the desired one again."""
    text = (
        "name: Demo\nplanner:\n  jobs:\n    - name: daily\n      schedule: '@daily'\n"
        f"      action: {{chat: {{template: hi, variables: {{x: {value}}}}}}}\n"
    )
    [result] = source.load([source.SourceFile("agents/demo.yaml", text.encode(), len(text))])
    assert [e.render() for e in result.errors] == [
        f"agents/demo.yaml:6:52: planner.jobs[0].action.chat.variables.x: `{value}` is not a "
        "finite number (use a finite number, or quote the value to keep it as text)"
    ]


def test_quoted_nan_is_text_and_a_nan_key_is_still_a_key() -> None:
    text = "name: Demo\nvariables: {x: '.nan', .nan: 1}\n"
    result = loader.load_text(text, "agents/demo.yaml")
    assert result.ok and result.agent is not None
    assert result.agent.variables == {"x": ".nan", "nan": 1}
