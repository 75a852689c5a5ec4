"""What a plan does to the vendor's delivery subscription: a pure function of what was read.

The subscription is not a resource of any agent file: a Composio project has one, and every
trigger's events go through it. Yet changing it is a change like any other, and a dangerous one
(pointing another app's subscription here takes its events away), so it is planned, shown by
every renderer and dry-run, and refused unless safe:

* none exists: create it (its secret is stored from the answer);
* it points here, or is the one this operator last wrote: correct version and events in place;
* it points somewhere else: another app of the project set it, so changing it is ``blocked``
  until ``--take-over-subscription``;
* the secret is only in Composio's answer: store it (a local write, no rotation); it is nowhere:
  a problem naming ``planner-operator composio rotate-secret``. Reconcile never rotates.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from planner_operator.backends.base import Subscription, SubscriptionState

SubscriptionOp = Literal["create", "update", "no-op"]
TAKE_OVER = "--take-over-subscription"


@dataclass(frozen=True)
class SubscriptionChange:
    op: SubscriptionOp
    state: SubscriptionState
    reason: str
    diff: tuple[tuple[str, str, str], ...] = ()  # (field, before, after)
    blocked: str | None = None
    notes: tuple[str, ...] = ()

    @property
    def actionable(self) -> bool:
        return self.op != "no-op" and self.blocked is None

    @property
    def problems(self) -> tuple[str, ...]:
        return self.state.problems


def plan_subscription(state: SubscriptionState, *, take_over: bool = False) -> SubscriptionChange:
    remote = state.remote
    if state.url is None:  # nothing to plan towards: the state's problems say why
        return SubscriptionChange("no-op", state, "not planned")
    if remote is None:
        return SubscriptionChange(
            "create",
            state,
            "no webhook subscription in this project",
            diff=_diff(None, state),
            notes=("the signing secret is stored from Composio's answer",),
        )
    notes: tuple[str, ...] = ()
    if state.secret == "fetch":
        notes = ("stores the signing secret Composio returns (none, or another, is stored here)",)
    if state.matches:
        if notes:
            return SubscriptionChange("update", state, "store the signing secret", notes=notes)
        return SubscriptionChange("no-op", state, "up to date")
    diff = _diff(remote, state)
    if state.owned:
        return SubscriptionChange(
            "update", state, "differs from this operator's", diff, None, notes
        )
    blocked = (
        f"points at {remote.url} ({remote.version}), set by another app of this Composio project: "
        f"pointing it here takes that app's events; pass {TAKE_OVER} if it is intended"
    )
    reason = "owned by another app of this project"
    if take_over:
        return SubscriptionChange("update", state, reason, diff, None, (*notes, "takes it over"))
    return SubscriptionChange("update", state, reason, diff, blocked, notes)


def _diff(
    remote: Subscription | None, state: SubscriptionState
) -> tuple[tuple[str, str, str], ...]:
    want = (str(state.url), state.version, ", ".join(sorted(state.events)))
    have = (
        (remote.url, remote.version, ", ".join(sorted(remote.events))) if remote else ("", "", "")
    )
    names = ("url", "version", "events")
    return tuple((n, b, a) for n, b, a in zip(names, have, want, strict=True) if a != b)
