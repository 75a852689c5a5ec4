"""What must hold for any bytes handed to ``planner-operator validate``, fuzzer or not.

The Atheris harness (``fuzz_config_loader.py``) and the regression tests that replay the seed
corpus and every crash found (``tests/config/test_fuzz_regressions.py``) share this one check,
so a crash found by the fuzzer reproduces under plain pytest without Atheris installed.

The contract: loading never raises and never warns (one broken file must not hide the others,
and the suite runs with ``-W error``); every problem comes back as our ``ConfigError`` with a
usable position; whatever loads builds desired specs that survive a JSON round trip.
"""

from __future__ import annotations

import json
import warnings

from planner_operator.cli import commands
from planner_operator.config import desired
from planner_operator.core import canonical
from planner_operator.errors import ConfigError
from planner_operator.reconcile import source

FILE = "agents/fuzz.yaml"


def check(data: bytes) -> None:
    """Load ``data`` as ``validate`` does and assert the contract; any exception is a crash."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        files = source.load([source.SourceFile(FILE, data, len(data))])
        [result] = files
        assert result.file == FILE
        assert result.ok or result.errors, "a file that did not load must say why"
        for error in result.errors:
            assert isinstance(error, ConfigError), type(error)
            assert error.file == FILE
            assert error.position.line >= 1 and error.position.col >= 1
            where = f"{FILE}:{error.position.line}:{error.position.col}: "
            assert error.render().startswith(where), error.render()
            assert commands.github_annotation(error).startswith("::error file=")
        if result.ok:
            for resource in desired.build(files).values():
                # The spec is stored as JSON (ledger, backends) and compared with the desired
                # one on every run: it must come back equal, or the plan never converges.
                stored = json.loads(canonical.canonical_json(resource.spec))
                assert stored == resource.spec, resource.key
                assert resource.spec_hash == canonical.spec_hash(stored)
