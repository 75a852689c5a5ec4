"""Coverage-guided fuzzing of the agent-file loader (Atheris, libFuzzer underneath).

``make fuzz`` runs it for ``FUZZ_SECONDS`` (default 600), ``make fuzz-smoke`` for 60 s in CI.
Any exception out of :func:`target.check`, or a warning, is a crash: libFuzzer writes the input
to ``-artifact_prefix``; copy it to ``tests/fuzz_regressions/`` so the regression test replays
it, fix the loader, and re-run. Run by hand::

    python -m fuzz.fuzz_config_loader -max_total_time=60 -dict=fuzz/agent.dict \
        -artifact_prefix=/tmp/x/ /tmp/x fuzz/corpus

from the repository root (the first directory receives new inputs: keep it outside the
repository).
"""

from __future__ import annotations

import sys

import atheris  # type: ignore[import-untyped,import-not-found,unused-ignore]

with atheris.instrument_imports(include=["planner_operator", "ruamel", "fuzz"]):
    from fuzz import target


def one_input(data: bytes) -> None:
    target.check(data)


def main() -> None:
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
