"""Canary values for every secret the product reads, so a leak into output is detectable.

Each value is fake but well-formed (webhook secrets are ``whsec_`` + base64, signing keys are
``signkey-test-`` + hex) and contains nothing a test would print for another reason, so finding
one in captured output means a secret leaked. ``tests/support/canary_guard.py`` puts the
:data:`SESSION` values into ``os.environ`` for the whole test run and fails any test whose
captured output or failure report contains any :func:`watched` value.

Two groups, because some secrets also *switch behaviour* when set:

* :data:`SESSION` changes nothing but the secret itself: set for every test and subprocess.
* :data:`CONFIGURED` selects a cloud backend (``COMPOSIO_API_KEY``, ``INNGEST_SIGNING_KEY``
  would take every test off the embedded default): never set globally; tests that configure a
  cloud use these values (the fake servers do).
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping


def plain(name: str) -> str:
    return f"canary-{name}-7f3a"


def whsec(name: str) -> str:
    """A Standard Webhooks secret whose key bytes are the plain canary."""
    return "whsec_" + base64.b64encode(plain(name).encode()).decode()


def signing_key(hex_word: str) -> str:
    """An Inngest-shaped signing key (``signkey-<env>-<hex>``) with a recognisable hex body."""
    return "signkey-test-" + hex_word * (64 // len(hex_word))


COMPOSIO_API_KEY = plain("composio-api-key")
INNGEST_SIGNING_KEY = signing_key("ca0a7f3a")
INNGEST_SIGNING_KEY_FALLBACK = signing_key("fa11bac7")
COMPOSIO_WEBHOOK_SECRET = whsec("composio-webhook-secret")
DEPLOY_WEBHOOK_SECRET = whsec("deploy-webhook-secret")

SESSION: Mapping[str, str] = {
    "COMPOSIO_WEBHOOK_SECRET": COMPOSIO_WEBHOOK_SECRET,
    "INNGEST_EVENT_KEY": plain("inngest-event-key"),
    "INNGEST_SIGNING_KEY_FALLBACK": INNGEST_SIGNING_KEY_FALLBACK,
    "PLANNER_API_TOKEN": plain("planner-api-token"),
    "PLANNER_PLATFORM_TOKEN": plain("platform-token"),
    "PLANNER_MASTRA_TOKEN": plain("mastra-token"),
    "PLANNER_GIT_WEBHOOK_SECRET": plain("git-webhook-secret"),
    # alone (without PLANNER_FORGE_REPO) it switches nothing on
    "PLANNER_FORGE_TOKEN": plain("forge-token"),
    # secret_env names of the webhook triggers in agents/*.yaml and the schema's example
    "DEPLOY_WEBHOOK_SECRET": DEPLOY_WEBHOOK_SECRET,
    "CAREERS_WEBHOOK_SECRET": whsec("careers-webhook-secret"),
}

DATABASE_PASSWORD = plain("database-password")
DATABASE_URL = f"postgresql://planner:{DATABASE_PASSWORD}@127.0.0.1:1/planner"

CONFIGURED: Mapping[str, str] = {
    "COMPOSIO_API_KEY": COMPOSIO_API_KEY,
    "PLANNER_DATABASE_URL": DATABASE_URL,  # port 1: nothing listens, so connecting fails
    "INNGEST_SIGNING_KEY": INNGEST_SIGNING_KEY,
}

ALL: Mapping[str, str] = {**SESSION, **CONFIGURED}


def watched() -> dict[str, str]:
    """Every string whose appearance is a leak, labelled by the variable it came from.

    Besides each value: the key bytes inside a ``whsec_`` secret, and the hashed form of a
    signing key (the SDK sends ``signkey-test-<sha256>`` as its bearer token, so the hash is a
    credential too).
    """
    out: dict[str, str] = {}
    for name, value in ALL.items():
        out[value] = name
        if value.startswith("whsec_"):
            out[base64.b64decode(value.removeprefix("whsec_")).decode()] = f"{name} (key bytes)"
        if value == DATABASE_URL:
            out[DATABASE_PASSWORD] = f"{name} (password)"
        if value.startswith("signkey-"):
            body = value.split("-", 2)[2]
            hashed = hashlib.sha256(bytes.fromhex(body)).hexdigest()
            out[hashed] = f"{name} (hashed)"
    return out


def leaks(text: str) -> list[str]:
    """Labels of the canaries in ``text`` (never the values: a report must not repeat them)."""
    return sorted({label for value, label in watched().items() if value in text})
