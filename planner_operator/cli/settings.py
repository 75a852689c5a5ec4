"""`planner-operator settings`, and the start-up warning about unknown ``PLANNER_*`` variables.

A mistyped variable (``PLANNER_STATE_DIR`` with one R too many) is otherwise ignored without a
word, and the operator quietly uses the default: so ``serve``, ``run``, ``watch`` and
``reconcile`` say so on stderr, once per process, before they start.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping

from planner_operator.core import settings as settings_mod
from planner_operator.core import variables
from planner_operator.core.settings import Settings
from planner_operator.errors import PlannerError
from planner_operator.state import open as state_open

_warned: set[str] = set()


def warn_unknown(settings: Settings, env: Mapping[str, str] | None = None) -> list[str]:
    """Write one ``warning:`` line per unknown ``PLANNER_*`` variable not warned about yet.

    Names that applied webhook triggers use as ``secret_env`` are data, not typos, so the
    ledger's are known too. Returns the warnings written.
    """
    env = variables.environ(env)
    if not any(name.startswith(variables.PREFIX) for name in env):
        return []
    fresh = [
        m
        for m in variables.unknown(env, also_known=_secret_env_names(settings))
        if m not in _warned
    ]
    for message in fresh:
        _warned.add(message)
        sys.stderr.write(f"warning: {message}\n")
    return fresh


def _secret_env_names(settings: Settings) -> set[str]:
    if not state_open.exists(settings, "ledger"):
        return set()
    try:
        with state_open.ledger(settings) as ledger:
            entries = ledger.entries(include_retired=False)
    except PlannerError:
        return set()  # the command itself will report an unusable ledger
    names = set()
    for entry in entries:
        webhook = entry.spec.get("webhook")
        if isinstance(webhook, Mapping) and webhook.get("secret_env"):
            names.add(str(webhook["secret_env"]))
    return names


def show(*, markdown: bool, env: Mapping[str, str] | None = None) -> int:
    """Every variable and what this process sees for it; exit 1 when any value is bad."""
    if markdown:
        sys.stdout.write(settings_mod.markdown())
        return 0
    env = variables.environ(env)
    width = max(len(v.name) for v in variables.ALL)
    bad = 0
    for var in variables.ALL:
        raw = env.get(var.name)
        try:
            var.read(env)
        except PlannerError as exc:
            shown = f"error: {exc}"
            bad += 1
        else:
            if raw is None or (var.empty_is_unset and not raw.strip()):
                text = var.default_text.replace("`", "")
                shown = "unset" if text == "—" else f"default {text}"
            else:
                shown = "<set, hidden>" if var.secret else repr(raw.strip())
        sys.stdout.write(f"{var.name:<{width}}  {shown}\n")
    for message in variables.unknown(env):
        sys.stdout.write(f"warning: {message}\n")
    return 1 if bad else 0
