"""Whether a generic webhook trigger's signing secret is usable in a given environment.

An agent file names the variable (``webhook: {secret_env: DEPLOY_WEBHOOK_SECRET}``), never the
secret, and each process reads it from its own environment. So one answer serves every place
that must know: ``serve`` answers that trigger's deliveries 503 (and serves everything else),
the read model shows the trigger in ``error`` (status, dashboard, metrics, through
``read.states``), and ``validate`` and the plan warn before a merge applies a trigger that
cannot verify a single delivery. A missing secret is one trigger's problem, never the server's:
refusing to start would take every other job and trigger down with it, and would keep doing so
after the trigger left the file, because the check ran on the applied state before the watcher
could reconcile it away.

Pure: the caller passes the environment (``core.variables.environ()`` for the process's own).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from typing import Any

from planner_operator.core import specs, variables
from planner_operator.errors import PlannerError

STANDARD_PREFIX = "whsec_"
COMPOSIO_MISSING = (
    "the Composio webhook secret is not configured (run `planner-operator composio "
    f"rotate-secret` to store one, or set {variables.COMPOSIO_WEBHOOK_SECRET.name})"
)


def standard_key(secret: str) -> bytes:
    """Standard Webhooks' key: base64 after the optional ``whsec_`` prefix.

    Raises ``ValueError`` for a secret that does not decode, or decodes to too short a key.
    """
    encoded = secret.removeprefix(STANDARD_PREFIX).strip()
    try:
        key = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError("not a Standard Webhooks secret (whsec_ followed by base64)") from exc
    if len(key) < 16:
        raise ValueError("a Standard Webhooks secret must decode to at least 16 bytes")
    return key


def problem(webhook: specs.WebhookSpec, env: Mapping[str, str]) -> str | None:
    """Why deliveries to this webhook cannot be verified with ``env``; None when they can."""
    name = webhook.secret_env
    value = variables.dynamic_secret(env, name)
    if not value:
        return f"secret ${name} is not set"
    if webhook.scheme == "standard":
        try:
            standard_key(value)
        except ValueError as exc:
            return f"secret ${name} is {exc}"
    return None


def spec_problem(spec: Mapping[str, Any], env: Mapping[str, str]) -> str | None:
    """:func:`problem` for a stored trigger spec; None for jobs, Composio triggers and specs
    that do not parse (those are reported where they are read)."""
    hook = spec.get("webhook")
    if not isinstance(hook, Mapping):
        return None
    try:
        webhook = specs.WebhookSpec.from_dict(hook)
    except PlannerError:
        return None
    return problem(webhook, env)
