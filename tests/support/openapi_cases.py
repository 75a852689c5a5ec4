"""Schemathesis over a running server's own OpenAPI document, shared by the API suites.

Each documented operation gets generated requests (valid and invalid) and every default check
except ``positive_data_acceptance`` (the suites' docstrings say which schema-valid inputs are
refused by design). Failures are collected per operation, so one run reports them all.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import positive_data_acceptance
from schemathesis.core.result import Ok


def operations(base_url: str, headers: Mapping[str, str]) -> list[Any]:
    loaded = schemathesis.openapi.from_url(f"{base_url}/openapi.json", headers=dict(headers))
    found = []
    for result in loaded.get_all_operations():
        assert isinstance(result, Ok), f"the document has an invalid operation: {result}"
        found.append(result.ok())
    return found


def failures(
    ops: Iterable[Any], base_url: str, headers: Mapping[str, str], examples: int
) -> list[str]:
    """``"<operation>: <what failed>"`` for each operation that broke a check."""
    found: list[str] = []
    for op in ops:

        @given(case=op.as_strategy())
        @settings(
            max_examples=examples,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
        )
        def check(case: schemathesis.Case[Any]) -> None:
            case.call_and_validate(
                base_url=base_url, headers=dict(headers), excluded_checks=[positive_data_acceptance]
            )

        try:
            check()
        except Exception as exc:  # collect every operation's failure, then report them all
            found.append(f"{op.label}: {exc}")
    return found
