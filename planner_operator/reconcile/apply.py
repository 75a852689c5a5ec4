"""Carry out a plan, one item at a time, recording each success in the ledger at once.

Why item by item: a failure half way must leave an exact record of what was done (Terraform's
partial state), so the next run re-plans from the truth and converges instead of resuming a
stale plan. Backend writes are idempotent (see backends.base), so an item cut off between the
remote write and the ledger write is simply done again on the next run, without a duplicate.

A replace is create-new, swap the ledger (new owns the key, old is kept as "retired"), delete
old, forget old: a crash at any point leaves every remote object owned by a ledger row.

Every create (and the create half of a replace) is announced first as a write-ahead intent in
the ledger, committed before the remote write and cleared in the transaction that records the
result; a definite failure (``PermanentError``) clears it too, an unknown outcome keeps it. So an
object whose create was cut off is still known to be ours after its key leaves the config, and
the planner deletes it then. An intent the plan already saw (an earlier run was cut off) is
cleared at the end, once every change tied to it is done: the adopting create took over the
object it expected, every leftover was deleted; one no change is tied to goes when all succeed.
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TypeVar

from planner_operator.backends.base import RemoteBackend
from planner_operator.core import clock as clock_mod
from planner_operator.core.keys import Kind
from planner_operator.core.records import Intent, OwnedEntry
from planner_operator.errors import NotFound, PermanentError, PlannerError, RetryableError
from planner_operator.reconcile.plan import Change, Op, Plan
from planner_operator.state.ledger import Ledger


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded retries for transient backend errors; honours a server's Retry-After."""

    attempts: int = 4
    base_delay: float = 0.5
    max_delay: float = 30.0

    def delay(self, attempt: int, error: RetryableError) -> float:
        if error.retry_after is not None:
            return min(max(float(error.retry_after), 0.0), self.max_delay)
        backoff = min(self.base_delay * 2.0**attempt, self.max_delay)
        return backoff * (0.5 + random.random() / 2)  # jitter: never in lockstep with others


@dataclass(frozen=True)
class ItemResult:
    change: Change
    ok: bool
    error: str | None = None
    remote_id: str | None = None


@dataclass(frozen=True)
class ApplyResult:
    items: tuple[ItemResult, ...]
    problems: tuple[str, ...] = ()  # failures of the apply as a whole (e.g. a sync that failed)

    @property
    def failed(self) -> tuple[ItemResult, ...]:
        return tuple(i for i in self.items if not i.ok)

    @property
    def ok(self) -> bool:
        return not self.failed and not self.problems

    @property
    def succeeded(self) -> tuple[ItemResult, ...]:
        return tuple(i for i in self.items if i.ok)


_T = TypeVar("_T")
Progress = Callable[[int, int, ItemResult], None]


class Applier:
    def __init__(
        self,
        backends: Mapping[Kind, RemoteBackend],
        ledger: Ledger,
        *,
        revision: str,
        retry: RetryPolicy = RetryPolicy(),
        clock: clock_mod.Clock | None = None,
    ) -> None:
        """``clock`` (default: the ledger's) stamps intents and ledger rows and waits out
        retry delays, so a test clock makes a Retry-After cost nothing and shows what was
        waited (``ManualClock.slept``)."""
        self._backends = backends
        self._ledger = ledger
        self._revision = revision
        self._retry = retry
        self._clock = clock or ledger.clock

    def apply(
        self,
        plan: Plan,
        progress: Progress | None = None,
        *,
        stop: Callable[[], bool] | None = None,
    ) -> ApplyResult:
        """Apply every actionable change; ``stop`` is checked between items (graceful shutdown:
        the current item always finishes, the rest is left for the next run to re-plan)."""
        todo = plan.actionable
        results: list[ItemResult] = []
        for index, change in enumerate(todo, start=1):
            if stop is not None and stop():
                return ApplyResult(tuple(results), ("stopped before all changes were applied",))
            result = self._apply_one(change)
            results.append(result)
            if progress is not None:
                progress(index, len(todo), result)
        self._settle(plan, results)
        return ApplyResult(tuple(results))

    def _apply_one(self, change: Change) -> ItemResult:
        try:
            remote_id = self._dispatch(change)
        except PlannerError as exc:
            return ItemResult(change, False, str(exc))
        return ItemResult(change, True, None, remote_id)

    def _dispatch(self, change: Change) -> str | None:
        backend = self._backends[change.kind]
        if change.op is Op.CREATE:
            return self._create(change, backend)
        if change.op is Op.UPDATE:
            assert change.owned is not None and change.desired is not None
            owned = change.owned
            desired = change.desired
            made = self._call(lambda: backend.update(owned.remote_id, change.key, desired.spec))
            self._ledger.record(self._entry(change, backend, made.remote_id))
            return made.remote_id
        if change.op is Op.REPLACE:
            return self._replace(change, backend)
        if change.op is Op.DELETE:
            if change.owned is None:  # left by an interrupted create: no ledger row
                return self._delete_leftover(change, backend)
            self._delete(change.owned, backend)
            return change.owned.remote_id
        raise PlannerError(f"cannot apply a {change.op} change")  # pragma: no cover

    def _create(self, change: Change, backend: RemoteBackend) -> str:
        made, intent = self._announced_create(change, backend)
        self._ledger.record(self._entry(change, backend, made), intent=intent)
        return made

    def _replace(self, change: Change, backend: RemoteBackend) -> str:
        assert change.owned is not None
        old = change.owned
        made, intent = self._announced_create(change, backend)
        if made == old.remote_id:  # the backend could do it in place after all
            self._ledger.record(self._entry(change, backend, made), intent=intent)
            return made
        self._ledger.swap(change.key, self._entry(change, backend, made), intent=intent)
        self._delete(old, backend)
        return made

    def _announced_create(
        self, change: Change, backend: RemoteBackend
    ) -> tuple[str, Intent | None]:
        """Write the intent, then create; returns the remote id and the intent the ledger row
        that follows must clear (None when it predates this create: see :meth:`_settle`)."""
        assert change.desired is not None
        desired = change.desired
        announced = Intent(
            key=change.key,
            kind=change.kind,
            backend=backend.info.name,
            spec_hash=desired.spec_hash,
            spec=desired.spec,
            revision=self._revision,
            created_at=self._clock.now(),
        )
        intent, fresh = self._ledger.write_intent(announced)
        try:
            made = self._call(lambda: backend.create(change.key, desired.spec))
        except PermanentError:  # definitely not created (retryable ones may have landed)
            if fresh:
                self._ledger.clear_intent(intent)
            raise
        return made.remote_id, intent if fresh else None

    def _delete_leftover(self, change: Change, backend: RemoteBackend) -> str:
        """Delete an object an interrupted create left (no ledger row: nothing to forget)."""
        if change.remote is None or change.intent is None:  # pragma: no cover - plan's law
            raise PlannerError(f"{change.key}: refusing to delete an object nothing claims")
        remote_id = change.remote.remote_id
        if self._ledger.owner_of(backend=backend.info.name, remote_id=remote_id) is None:
            with contextlib.suppress(NotFound):  # taken over earlier in this apply, or gone
                self._call(lambda: backend.delete(remote_id))
        return remote_id

    def _settle(self, plan: Plan, results: list[ItemResult]) -> None:
        """Clear the intents the plan saw whose every tied change is done (module docstring)."""
        done = {id(r.change): r for r in results}
        clean = all(r.ok for r in results)
        for intent in plan.intents:
            tied = [c for c in plan.changes if c.intent == intent]
            if (tied or clean) and all(_settled(c, done.get(id(c))) for c in tied):
                self._ledger.clear_intent(intent)

    def _delete(self, entry: OwnedEntry, backend: RemoteBackend) -> None:
        owner = self._ledger.owner_of(backend=entry.backend, remote_id=entry.remote_id)
        if owner is not None and owner != entry.key:
            # Taken over earlier in this apply by another key (a rename onto the same remote
            # object: Composio keeps one instance per type, account and config). Nothing to do.
            return
        with contextlib.suppress(NotFound):  # already gone: only the ledger row remains
            self._call(lambda: backend.delete(entry.remote_id))
        self._ledger.forget(backend=entry.backend, remote_id=entry.remote_id)

    def _entry(self, change: Change, backend: RemoteBackend, remote_id: str) -> OwnedEntry:
        assert change.desired is not None
        desired = change.desired
        return OwnedEntry(
            key=change.key,
            kind=change.kind,
            backend=backend.info.name,
            remote_id=remote_id,
            spec_hash=desired.spec_hash,
            spec=desired.spec,
            revision=self._revision,
            source=desired.source,
            applied_at=self._clock.now(),
            protect=desired.protect,
        )

    def _call(self, fn: Callable[[], _T]) -> _T:
        """Run an idempotent backend call, retrying transient failures (incl. unknown outcome)."""
        attempt = 0
        while True:
            try:
                return fn()
            except RetryableError as exc:
                attempt += 1
                if attempt >= self._retry.attempts:
                    raise
                self._clock.sleep(self._retry.delay(attempt, exc))


def _settled(change: Change, result: ItemResult | None) -> bool:
    """Applied, and (for a take-over) the create returned the object the plan expected."""
    if result is None or not result.ok:
        return False
    return change.takes_over is None or result.remote_id == change.takes_over
