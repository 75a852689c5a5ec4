"""The operator secrets contract (the Composio webhook signing secret), on both engines.

Every ``serve`` replica verifies with the secret and ``composio rotate-secret`` writes it, so the
store must behave the same on the SQLite file and on the shared database: one current value, the
rotated-out one accepted for its grace window (clock injected), and the value never in a repr or
a message.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from planner_operator.backends.composio import subscription
from planner_operator.core.clock import ManualClock, epoch
from planner_operator.core.settings import Settings
from planner_operator.errors import PlannerError
from planner_operator.runtime import events
from planner_operator.server import signatures
from planner_operator.state import open as state_open
from tests.support import builders, canaries

OLD = canaries.COMPOSIO_WEBHOOK_SECRET
NEW = canaries.whsec("rotated-webhook-secret")


def test_a_rotation_keeps_the_old_value_for_the_grace_window(store: Settings) -> None:
    clock = ManualClock(datetime(2026, 1, 1, tzinfo=UTC))
    with state_open.secrets(store, clock=clock) as secrets:
        assert secrets.get("s") is None
        secrets.put("s", OLD)
        secrets.put("s", NEW, keep_previous_for=3600)
        found = secrets.get("s")
        assert found is not None and found.value == NEW
        now = epoch(clock)
        assert found.set_at == now
        assert found.accepted(now) == (NEW, OLD)
        assert found.accepted(now + 3599) == (NEW, OLD)
        assert found.accepted(now + 3600) == (NEW,)
        clock.advance(60)
        secrets.put("s", NEW)  # the same value again keeps the grace window as it was
        assert secrets.get("s") == found
        secrets.put("s", canaries.whsec("third"))  # no grace: the old one goes at once
        third = secrets.get("s")
        assert third is not None and third.accepted(epoch(clock)) == (canaries.whsec("third"),)
        with pytest.raises(PlannerError, match="empty") as err:
            secrets.put("s", "")
        assert OLD not in repr(found) and NEW not in repr(found) and NEW not in str(err.value)


def test_every_replica_sees_the_value_the_rotator_stored(store: Settings) -> None:
    clock = ManualClock(datetime(2026, 1, 1, tzinfo=UTC))
    with state_open.secrets(store, clock=clock) as rotator:
        rotator.put(subscription.SECRET_NAME, OLD)
        rotator.put(subscription.SECRET_NAME, NEW, keep_previous_for=subscription.DEFAULT_GRACE)
    # a serve replica, in its own process, reads through the same entry (env without the secret)
    assert subscription.accepted_secrets(store, {}, clock=clock) == (NEW, OLD)
    clock.advance(subscription.DEFAULT_GRACE)
    assert subscription.accepted_secrets(store, {}, clock=clock) == (NEW,)
    assert state_open.where(store, "secrets") == state_open.secrets(store).where


def test_a_missing_secret_says_to_run_rotate_secret(store: Settings) -> None:
    assert subscription.accepted_secrets(store, {}) == ()
    route = events.Route("a/triggers/t", "ti_1", "composio", builders.trigger_spec())
    [problem] = signatures.secret_problems([route], store, {}).values()
    assert "planner-operator composio rotate-secret" in problem  # the trigger's error, not serve's
    with state_open.secrets(store) as secrets:
        secrets.put(subscription.SECRET_NAME, NEW)
    assert signatures.secret_problems([route], store, {}) == {}  # stored now: verifies
