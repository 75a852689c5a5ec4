"""The project's Composio webhook subscription, and the secret that signs its deliveries.

Composio delivers every trigger event of a project to one subscription URL, with the V3 payload
and the three event types the runtime handles (a trigger fired, Composio disabled a trigger, a
connected account expired): a subscription left on V1, or without ``composio.trigger.disabled``,
fails silently. So the operator reads the subscription before planning (:func:`observe`), the
planner shows what would change, and apply makes that change (:func:`apply`). But a project has
one subscription and another app of the same project may own it: one that points elsewhere is
changed only when the plan says it may (``--take-over-subscription``), never silently.

The signing secret is never rotated by a reconcile: rotating it breaks every receiver that holds
the old one. It is stored in the operator's state (``state.secrets``, shared by every process),
or comes from ``COMPOSIO_WEBHOOK_SECRET`` in every process. It is stored when the subscription is
created, or when Composio's answer carries it (the generated types mark ``secret`` required on
reads; the docs say only create and rotate return it: both are handled). Without either, the plan
says to run ``planner-operator composio rotate-secret``, which keeps accepting the old secret for
a grace window (:data:`DEFAULT_GRACE`) so no delivery in flight is rejected. The secret never
appears in output, logs or error messages.

This module holds no SDK code: it is given the generated client's ``webhook_subscriptions``
resource (not the SDK's ``subscriptions.set``, which updates whatever subscription exists), and
the backend translates SDK errors around the calls.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from planner_operator.backends.base import SecretState, Subscription, SubscriptionState
from planner_operator.core import clock as clock_mod
from planner_operator.core import variables
from planner_operator.core.settings import Settings
from planner_operator.errors import PlannerError, SourceError, StateError
from planner_operator.state import open as state_open
from planner_operator.state import secrets as secrets_mod

EVENTS = (
    "composio.trigger.message",
    "composio.trigger.disabled",
    "composio.connected_account.expired",
)
VERSION = "V3"
PATH = "/webhooks/composio"
SECRET_NAME = "composio_webhook_secret"
DEFAULT_GRACE = 24 * 3600.0  # longer than Composio keeps retrying one delivery
ENV_SECRET = variables.COMPOSIO_WEBHOOK_SECRET.name
ENV_PUBLIC_URL = variables.PUBLIC_URL.name
ROTATE = "planner-operator composio rotate-secret"


@dataclass(frozen=True)
class WebhookSettings:
    public_url: str | None
    settings: Settings  # where the secret is stored (state.open.secrets)
    env_secret: str | None = field(default=None, repr=False)
    legacy_file: Path | None = None  # the 0600 file older versions wrote; imported once

    @property
    def url(self) -> str | None:
        return self.public_url.rstrip("/") + PATH if self.public_url else None

    @classmethod
    def from_env(cls, settings: Settings, env: Mapping[str, str]) -> WebhookSettings:
        public = variables.PUBLIC_URL.read(env)
        if public and not public.lower().startswith("https://"):
            raise SourceError(
                f"{ENV_PUBLIC_URL}={public!r}: Composio delivers webhooks to HTTPS URLs only; use "
                "the https:// address this operator is reachable at (a TLS proxy in front of "
                "`serve` will do)"
            )
        secret = variables.COMPOSIO_WEBHOOK_SECRET.read(env)
        return cls(public, settings, secret, settings.composio_secret_file)

    def open_store(self, clock: clock_mod.Clock = clock_mod.SYSTEM) -> secrets_mod.Secrets:
        store = state_open.secrets(self.settings, clock=clock)
        try:
            _import_legacy(store, self.legacy_file)
        except BaseException:
            store.close()
            raise
        return store


def accepted_secrets(
    settings: Settings, env: Mapping[str, str], *, clock: clock_mod.Clock = clock_mod.SYSTEM
) -> tuple[str, ...]:
    """The secrets a delivery may be signed with now (``serve``): current first, then the one a
    rotation replaced, within its grace window. Empty when none is configured."""
    hooks = WebhookSettings.from_env(settings, {**env, ENV_PUBLIC_URL: ""})
    if hooks.env_secret:
        return (hooks.env_secret,)
    if not state_open.exists(hooks.settings, "secrets") and not (
        hooks.legacy_file and hooks.legacy_file.exists()
    ):
        return ()  # nothing stored yet: do not create the store from a read
    with hooks.open_store(clock) as store:
        found = store.get(SECRET_NAME)
    return found.accepted(clock_mod.epoch(clock)) if found else ()


# -- plan: read the subscription as data --------------------------------------------------------


def observe(
    subscriptions: Any,
    hooks: WebhookSettings,
    store: secrets_mod.SecretStore,
    *,
    backend: str,
    last_set: tuple[str, str] | None,
) -> SubscriptionState:
    """The subscription as it is and should be, and where the secret stands. Reads only.

    ``last_set`` is the (id, url) this operator last wrote, so a subscription it made still
    counts as its own after ``PLANNER_PUBLIC_URL`` moved.
    """
    current = _first(subscriptions.list(limit=1))
    remote = None if current is None else _subscription(current)
    owned = remote is not None and (
        remote.url == hooks.url or (last_set is not None and last_set == (remote.id, remote.url))
    )
    offered = str(getattr(current, "secret", None) or "") if current is not None else ""
    secret, problems = _secret_state(hooks, store, offered, creating=remote is None)
    if hooks.url is None:
        problems = (
            f"{ENV_PUBLIC_URL} is not set, so Composio has nowhere to deliver trigger events: set "
            f"it to this operator's public https:// base URL (deliveries go to <url>{PATH})",
            *problems,
        )
    return SubscriptionState(
        backend, hooks.url, VERSION, EVENTS, remote, owned, secret, tuple(problems)
    )


def _secret_state(
    hooks: WebhookSettings, store: secrets_mod.SecretStore, offered: str, *, creating: bool
) -> tuple[SecretState, tuple[str, ...]]:
    if hooks.env_secret:
        if offered and not hmac.compare_digest(offered, hooks.env_secret):
            return "env", (
                f"${ENV_SECRET} is not the subscription's signing secret, so every delivery "
                f"fails verification: update it, or unset it to use the one stored in "
                f"{store.where}",
            )
        return "env", ()
    stored = store.get(SECRET_NAME)
    if offered and (stored is None or not hmac.compare_digest(offered, stored.value)):
        return "fetch", ()
    if stored is not None or creating:
        return "stored", ()
    return "missing", (
        "no Composio webhook signing secret is stored and Composio does not return the "
        f"current one, so `serve` cannot verify deliveries: run `{ROTATE}` (the old secret "
        f"stays accepted for 24 h), or set ${ENV_SECRET}",
    )


# -- apply: make the planned change ----------------------------------------------------------


@dataclass(frozen=True)
class Applied:
    actions: tuple[str, ...] = ()  # what was changed, for logs
    problems: tuple[str, ...] = ()  # what still stops deliveries from verifying
    wrote: Subscription | None = None  # the subscription as this apply left it


def apply(
    subscriptions: Any,
    hooks: WebhookSettings,
    store: secrets_mod.SecretStore,
    planned: SubscriptionState,
) -> Applied:
    """Create or correct the subscription as planned, and store the secret Composio returns.

    The subscription is read again first: if it changed since the plan (another app wrote it),
    nothing is written and the next plan shows the new state.
    """
    url = planned.url
    if url is None:  # nothing was planned; the plan's problems say why
        return Applied()
    current = _first(subscriptions.list(limit=1))
    now = None if current is None else _subscription(current)
    if now != planned.remote:
        return Applied(
            problems=(
                "the Composio webhook subscription changed since the plan was made; nothing was "
                "written to it: reconcile again to see the new plan",
            )
        )
    actions: list[str] = []
    if now is None:
        made = subscriptions.create(webhook_url=url, enabled_events=list(EVENTS), version=VERSION)
        wrote = _subscription(made)
        actions.append(f"created Composio webhook subscription {wrote.id} for {url}")
        secret = str(getattr(made, "secret", "") or "")
    elif not planned.matches:
        changed = subscriptions.update(
            now.id, webhook_url=url, enabled_events=list(EVENTS), version=VERSION
        )
        wrote = Subscription(now.id, url, VERSION, EVENTS)
        actions.append(
            f"updated Composio webhook subscription {now.id}: {describe(now)} -> {describe(wrote)}"
        )
        secret = str(getattr(changed, "secret", "") or getattr(current, "secret", "") or "")
    else:
        wrote = now
        secret = str(getattr(current, "secret", "") or "")
    problems = list(_keep_secret(hooks, store, secret, actions))
    missing = not secret and hooks.env_secret is None and store.get(SECRET_NAME) is None
    if missing and planned.secret != "missing":  # else the plan already says so
        problems.append(
            f"Composio returned no signing secret and none is stored: run `{ROTATE}`, or set "
            f"${ENV_SECRET}"
        )
    return Applied(tuple(actions), tuple(problems), wrote)


def _keep_secret(
    hooks: WebhookSettings, store: secrets_mod.SecretStore, secret: str, actions: list[str]
) -> tuple[str, ...]:
    if not secret:
        return ()
    if hooks.env_secret and hmac.compare_digest(secret, hooks.env_secret):
        return ()
    stored = _store(store, secret)
    if hooks.env_secret:
        return (
            f"Composio signs with a secret other than ${ENV_SECRET} (now stored in "
            f"{store.where}): update ${ENV_SECRET} from there, or unset it, or deliveries fail "
            "verification",
        )
    if stored:
        actions.append(f"stored the subscription's signing secret in {store.where}")
    return ()


def _store(store: secrets_mod.SecretStore, secret: str) -> bool:
    """Store ``secret`` as current unless it already is; whether anything changed."""
    found = store.get(SECRET_NAME)
    if found is not None and hmac.compare_digest(found.value, secret):
        return False
    store.put(SECRET_NAME, secret)
    return True


def rotate_secret(
    subscriptions: Any, store: secrets_mod.SecretStore, *, grace: float = DEFAULT_GRACE
) -> str:
    """Rotate the subscription's secret and store the new one, the old accepted for ``grace``
    seconds (deliveries signed before the rotation may still be retried); returns its id."""
    current = _first(subscriptions.list(limit=1))
    if current is None:
        raise PlannerError(
            "this Composio project has no webhook subscription yet: run `planner-operator "
            f"reconcile` with {ENV_PUBLIC_URL} set to create it (its secret is stored then)"
        )
    rotated = subscriptions.rotate_secret(str(current.id))
    secret = str(getattr(rotated, "secret", "") or "")
    if not secret:
        raise PlannerError("Composio returned an empty webhook secret; not storing it")
    store.put(SECRET_NAME, secret, keep_previous_for=grace)
    return str(current.id)


def describe(sub: Subscription) -> str:
    return f"{sub.url} {sub.version} [{', '.join(sorted(sub.events))}]"


def _subscription(item: Any) -> Subscription:
    version = getattr(item, "version", "")
    events = tuple(str(e) for e in (getattr(item, "enabled_events", None) or ()))
    return Subscription(
        str(item.id), str(item.webhook_url), str(getattr(version, "value", version)), events
    )


def _first(page: Any) -> Any | None:
    items = getattr(page, "items", None) or []
    return items[0] if items else None


def _import_legacy(store: secrets_mod.SecretStore, legacy: Path | None) -> None:
    """Move the secret of the 0600 file older versions wrote into the store, once."""
    if legacy is None or not legacy.exists() or store.get(SECRET_NAME) is not None:
        return
    try:
        mode = legacy.stat().st_mode
        value = legacy.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise StateError(f"cannot read the old Composio secret file {legacy}: {exc}") from exc
    secrets_mod.refuse_if_readable(legacy, mode)
    if value:
        store.put(SECRET_NAME, value)
