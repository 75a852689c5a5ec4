"""One answer to "what state is this job or trigger in?", for every reader.

``planner-operator status``, the status API, the dashboard and ``/metrics`` all call
:func:`classify`, so the CLI and a page can never disagree about one resource. It is pure: the
callers gather the facts (the ledger row, the backend's object or why it could not be read,
Composio's lifecycle events from the inbox, the files that failed to load at the last
reconcile) and this module ranks them.

A resource can be several things at once (Composio disabled it *and* it was edited in the
dashboard; its file is broken *and* it is paused). The state is the highest of them, ranked by
what the user must do about it; the detail names every one, the deciding one first:

``error``
    It does not work, and reconciling alone will not fix it: Composio disabled the instance or
    the account expired (``disabled_reason`` is Composio's own words), the backend reports the
    object broken, the backend could not be read at all (nothing else is known), or the
    trigger's signing secret is not set where deliveries are verified (``secret $X is not
    set``: its endpoint answers 503). The user has to act outside git: reconnect the account,
    fix the credentials, set the variable.
``drifted``
    It works, but not as applied: missing remotely, or changed outside the operator. The next
    reconcile puts it back, so it ranks below error: a Composio-disabled instance is ``error``
    although its ``enabled`` also differs (re-enabling it does not reconnect an account).
``frozen``
    What runs is what was applied, but its agent file failed to load at the last reconcile, so
    edits to it are not being applied (and it will not be deleted) until the file loads.
    Ranked above paused: a paused job whose file is broken cannot be resumed from git.
``paused``
    Not firing, as intended (``enabled: false``), or disabled remotely with the spec agreeing.
``active``
    Firing as applied.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, get_args

from planner_operator.backends.base import RemoteObject
from planner_operator.core import specs, webhook_secrets
from planner_operator.core.records import OwnedEntry
from planner_operator.errors import PlannerError
from planner_operator.reconcile import plan

State = Literal["active", "paused", "frozen", "drifted", "error"]
STATES: tuple[State, ...] = get_args(State)
_RANK: dict[State, int] = {"error": 0, "drifted": 1, "frozen": 2, "paused": 3, "active": 4}


@dataclass(frozen=True)
class ResourceState:
    state: State
    detail: str  # why, every cause "; "-joined with the deciding one first; empty when active
    disabled_reason: str | None = None  # what Composio (or the backend) said when it stopped it


def classify(
    entry: OwnedEntry,
    remote: RemoteObject | None,
    *,
    read_error: str | None = None,
    lifecycle: tuple[str, str] | None = None,
    frozen_by: str | None = None,
    secret_problem: str | None = None,
) -> ResourceState:
    """The state of the owned resource ``entry``.

    ``remote`` is the backend's object for it (None: not there); ``read_error`` says the
    backend could not be read (``remote`` is then unknown, not missing); ``lifecycle`` is the
    (event, reason) of a Composio lifecycle webhook for it; ``frozen_by`` is the file that
    failed to load at the last reconcile, if it is this resource's; ``secret_problem`` says
    why its deliveries cannot be verified in the reader's environment
    (``core.webhook_secrets``, ``secret_problems``).
    """
    causes: list[tuple[State, str]] = []
    reason: str | None = None
    if lifecycle is not None:
        event, why = lifecycle
        causes.append(("error", f"{event}: {why}" if why else event))
        reason = why or event
    if secret_problem is not None:
        causes.append(("error", f"{secret_problem}: its deliveries are refused (503)"))
    if read_error is not None:
        causes.append(("error", f"cannot read the backend: {read_error}"))
    elif remote is None:
        causes.append(("drifted", "missing remotely: the next reconcile re-creates it"))
    else:
        if remote.state == "error":
            causes.append(("error", remote.reason or "in error remotely"))
        changed = plan.changed_remotely(entry, remote)
        if changed:
            causes.append(("drifted", "changed remotely: " + ", ".join(changed)))
        if remote.state in ("paused", "disabled"):
            off = not specs.enabled(entry.spec)
            why = remote.reason or ("enabled: false in its file" if off else "paused remotely")
            causes.append(("paused", why))
        if remote.state in ("error", "disabled"):
            reason = reason or remote.reason
    if frozen_by is not None:
        causes.append(
            (
                "frozen",
                f"frozen: {frozen_by} failed to load at the last reconcile; the last applied "
                "spec stays until it loads",
            )
        )
    if not causes:
        return ResourceState("active", "")
    causes.sort(key=lambda cause: _RANK[cause[0]])  # stable: the order above breaks ties
    detail = "; ".join(dict.fromkeys(text for _, text in causes))
    return ResourceState(causes[0][0], detail, reason)


def secret_problems(
    entries: Sequence[OwnedEntry], env: Mapping[str, str], *, composio_secret: Callable[[], bool]
) -> dict[str, str]:
    """Per trigger key, why deliveries to it cannot be verified with ``env`` (as ``serve``'s
    ``signatures.secret_problems`` decides from the same specs): a generic webhook's own
    ``secret_env``, or, for Composio triggers, no Composio webhook secret at all.
    ``composio_secret`` is asked once, and only when a Composio trigger is there."""
    out: dict[str, str] = {}
    composio = [e for e in entries if e.kind == "trigger" and e.backend == COMPOSIO]
    composio = [e for e in composio if not isinstance(e.spec.get("webhook"), Mapping)]
    if composio and not composio_secret():
        out.update({e.key: webhook_secrets.COMPOSIO_MISSING for e in composio})
    for entry in entries:
        if entry.kind == "trigger":
            found = webhook_secrets.spec_problem(entry.spec, env)
            if found is not None:
                out[entry.key] = found
    return out


COMPOSIO = "composio"


def frozen_files(last_reconcile: str | None) -> tuple[str, ...]:
    """The files that failed to load at the last reconcile, from its ledger record (the meta
    ``last_reconcile`` JSON; a record without them, unreadable, or none freezes nothing)."""
    try:
        record = json.loads(last_reconcile) if last_reconcile else None
    except ValueError:
        return ()
    files = record.get("frozen_files") if isinstance(record, dict) else None
    return tuple(str(f) for f in files) if isinstance(files, list) else ()


def frozen_by(entry: OwnedEntry, files: Sequence[str]) -> str | None:
    """The file of ``files`` that freezes ``entry`` (the planner's own rule), if any."""
    return plan.frozen_by(entry, files)


def read_failure(exc: BaseException) -> str:
    """What a failed backend read says on every row: our errors as worded, others with their
    type (a vendor SDK's or HTTP library's), so the CLI, the API and the pages word it alike."""
    return str(exc) if isinstance(exc, PlannerError) else f"{type(exc).__name__}: {exc}"
