"""Resource identity: what a job or trigger is called everywhere (ledger, backends, API, CLI).

A key is ``<agent>/jobs/<name>`` or ``<agent>/triggers/<name>``: stable across edits, so a
changed schedule is an update, not a delete and a create. Every layer builds and splits keys
here, so no module re-states the format.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import Literal

from planner_operator.errors import NotFoundError

Kind = Literal["job", "trigger"]

_PLURAL: dict[Kind, str] = {"job": "jobs", "trigger": "triggers"}


def job_key(agent: str, name: str) -> str:
    return f"{agent}/jobs/{name}"


def trigger_key(agent: str, name: str) -> str:
    return f"{agent}/triggers/{name}"


def key_for(kind: Kind, agent: str, name: str) -> str:
    return f"{agent}/{_PLURAL[kind]}/{name}"


def split_key(key: str) -> tuple[str, Kind, str]:
    """``agent/jobs/name`` -> (agent, "job", name)."""
    agent, plural, name = key.split("/", 2)
    return agent, ("job" if plural == "jobs" else "trigger"), name


def resolve(text: str, known: Iterable[str], *, kind: Kind | None = None) -> str:
    """The key a person meant: ``agent/name`` or the full key, among the ``known`` keys.

    Every command names jobs and triggers the same way, so ``explain sales-agent/review``
    and ``run-now sales-agent/review`` agree. ``agent/name`` matches a job or a trigger of that
    name (``kind`` narrows it); a name that matches nothing gets the nearest known keys.
    Raises ``NotFoundError`` (exit 1 in the CLI), never returns an unknown key.
    """
    wanted = text.strip().strip("/")
    pool = sorted(k for k in set(known) if kind is None or split_key(k)[1] == kind)
    parts = wanted.split("/")
    if len(parts) == 3 and parts[1] in ("jobs", "triggers"):
        candidates = [wanted]
    elif len(parts) == 2:
        kinds: tuple[Kind, ...] = (kind,) if kind is not None else ("job", "trigger")
        candidates = [key_for(k, parts[0], parts[1]) for k in kinds]
    else:
        what = {"job": "AGENT/JOB", "trigger": "AGENT/TRIGGER", None: "AGENT/NAME"}[kind]
        raise NotFoundError(f"`{text}` is not a key: use {what} or the full key AGENT/jobs/NAME")
    found = [c for c in candidates if c in pool]
    if len(found) == 1:
        return found[0]
    if len(found) > 1:
        raise NotFoundError(f"`{text}` is both {' and '.join(found)}: give the full key")
    noun = {"job": "applied job", "trigger": "applied trigger", None: "applied job or trigger"}
    short = {f"{a}/{n}": k for k in pool for a, _, n in [split_key(k)]}
    near = difflib.get_close_matches(wanted, [*short, *pool], n=3, cutoff=0.6)
    suggestions = list(dict.fromkeys(short.get(n, n) for n in near))
    hint = (
        "did you mean " + " or ".join(f"`{s}`" for s in suggestions) + "?"
        if suggestions
        else "`planner-operator status` lists them"
    )
    raise NotFoundError(f"no {noun[kind]} `{text}`; {hint}")
