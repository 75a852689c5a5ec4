"""The delivery subscription in a plan: pure, shown, and never taken from another app silently."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime

from planner_operator.backends.base import Subscription, SubscriptionState
from planner_operator.reconcile import plan as plan_mod
from planner_operator.reconcile import render
from planner_operator.reconcile.subscription import plan_subscription

URL = "https://planner.example.com/webhooks/composio"
EVENTS = ("composio.trigger.message", "composio.trigger.disabled")
OURS = Subscription("ws_1", URL, "V3", EVENTS)
THEIRS = Subscription("ws_1", "https://crm.example.com/hooks", "V2", EVENTS[:1])
NOW = datetime(2026, 1, 1, tzinfo=UTC)


def state(remote: Subscription | None, **changes: object) -> SubscriptionState:
    base = SubscriptionState("composio", URL, "V3", EVENTS, remote, secret="stored")
    return replace(base, **changes)  # type: ignore[arg-type]


def plan_with(sub: SubscriptionState, **options: bool) -> plan_mod.Plan:
    return plan_mod.plan({}, [], [], options=plan_mod.PlanOptions(**options), subscription=sub)


def test_none_is_created_and_one_that_matches_is_left_alone() -> None:
    created = plan_subscription(state(None))
    assert (created.op, created.actionable) == ("create", True)
    assert [d[0] for d in created.diff] == ["url", "version", "events"]
    same = plan_subscription(state(OURS, owned=True))
    assert (same.op, same.actionable) == ("no-op", False)
    assert plan_subscription(state(replace(OURS, events=EVENTS[::-1]), owned=True)).op == "no-op"


def test_our_own_stale_subscription_is_corrected_in_place() -> None:
    stale = replace(OURS, version="V1", events=EVENTS[:1])
    change = plan_subscription(state(stale, owned=True))
    assert (change.op, change.blocked) == ("update", None)
    assert [d[0] for d in change.diff] == ["version", "events"]


def test_another_apps_subscription_is_shown_and_refused_without_the_flag() -> None:
    """The takeover that used to happen with no output: now a refusal in every format."""
    refused = plan_with(state(THEIRS))
    sub = refused.subscription
    assert sub is not None and sub.op == "update" and not sub.actionable
    assert "https://crm.example.com/hooks (V2)" in (sub.blocked or "")
    assert not refused.ok and not refused.has_changes
    assert any("--take-over-subscription" in r for r in refused.refusals)
    text = render.render(refused, "text", now=NOW)
    assert "No changes" not in text
    assert "url: https://crm.example.com/hooks -> " + URL in text
    assert "webhook subscription: blocked" in text
    markdown = render.render(refused, "markdown", now=NOW)
    assert "**Composio webhook subscription** `ws_1`" in markdown and "Blocked:" in markdown
    doc = json.loads(render.render(refused, "json", now=NOW))["subscription"]
    assert doc["blocked"] and doc["remote"]["url"] == THEIRS.url and doc["owned"] is False

    taken = plan_with(state(THEIRS), take_over_subscription=True)
    assert taken.ok and taken.has_changes and taken.subscription is not None
    assert "takes it over" in taken.subscription.notes
    assert "Composio webhook subscription: update." in render.render(taken, "text", now=NOW)


def test_secret_states_are_notes_or_problems_never_a_rotation() -> None:
    fetch = plan_subscription(state(OURS, owned=True, secret="fetch"))
    assert (fetch.op, fetch.reason) == ("update", "store the signing secret")
    missing = state(OURS, owned=True, secret="missing", problems=("run rotate-secret",))
    change = plan_subscription(missing)
    assert change.op == "no-op" and change.problems == ("run rotate-secret",)
    assert "problem: run rotate-secret" in render.render(plan_with(missing), "text", now=NOW)


def test_without_a_public_url_nothing_is_planned_and_the_problem_is_shown() -> None:
    no_url = state(None, url=None, problems=("PLANNER_PUBLIC_URL is not set",))
    change = plan_subscription(no_url)
    assert change.op == "no-op" and not change.actionable
    assert "PLANNER_PUBLIC_URL is not set" in render.render(plan_with(no_url), "text", now=NOW)


def test_a_plan_without_a_subscription_renders_as_before() -> None:
    empty = plan_mod.plan({}, [], [])
    assert empty.subscription is None
    assert json.loads(render.render(empty, "json", now=NOW))["subscription"] is None
    assert "webhook subscription" not in render.render(empty, "text", now=NOW)
