"""The project's Composio webhook subscription, and the secret that signs its deliveries.

Composio delivers every trigger event of a project to one subscription URL. The operator owns
that subscription: ``reconcile`` makes sure it points at ``$PLANNER_PUBLIC_URL/webhooks/composio``
with the V3 payload and the three event types the runtime handles (a trigger fired, Composio
disabled a trigger, a connected account expired), because a subscription left on V1, or missing
``composio.trigger.disabled``, fails silently: events stop and nobody is told why.

Composio returns the signing secret only when the subscription is created or its secret rotated,
so it is written, once, to ``<state dir>/composio-webhook-secret`` (mode 0600, replaced
atomically) for ``serve`` to read; ``COMPOSIO_WEBHOOK_SECRET`` overrides the file for deployments
that inject secrets through the environment. It never appears in output, logs or error messages.

This module holds no SDK code: it is given the SDK's ``webhooks.subscriptions`` resource, and the
backend translates SDK errors around the calls (see ``backends/composio.py``).
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from planner_operator.core import variables
from planner_operator.core.settings import Settings
from planner_operator.errors import PlannerError, StateError

EVENTS = (
    "composio.trigger.message",
    "composio.trigger.disabled",
    "composio.connected_account.expired",
)
VERSION = "V3"
PATH = "/webhooks/composio"
ENV_SECRET = variables.COMPOSIO_WEBHOOK_SECRET.name
ENV_PUBLIC_URL = variables.PUBLIC_URL.name


@dataclass(frozen=True)
class SecretStore:
    """Where the signing secret lives: the environment if set, else a private file."""

    path: Path
    env_secret: str | None = field(default=None, repr=False)

    @property
    def from_env(self) -> bool:
        return bool(self.env_secret)

    @property
    def where(self) -> str:
        return f"${ENV_SECRET}" if self.from_env else str(self.path)

    def load(self) -> str | None:
        if self.env_secret:
            return self.env_secret
        try:
            mode = self.path.stat().st_mode
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StateError(f"cannot read the Composio webhook secret file: {exc}") from exc
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise StateError(
                f"{self.path} is readable by other users (mode {stat.S_IMODE(mode):o}): run "
                f"`chmod 600 {self.path}`, then `planner-operator composio rotate-secret`, since "
                "the secret may have leaked"
            )
        return self.path.read_text(encoding="utf-8").strip() or None

    def save(self, secret: str) -> None:
        """Write the file atomically and private from its first byte (no chmod-after race)."""
        if not secret:
            raise PlannerError("Composio returned an empty webhook secret; not storing it")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                out.write(secret + "\n")
                out.flush()
                os.fsync(out.fileno())
            os.chmod(tmp, 0o600)  # O_CREAT's mode is masked by umask; be exact
            os.replace(tmp, self.path)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise StateError(f"cannot store the Composio webhook secret: {exc}") from exc


@dataclass(frozen=True)
class WebhookSettings:
    public_url: str | None
    store: SecretStore

    @property
    def url(self) -> str | None:
        return self.public_url.rstrip("/") + PATH if self.public_url else None

    @classmethod
    def from_env(cls, settings: Settings, env: Mapping[str, str]) -> WebhookSettings:
        public = variables.PUBLIC_URL.read(env)
        secret = variables.COMPOSIO_WEBHOOK_SECRET.read(env)
        return cls(public, SecretStore(settings.composio_secret_file, secret))


def load_secret(settings: Settings, env: Mapping[str, str]) -> str | None:
    """The signing secret for verifying deliveries (``serve``), or None when none is stored."""
    return WebhookSettings.from_env(settings, env).store.load()


@dataclass(frozen=True)
class Ensured:
    actions: tuple[str, ...] = ()  # what was changed, for logs
    problems: tuple[str, ...] = ()  # what still stops deliveries from verifying


def ensure_subscription(subscriptions: Any, hooks: WebhookSettings) -> Ensured:
    """Create or correct the subscription; obtain a secret if none is stored locally."""
    url = hooks.url
    if url is None:
        return Ensured(
            problems=(
                f"{ENV_PUBLIC_URL} is not set, so Composio has nowhere to deliver trigger events: "
                f"set it to this operator's public base URL (deliveries go to <url>{PATH})",
            )
        )
    actions: list[str] = []
    current = _first(subscriptions.list())
    if current is None:
        made = subscriptions.set(webhook_url=url, enabled_events=list(EVENTS), version=VERSION)
        actions.append(f"created Composio webhook subscription {made['id']} for {url}")
        if made.get("secret"):
            hooks.store.save(str(made["secret"]))
            return Ensured(tuple(actions), _override_problem(hooks.store))
        current_id = str(made["id"])
    else:
        current_id = str(current.id)
        version = getattr(current.version, "value", current.version)
        events = set(getattr(current, "enabled_events", None) or ())
        if (current.webhook_url, version, events) != (url, VERSION, set(EVENTS)):
            subscriptions.update(
                current_id, webhook_url=url, enabled_events=list(EVENTS), version=VERSION
            )
            actions.append(
                f"updated Composio webhook subscription {current_id}: {current.webhook_url} "
                f"{version} {sorted(events)} -> {url} {VERSION} {sorted(EVENTS)}"
            )
        if hooks.store.load() is not None:
            return Ensured(tuple(actions))
    # Composio shows the secret only at create and rotate: with none stored here, rotating is
    # the only way to get one the receiver can verify with.
    rotated = subscriptions.rotate_secret(current_id)
    hooks.store.save(str(rotated.secret))
    actions.append(f"rotated the webhook secret of {current_id}: none was stored locally")
    return Ensured(tuple(actions))


def rotate_secret(subscriptions: Any, store: SecretStore) -> str:
    """Rotate the subscription's secret and store the new one; returns the subscription id."""
    current = _first(subscriptions.list())
    if current is None:
        raise PlannerError(
            "this Composio project has no webhook subscription yet: run `planner-operator "
            f"reconcile` with {ENV_PUBLIC_URL} set to create it (its secret is stored then)"
        )
    rotated = subscriptions.rotate_secret(str(current.id))
    store.save(str(rotated.secret))
    return str(current.id)


def _override_problem(store: SecretStore) -> tuple[str, ...]:
    if not store.from_env:
        return ()
    return (
        f"a new webhook secret was stored in {store.path}, but ${ENV_SECRET} is set and takes "
        "precedence: update it from that file, or unset it, or deliveries will fail to verify",
    )


def _first(page: Any) -> Any | None:
    items = getattr(page, "items", None) or []
    return items[0] if items else None
