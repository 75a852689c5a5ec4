"""One way to name a job or trigger everywhere: AGENT/NAME or the full key, did-you-mean."""

from __future__ import annotations

import pytest

from planner_operator.core import keys
from planner_operator.errors import NotFoundError

KNOWN = [
    "sales-agent/jobs/weekly-pipeline-review",
    "sales-agent/triggers/new-contact",
    "eng/jobs/digest",
    "eng/triggers/digest",
]


@pytest.mark.parametrize(
    ("text", "kind", "expected"),
    [
        ("sales-agent/weekly-pipeline-review", None, "sales-agent/jobs/weekly-pipeline-review"),
        ("sales-agent/jobs/weekly-pipeline-review", "job", KNOWN[0]),
        ("/sales-agent/new-contact/", None, "sales-agent/triggers/new-contact"),
        ("eng/digest", "trigger", "eng/triggers/digest"),
        ("eng/digest", "job", "eng/jobs/digest"),
    ],
)
def test_short_and_full_names_resolve(text: str, kind: keys.Kind | None, expected: str) -> None:
    assert keys.resolve(text, KNOWN, kind=kind) == expected


def test_a_name_that_is_both_a_job_and_a_trigger_needs_the_full_key() -> None:
    with pytest.raises(NotFoundError, match="is both eng/jobs/digest and eng/triggers/digest"):
        keys.resolve("eng/digest", KNOWN)


def test_an_unknown_name_suggests_the_nearest_keys() -> None:
    with pytest.raises(NotFoundError) as info:
        keys.resolve("sales-agent/weekly-pipline-review", KNOWN, kind="job")
    assert str(info.value) == (
        "no applied job `sales-agent/weekly-pipline-review`; "
        "did you mean `sales-agent/jobs/weekly-pipeline-review`?"
    )


def test_a_trigger_is_not_a_job() -> None:
    with pytest.raises(NotFoundError, match="no applied job `sales-agent/new-contact`"):
        keys.resolve("sales-agent/new-contact", KNOWN, kind="job")


def test_nothing_near_points_at_status() -> None:
    with pytest.raises(NotFoundError, match="`planner-operator status` lists them"):
        keys.resolve("zzz/qqq", KNOWN)


@pytest.mark.parametrize("text", ["sales", "a/b/c/d", "a/things/b", ""])
def test_malformed_names_say_how_to_write_one(text: str) -> None:
    with pytest.raises(NotFoundError, match="is not a key: use AGENT/NAME"):
        keys.resolve(text, KNOWN)
