"""``states.classify``: the documented precedence, one fact or several at a time (pure)."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from planner_operator.backends.base import RemoteObject
from planner_operator.core.records import OwnedEntry
from planner_operator.read import states
from tests.support.builders import desired, job_spec, owned_for


def entry(**spec: Any) -> OwnedEntry:
    return owned_for(desired("a/jobs/j", job_spec(**spec)), "rid-1")


def remote(e: OwnedEntry, state: str = "active", reason: str | None = None, **spec: Any) -> Any:
    return RemoteObject("rid-1", "job", {**e.spec, **spec}, key=e.key, state=state, reason=reason)  # type: ignore[arg-type]


ON, OFF = entry(), entry(enabled=False)
LIFECYCLE = ("disabled", "too many errors")

CASES: list[tuple[str, OwnedEntry, Any, dict[str, Any], str, str, str | None]] = [
    # name, entry, remote, facts, state, detail starts with, disabled_reason
    ("active", ON, remote(ON), {}, "active", "", None),
    ("paused as the file says", OFF, remote(OFF, "paused"), {}, "paused", "enabled: false", None),
    ("missing", ON, None, {}, "drifted", "missing remotely", None),
    ("changed", ON, remote(ON, schedule="0 1 * * *"), {}, "drifted", "changed remotely", None),
    ("paused remotely is drift", ON, remote(ON, "paused"), {}, "drifted", "changed remotely", None),
    ("backend error", ON, remote(ON, "error", "boom"), {}, "error", "boom", "boom"),
    (
        "error outranks drift",
        ON,
        remote(ON, "error", "account expired", enabled=False),
        {},
        "error",
        "account expired; changed remotely: enabled",
        "account expired",
    ),
    (
        "lifecycle",
        ON,
        remote(ON),
        {"lifecycle": LIFECYCLE},
        "error",
        "disabled: too",
        "too many errors",
    ),
    ("unreadable", ON, None, {"read_error": "401"}, "error", "cannot read the backend: 401", None),
    (
        "frozen",
        ON,
        remote(ON),
        {"frozen_by": "agents/a.yaml"},
        "frozen",
        "frozen: agents/a.yaml",
        None,
    ),
    (
        "frozen outranks paused",
        OFF,
        remote(OFF, "paused"),
        {"frozen_by": "agents/a.yaml"},
        "frozen",
        "frozen: agents/a.yaml failed to load at the last reconcile; the last applied spec "
        "stays until it loads; enabled: false in its file",
        None,
    ),
    ("drift outranks frozen", ON, None, {"frozen_by": "a.yaml"}, "drifted", "missing", None),
    (
        "unset secret",
        ON,
        remote(ON),
        {"secret_problem": "secret $HOOK is not set", "frozen_by": "a.yaml"},
        "error",
        "secret $HOOK is not set: its deliveries are refused (503); frozen",
        None,
    ),
]


@pytest.mark.parametrize(
    ("e", "have", "facts", "state", "detail", "reason"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_classify_ranks_the_facts_by_what_the_user_must_do(
    e: OwnedEntry,
    have: RemoteObject | None,
    facts: dict[str, Any],
    state: str,
    detail: str,
    reason: str | None,
) -> None:
    found = states.classify(e, have, **facts)
    assert (found.state, found.disabled_reason) == (state, reason)
    assert found.detail.startswith(detail), found.detail


def test_the_frozen_files_come_from_the_last_reconcile_record() -> None:
    record = '{"frozen_files": ["agents/a.yaml"], "load_errors": ["agents/a.yaml:1:1: x"]}'
    assert states.frozen_files(record) == ("agents/a.yaml",)
    assert states.frozen_files(None) == states.frozen_files("not json") == ()
    assert states.frozen_files('{"load_errors": []}') == ()  # written before frozen_files
    assert states.frozen_by(ON, ("agents/a.yaml",)) == "agents/a.yaml"
    assert states.frozen_by(ON, ("agents/b.yaml",)) is None


def hook(name: str, env: str, backend: str = "local", **spec: Any) -> OwnedEntry:
    body = {"webhook": {"secret_env": env, "scheme": "standard"}, **spec} if env else spec
    return owned_for(desired(f"a/triggers/{name}", body), f"rid-{name}", backend=backend)


def test_secret_problems_name_the_unset_or_unusable_variable_per_trigger() -> None:
    key = "whsec_" + base64.b64encode(b"0123456789abcdef").decode()
    entries = [hook("set", "SET"), hook("unset", "UNSET"), hook("bad", "BAD"), ON]
    env = {"SET": key, "BAD": "whsec_!!"}
    asked: list[bool] = []

    def composio_secret() -> bool:
        asked.append(True)
        return True

    found = states.secret_problems(entries, env, composio_secret=composio_secret)
    assert found == {
        "a/triggers/unset": "secret $UNSET is not set",
        "a/triggers/bad": "secret $BAD is not a Standard Webhooks secret (whsec_ followed by "
        "base64)",
    }
    assert asked == []  # no Composio trigger: the store is not read


def test_every_composio_trigger_carries_a_missing_composio_secret() -> None:
    mail = hook("mail", "", backend="composio", event="GMAIL_NEW_GMAIL_MESSAGE")
    found = states.secret_problems([mail, ON], {}, composio_secret=lambda: False)
    assert list(found) == ["a/triggers/mail"]
    assert "Composio webhook secret is not configured" in found["a/triggers/mail"]
    assert states.secret_problems([mail], {}, composio_secret=lambda: True) == {}
