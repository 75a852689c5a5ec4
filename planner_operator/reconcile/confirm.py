"""A destructive change planned from a work tree is applied only when a later read plans it too.

A settled read (``source.read_worktree_settled``) catches a file that is being written while it
is read. It cannot catch a writer that pauses longer than the settle time between two parts of
a file (a slow copy, a sync tool, an editor writing a temp file in pieces): both reads see the
same cut file, which may load, and the plan deletes whatever the missing lines held. Restoring
the file then re-creates those resources with new remote ids, so what was attached to the old
ones (Composio trigger history, Inngest run history) is lost.

So before a plan from the work tree is approved or applied, its deletes and replaces must
survive a second look: wait the settle time, read and plan again, and keep the new plan only if
every destructive change in it was in the previous one too. A change that appears only in the
last of :data:`ROUNDS` plans is held (``blocked``), and the next change event plans it again.
Only deletes and replaces wait: creates and updates are undone by the next read of the file.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from planner_operator.core import clock as clock_mod
from planner_operator.reconcile.plan import Op, Plan

DESTRUCTIVE = (Op.DELETE, Op.REPLACE)
ROUNDS = 3
HELD = (
    "held: planned from the work tree while agent files were changing; applied only when a "
    "later read plans it too"
)


def destructive(plan: Plan) -> frozenset[tuple[Op, str]]:
    """The deletes and replaces the plan would carry out: (op, key)."""
    return frozenset((c.op, c.key) for c in plan.changes if c.actionable and c.op in DESTRUCTIVE)


def confirmed(
    plan: Plan,
    replan: Callable[[], Plan],
    *,
    settle: float,
    clock: clock_mod.Clock = clock_mod.SYSTEM,
    rounds: int = ROUNDS,
) -> Plan:
    """``plan``, or a later one, whose destructive changes were each planned twice, at least
    ``settle`` seconds apart; destructive changes that were not are held."""
    seen, previous = destructive(plan), frozenset[tuple[Op, str]]()
    for _ in range(rounds):
        if not seen:
            return plan
        clock.sleep(settle)
        plan = replan()
        now = destructive(plan)
        if now <= seen:
            return plan
        seen, previous = now, seen
    return hold(plan, previous)


def hold(plan: Plan, confirmed_changes: frozenset[tuple[Op, str]]) -> Plan:
    """``plan`` with every destructive change not in ``confirmed_changes`` blocked."""
    changes = tuple(
        replace(c, blocked=HELD)
        if c.actionable and c.op in DESTRUCTIVE and (c.op, c.key) not in confirmed_changes
        else c
        for c in plan.changes
    )
    if changes == plan.changes:
        return plan
    return replace(plan, changes=changes, refusals=(*plan.refusals, HELD))
