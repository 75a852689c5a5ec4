"""Event triggers as Composio trigger instances: the trigger backend for production.

Composio is hosted only, so this talks to it through the official ``composio`` SDK (tests point
the same SDK at a fake of the API; the SDK plumbing is in ``composio_sdk.py``). What shapes it:

* **Identity is Composio's upsert.** Upserting the same slug, owner and config returns the same
  instance (re-enabled), so ``create`` is idempotent and a crash or lost answer is repaired by
  doing it again, never by a duplicate. The config cannot change in place: a new config is a new
  instance, which the planner shows as a replace. A write that timed out may have landed, so the
  next attempt first looks for what it may have made (``UnknownOutcome`` from the transport).
  The flip side: two keys with one slug, owner and config would share one instance, so
  ``preflight`` refuses that, and ``delete`` refuses to remove an instance a desired trigger
  still resolves to (a renamed trigger gets its old instance back).
* **What is observed.** An instance reports ``event``, ``config`` and ``enabled`` (its state) and
  no key (the ledger maps keys). Not the account or user: Composio fills in whichever of the two
  the config left out, which would read as a change on every plan. The API says when an instance
  was disabled, never why, so a disabled instance whose connected account is not ACTIVE is
  ``error`` with the account's status (``sdk.to_remote``), and is not re-enabled until the
  account is usable again (``update``; ``preflight`` stops its file first).
* **Scope.** Listing asks only for the connected accounts and user ids named in the config (told
  by ``preflight``) or used by an earlier create (kept in the state db, so an owned instance whose
  account left the config is still seen). Other instances of the project are not ours to list.
* ``webhook:`` triggers are not Composio's: ``backends.select`` routes them to the embedded
  backend's table beside this one (``WebhookRouting``), so this module never sees them.
"""

from __future__ import annotations

import builtins
import contextlib
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from planner_operator.backends import ratelimit
from planner_operator.backends.base import (
    BackendInfo,
    Page,
    RemoteObject,
    RemoteState,
    SubscriptionState,
    TriggerBackend,
)
from planner_operator.backends.composio import checks as composio_checks
from planner_operator.backends.composio import sdk as composio_sdk
from planner_operator.backends.composio import subscription as composio_webhooks
from planner_operator.backends.composio.sdk import (
    ComposioConfig,
    fixed_changes,
    item_field,
    observed,
    to_remote,
)
from planner_operator.config.desired import DesiredResource
from planner_operator.core import canonical, specs
from planner_operator.core import clock as clock_mod
from planner_operator.core.closing import Closing
from planner_operator.core.settings import Settings
from planner_operator.errors import (
    ConfigError,
    Conflict,
    NotFound,
    PermanentError,
    PlannerError,
    SourceError,
    UnknownOutcome,
)
from planner_operator.state import open as state_open
from planner_operator.state import secrets as secrets_mod
from planner_operator.state import sql

NAME = composio_sdk.NAME
COMPONENT = "composio_backend"
_SCOPE = (
    """
    CREATE TABLE composio_scope (
        field TEXT NOT NULL,
        value TEXT NOT NULL,
        PRIMARY KEY (field, value)
    );
    """,
    """
    CREATE TABLE composio_subscription (id TEXT PRIMARY KEY, url TEXT NOT NULL);
    """,
)
# The same table on both engines; on PostgreSQL every applier shares it.
MIGRATIONS = sql.Migrations(_SCOPE, _SCOPE)
OBSERVED = frozenset({"event", "config", "enabled"})
IDENTITY = composio_checks.IDENTITY  # what Composio dedupes an upsert on
OWNERS = (("connected_account", "connected_account_ids"), ("user_id", "user_ids"))
PAGE_MAX = 50  # the API's largest ``limit``
CHUNK = 50  # ids per filter, to keep URLs short
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TriggerType:
    slug: str
    toolkit: str
    config: Mapping[str, Any]
    payload: Mapping[str, Any]
    name: str = ""
    kind: str = ""  # "poll" or "webhook"
    description: str = ""

    @classmethod
    def of(cls, found: Any) -> TriggerType:
        """From ``GetV31TriggersTypesBySlugResponse`` or a ``GetV31TriggersTypesItems``."""
        kind = getattr(found, "type", "")
        return cls(
            slug=str(found.slug),
            toolkit=str(getattr(getattr(found, "toolkit", None), "slug", "") or ""),
            config=dict(found.config or {}),
            payload=dict(found.payload or {}),
            name=str(getattr(found, "name", "") or ""),
            kind=str(getattr(kind, "value", kind) or ""),
            description=str(getattr(found, "description", "") or "").strip(),
        )


class ComposioTriggerBackend(Closing):
    """Trigger instances in Composio."""

    def __init__(
        self,
        client: Any,
        *,
        state_db: Path | str | sql.Database,
        config: ComposioConfig,
        webhooks: composio_webhooks.WebhookSettings | None = None,
        limiter: ratelimit.RateLimiter | None = None,
    ) -> None:
        self._client = client
        self._clock = limiter.clock if limiter is not None else clock_mod.SYSTEM
        self._config = config
        self._webhooks = webhooks
        self._secret_store: secrets_mod.Secrets | None = None
        self.limiter = limiter
        self._db: sql.Database = (
            sql.SqliteDatabase(state_db) if isinstance(state_db, str | Path) else state_db
        )
        try:
            self._db.migrate(COMPONENT, MIGRATIONS)
        except BaseException:
            self.close()
            raise
        self._types: dict[str, TriggerType | None] = {}
        self._toolkit_slugs: dict[str, builtins.list[str]] = {}
        # Per backend, i.e. per run (reconcile and status open one each): accounts expire.
        self._accounts: dict[str, composio_sdk.Account | None] = {}
        self._users: dict[tuple[str, str], bool] = {}  # (user, toolkit) -> an ACTIVE connection
        self._wanted: set[tuple[str, str]] = set()  # (field, value) named in the config
        self._desired: builtins.list[DesiredResource] | None = None  # known after preflight
        self._composio_wanted: bool | None = None  # set by preflight
        self._unsure: set[str] = set()  # identities and ids whose last write had no answer

    @property
    def info(self) -> BackendInfo:
        budget = self._config.budget
        extra = {"budget": f"{budget.limit}/min ({budget.share:.0%} of {budget.per_minute}/min)"}
        return BackendInfo(NAME, "trigger", self._config.base_url, extra)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._client.client.close()
        with contextlib.suppress(AttributeError):
            self._db.close()
        store = getattr(self, "_secret_store", None)
        if store is not None:
            store.close()

    def _sdk(self, what: str) -> contextlib.AbstractContextManager[None]:
        return composio_sdk.sdk_errors(what, api_key=self._config.api_key, clock=self._clock)

    # -- reading ---------------------------------------------------------------------------

    def list(self, *, cursor: str | None = None, limit: int = 100) -> Page:
        """Instances per chunk of accounts, then of users.

        The cursor is ``<query number>:<Composio's cursor>``.
        """
        if limit < 1:
            raise ValueError(f"limit must be at least 1, got {limit}")
        number, _, inner = (cursor or "0:").partition(":")
        queries, accounts = self._queries()
        position = int(number)
        items: builtins.list[RemoteObject] = []
        if position < len(queries):
            owner, values = queries[position]
            page = self._active({owner: values}, cursor=inner or None)
            for item in page.items:  # listed already under its account: skip
                account_id = str(item_field(item, "connected_account_id") or "")
                if owner == "user_ids" and account_id in accounts:
                    continue
                disabled = bool(item_field(item, "disabled_at"))
                account = self._account(account_id) if disabled and account_id else None
                items.append(to_remote(item, account))
            if page.next_cursor:
                return Page(tuple(items), f"{position}:{page.next_cursor}")
            if position + 1 < len(queries):
                return Page(tuple(items), f"{position + 1}:")
        return Page(tuple(items), None)

    def _queries(self) -> tuple[builtins.list[tuple[str, builtins.list[str]]], set[str]]:
        rows = self._db.query("SELECT field, value FROM composio_scope")
        scope = {(str(f), str(v)) for f, v in rows} | self._wanted
        queries: builtins.list[tuple[str, builtins.list[str]]] = []
        for field_name, param in OWNERS:
            values = sorted(v for f, v in scope if f == field_name)
            queries += [(param, values[i : i + CHUNK]) for i in range(0, len(values), CHUNK)]
        return queries, {v for f, v in scope if f == "connected_account"}

    def _active(
        self,
        owners: Mapping[str, Sequence[str]],
        *,
        trigger_ids: Sequence[str] = (),
        trigger_names: Sequence[str] = (),
        cursor: str | None = None,
    ) -> Any:
        """One page of ``GET /trigger_instances/active``, disabled ones included."""
        query: dict[str, Any] = {"query_show_disabled_1": True, "limit": PAGE_MAX}
        for name, values in (
            ("query_connected_account_ids_1", owners.get("connected_account_ids")),
            ("user_ids", owners.get("user_ids")),
            ("query_trigger_ids_1", trigger_ids),
            ("query_trigger_names_1", trigger_names),
        ):
            if values:
                query[name] = builtins.list(values)
        if cursor:
            query["cursor"] = cursor
        with self._sdk("list Composio trigger instances"):
            return self._client.client.trigger_instances.list_active(**query)

    def _fetch(self, remote_id: str) -> Any | None:
        page = self._active({}, trigger_ids=[remote_id])
        return next((i for i in page.items if str(i.id) == remote_id), None)

    def _find(self, spec: Mapping[str, Any]) -> RemoteObject | None:
        """The instance an earlier create that got no answer may have made."""
        owners = {param: [str(spec[f])] for f, param in OWNERS if spec.get(f)}
        cursor = None
        while True:
            page = self._active(owners, trigger_names=[spec["event"]], cursor=cursor)
            for item in page.items:
                if not fixed_changes(item, spec):
                    return to_remote(item)
            if not page.next_cursor:
                return None
            cursor = page.next_cursor

    # -- writing ---------------------------------------------------------------------------

    def create(self, key: str, spec: Mapping[str, Any]) -> RemoteObject:
        """Upsert: the same slug, owner and config give back the same instance."""
        identity = canonical.spec_hash(canonical.subset(spec, IDENTITY))
        enabled = specs.enabled(spec)
        if identity in self._unsure:
            found = self._find(spec)
            self._unsure.discard(identity)
            if found is not None:
                return self._set_enabled(found, enabled)
        self._remember(spec)  # before the write, so a lost answer cannot hide the instance
        owner = {
            "connected_account_id": spec.get("connected_account"),
            "user_id": spec.get("user_id"),
        }
        try:
            with self._sdk(f"create the Composio trigger of {key}"):
                made = self._client.client.trigger_instances.upsert(
                    spec["event"],
                    body_trigger_config_1=dict(spec.get("config") or {}),
                    toolkit_versions="latest",
                    **{k: v for k, v in owner.items() if v},
                )
        except UnknownOutcome:
            self._unsure.add(identity)
            raise
        obj = RemoteObject(str(made.trigger_id), "trigger", observed(spec, True))
        return self._set_enabled(obj, enabled)

    def update(self, remote_id: str, key: str, spec: Mapping[str, Any]) -> RemoteObject:
        """Only enabling and disabling happen in place; what Composio fixes is a Conflict.

        A disabled instance is re-enabled only while its connected account is usable: Composio
        disabled it because the account expired (or was revoked), and enabling it again would
        only have it disabled again, every reconcile.
        """
        item = self._fetch(remote_id)
        if item is None:
            raise NotFound(f"trigger instance {remote_id} does not exist", backend=NAME)
        changed = fixed_changes(item, spec)
        if changed:
            raise Conflict(
                f"trigger {remote_id}: {', '.join(changed)} cannot change in place; create a "
                "new trigger and delete this one (a replace)",
                backend=NAME,
            )
        enable = specs.enabled(spec)
        account_id = str(item_field(item, "connected_account_id") or "")
        disabled = bool(item_field(item, "disabled_at"))
        account = self._account(account_id) if disabled and account_id else None
        current = to_remote(item, account)
        if enable and current.state != "active" and account is not None and not account.usable:
            raise PermanentError(
                f"not re-enabling trigger {remote_id} of {key}: {account.problem}, then "
                "reconcile again",
                backend=NAME,
            )
        return self._set_enabled(current, enable)

    def delete(self, remote_id: str) -> None:
        """Delete the instance, refusing (``Conflict``) when a desired trigger resolves to it.

        Composio keeps one instance per slug, owner and config, so a renamed trigger's create
        returns the old key's instance, and the ledger (one row per remote id) has already moved
        it to the new key; deleting "the old one" would delete the new key's trigger. The refusal
        fails that one item and leaves the instance and the new ledger row as they are.
        """
        if remote_id in self._unsure or self._desired:
            self._unsure.discard(remote_id)  # an earlier delete had no answer: did it land?
            item = self._fetch(remote_id)
            if item is None:
                raise NotFound(f"trigger instance {remote_id} is already gone", backend=NAME)
            user = next(
                (r for r in self._desired or () if not fixed_changes(item, r.spec)),
                None,
            )
            if user is not None:
                raise Conflict(
                    f"kept trigger instance {remote_id}: `{user.key}` ({user.source}:{user.line}) "
                    "has the same trigger type, account and config, so Composio gave it this "
                    "instance and the ledger now maps it there (a rename); nothing to delete",
                    backend=NAME,
                )
        try:
            with self._sdk(f"delete Composio trigger {remote_id}"):
                self._client.triggers.delete(remote_id)
        except UnknownOutcome:
            self._unsure.add(remote_id)
            raise

    def _set_enabled(self, obj: RemoteObject, enabled: bool) -> RemoteObject:
        if (obj.state == "active") == enabled:
            return obj
        verb = "enable" if enabled else "disable"
        with self._sdk(f"{verb} Composio trigger {obj.remote_id}"):
            getattr(self._client.triggers, verb)(obj.remote_id)
        state: RemoteState = "active" if enabled else "disabled"
        return replace(obj, spec={**obj.spec, "enabled": enabled}, state=state, reason=None)

    def _remember(self, spec: Mapping[str, Any]) -> None:
        with self._db.transaction() as tx:
            for field_name, _ in OWNERS:
                if spec.get(field_name):
                    tx.execute(
                        "INSERT INTO composio_scope (field, value) VALUES (?, ?) "
                        "ON CONFLICT (field, value) DO NOTHING",
                        (field_name, str(spec[field_name])),
                    )

    # -- hooks -----------------------------------------------------------------------------

    def preflight(self, resources: Sequence[DesiredResource]) -> builtins.list[ConfigError]:
        """Check each trigger against its Composio type before anything is written."""
        mine = list(resources)
        self._desired = mine
        self._wanted = {(f, str(r.spec[f])) for r in mine for f, _ in OWNERS if r.spec.get(f)}
        errors = composio_checks.shared_instances(mine)
        lookups = composio_checks.Lookups(self._type, self._account, self._user_has, self._slugs)
        for resource in mine:
            errors += composio_checks.check(resource, lookups)
        failed = {e.file for e in errors}  # those files freeze: no write for them, not even here
        self._composio_wanted = any(r.source not in failed for r in mine)
        return errors

    # -- the webhook subscription (see subscription.py) -------------------------------------------

    def subscription(self) -> SubscriptionState | None:
        """The project's webhook subscription, read for the plan; None when no trigger here
        needs it (preflight saw no Composio trigger, or every file declaring one failed)."""
        wanted = self._composio_wanted
        if wanted is None:  # no preflight (``status``): wanted once any trigger was created here
            wanted = bool(self._db.query("SELECT 1 FROM composio_scope LIMIT 1"))
        if not wanted or self._webhooks is None:
            return None
        with self._sdk("read the Composio webhook subscription"):
            return composio_webhooks.observe(
                self._client.client.webhook_subscriptions,
                self._webhooks,
                self._secrets(),
                backend=NAME,
                last_set=self._last_subscription(),
            )

    def apply_subscription(self, planned: SubscriptionState) -> builtins.list[str]:
        """Make the change the plan showed for ``planned``; returns what still stops deliveries."""
        if self._webhooks is None:
            return []
        try:
            with self._sdk("Composio webhook subscription"):
                done = composio_webhooks.apply(
                    self._client.client.webhook_subscriptions,
                    self._webhooks,
                    self._secrets(),
                    planned,
                )
        except PlannerError as exc:
            return [str(exc)]
        if done.wrote is not None and done.wrote != planned.remote:
            with self._db.transaction() as tx:  # what this operator wrote: its own if moved
                tx.execute("DELETE FROM composio_subscription")
                tx.execute(
                    "INSERT INTO composio_subscription (id, url) VALUES (?, ?)",
                    (done.wrote.id, done.wrote.url),
                )
        for action in done.actions:
            log.info("%s", action)
        return builtins.list(done.problems)

    def rotate_webhook_secret(
        self, *, grace: float = composio_webhooks.DEFAULT_GRACE
    ) -> tuple[str, str]:
        """Rotate the subscription's signing secret; returns its id and where it is stored."""
        store = self._secrets()
        with self._sdk("rotate the Composio webhook secret"):
            sub = composio_webhooks.rotate_secret(
                self._client.client.webhook_subscriptions, store, grace=grace
            )
        return sub, store.where

    def _secrets(self) -> secrets_mod.SecretStore:
        if self._webhooks is None:
            raise SourceError("no webhook settings: open the backend with from_env()")
        if self._secret_store is None:
            self._secret_store = self._webhooks.open_store(self._clock)
        return self._secret_store

    def _last_subscription(self) -> tuple[str, str] | None:
        rows = self._db.query("SELECT id, url FROM composio_subscription")
        return (str(rows[0][0]), str(rows[0][1])) if rows else None

    def _type(self, slug: str) -> TriggerType | None:
        """The trigger type, fetched once per run; None when Composio does not know the slug."""
        if slug not in self._types:
            try:
                with self._sdk(f"read Composio trigger type {slug}"):
                    found = self._client.triggers.get_type(slug)
            except PermanentError as exc:
                if not isinstance(exc, NotFound) and exc.status != 400:
                    raise
                self._types[slug] = None
            else:
                self._types[slug] = TriggerType.of(found)
        return self._types[slug]

    def trigger_types(self, toolkit: str | None = None) -> builtins.list[TriggerType]:
        """Every trigger type Composio offers (of ``toolkit``), all pages."""
        query: dict[str, Any] = {"limit": PAGE_MAX, "toolkit_versions": "latest"}
        if toolkit:
            query["toolkit_slugs"] = [toolkit]
        out: builtins.list[TriggerType] = []
        cursor: str | None = None
        while True:
            with self._sdk(f"list Composio trigger types{f' of {toolkit}' if toolkit else ''}"):
                page = self._client.client.triggers_types.list(
                    **query, **({"cursor": cursor} if cursor else {})
                )
            out += [TriggerType.of(item) for item in page.items]
            cursor = page.next_cursor
            if not cursor or not page.items:
                return out

    def _slugs(self, toolkit: str) -> builtins.list[str]:
        """The toolkit's trigger type slugs, once per backend (for did-you-mean hints)."""
        if toolkit not in self._toolkit_slugs:
            self._toolkit_slugs[toolkit] = [t.slug for t in self.trigger_types(toolkit)]
        return self._toolkit_slugs[toolkit]

    def _account(self, account: str) -> composio_sdk.Account | None:
        """The connected account (status, toolkit), once per run; None when it does not exist."""
        if account not in self._accounts:
            try:
                with self._sdk(f"read Composio connected account {account}"):
                    found = self._client.client.connected_accounts.retrieve(account)
            except NotFound:
                self._accounts[account] = None
            else:
                self._accounts[account] = composio_sdk.Account.of(found)
        return self._accounts[account]

    def _user_has(self, user: str, toolkit: str) -> bool:
        """Whether ``user`` has an ACTIVE ``toolkit`` connection (an upsert by user needs one)."""
        if (user, toolkit) not in self._users:
            with self._sdk(f"list the Composio connections of user {user}"):
                page = self._client.client.connected_accounts.list(
                    user_ids=[user], toolkit_slugs=[toolkit], statuses=["ACTIVE"], limit=1
                )
            self._users[(user, toolkit)] = bool(getattr(page, "items", None))
        return self._users[(user, toolkit)]


def from_env(
    settings: Settings, env: Mapping[str, str], *, clock: clock_mod.Clock = clock_mod.SYSTEM
) -> ComposioTriggerBackend:
    """The backend as ``reconcile`` opens it: key, URL and budget from the environment.

    ``clock`` drives the request budget (a ``ScaledClock`` lets a benchmark run minutes of
    budget in seconds).
    """
    config = ComposioConfig.from_env(env)
    hooks = composio_webhooks.WebhookSettings.from_env(settings, env)
    limiter = ratelimit.RateLimiter.for_budget(config.budget, clock=clock)
    client = composio_sdk.open_client(config, limiter)
    return ComposioTriggerBackend(
        client,
        state_db=state_open.backend_state(settings, COMPONENT),
        config=config,
        webhooks=hooks,
        limiter=limiter,
    )


# mypy checks the class against the Protocol here, not only where a caller happens to use it.
_conforms: type[TriggerBackend] = ComposioTriggerBackend
