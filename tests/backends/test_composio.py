"""The Composio backend beyond the contract: preflight, scope, lost answers, errors, telemetry.

Everything runs the real ``composio`` SDK against the fake API (tests/fakes/composio_server.py);
the contract itself is in test_contract.py.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import httpx
import pytest

from planner_operator.backends import select
from planner_operator.backends.base import list_all
from planner_operator.backends.composio import backend as composio
from planner_operator.backends.composio import sdk as composio_sdk
from planner_operator.config.desired import DesiredResource
from planner_operator.core import canonical
from planner_operator.core.settings import Settings
from planner_operator.errors import (
    AuthError,
    Conflict,
    NotFound,
    PermanentError,
    SourceError,
    UnknownOutcome,
)
from tests.fakes.composio_server import FakeComposio, Fault

FAST = {"PLANNER_COMPOSIO_BUDGET_PER_MIN": "1000000", "PLANNER_COMPOSIO_TIMEOUT": "0.5"}


@pytest.fixture
def fake() -> Iterator[FakeComposio]:
    with FakeComposio(budget_per_minute=1_000_000) as server:
        yield server


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings.resolve(state_dir=tmp_path / "state", env={})


@pytest.fixture
def backend(fake: FakeComposio, settings: Settings) -> Iterator[composio.ComposioTriggerBackend]:
    with composio.from_env(settings, fake.env(**FAST)) as made:
        yield made


def gmail(**changes: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "toolkit": "gmail",
        "event": "GMAIL_NEW_GMAIL_MESSAGE",
        "connected_account": "ca_gmail_jobsearch",
        "config": {"labelIds": "INBOX", "interval": 5},
        "enabled": True,
        "action": {"chat": {"template": "Mail from {sender}: {subject}", "variables": {}}},
    }
    spec.update(changes)
    return spec


def resource(spec: Mapping[str, Any], name: str = "mail", line: int = 7) -> DesiredResource:
    return DesiredResource(
        key=f"agent/triggers/{name}",
        kind="trigger",
        agent="agent",
        name=name,
        source="agents/agent.yaml",
        line=line,
        spec=spec,
        spec_hash=canonical.spec_hash(spec),
    )


# -- preflight -------------------------------------------------------------------------------


def test_preflight_accepts_valid_triggers(backend: composio.ComposioTriggerBackend) -> None:
    workflow = {"workflow": {"id": "w", "input": {"h": "{payload.headers}", "a": "{to}"}}}
    chat = {"chat": {"template": "{who}: {subject}", "variables": {"who": "me"}}}
    triggers = [
        resource(gmail()),
        resource(gmail(action=workflow, config={"query": "is:unread"}), "raw"),
        resource(gmail(action=chat, config={}), "vars"),
    ]
    assert backend.preflight(triggers) == []


def test_preflight_reports_each_problem_with_file_and_line(
    backend: composio.ComposioTriggerBackend, fake: FakeComposio
) -> None:
    bad = [
        resource(gmail(event="GMAIL_NOPE"), "slug", 3),
        resource(gmail(toolkit="slack", config={}), "kit", 10),
        resource(gmail(connected_account="ca_missing"), "acct", 20),
        resource(gmail(config={"labelIds": 5, "labelId": "X"}), "cfg", 30),
        resource(
            gmail(action={"chat": {"template": "{subjekt} {user}"}}, config={"query": "q"}),
            "tpl",
            40,
        ),
        resource(
            {
                **gmail(event="HUBSPOT_CONTACT_CREATED_TRIGGER", toolkit="hubspot", config={}),
                "connected_account": "ca_hubspot_sales",
                "action": {"workflow": {"id": "qualify", "input": {"id": "{objectId}"}}},
            },
            "req",
            50,
        ),
    ]
    errors = [str(e) for e in backend.preflight(bad)]
    expected = [
        "agents/agent.yaml:3:1: event: unknown Composio trigger type `GMAIL_NOPE`",
        "agents/agent.yaml:10:1: toolkit: `GMAIL_NEW_GMAIL_MESSAGE` belongs to toolkit `gmail`",
        "agents/agent.yaml:20:1: connected_account: connected account `ca_missing` does not exist",
        "agents/agent.yaml:30:1: config.labelIds: invalid config: 5 is not of type 'string'",
        "agents/agent.yaml:30:1: config.labelId: `labelId` is not a config option",
        "agents/agent.yaml:40:1: action.chat.template: placeholder `{subjekt}` is not a field",
        "agents/agent.yaml:40:1: action.chat.template: placeholder `{user}` is not a field",
        "agents/agent.yaml:50:1: config: invalid config: 'app_id' is a required property",
    ]
    assert len(errors) == len(expected), errors
    for error, start in zip(errors, expected, strict=True):
        assert error.startswith(start), error
    assert "did you mean `labelIds`?" in errors[4]
    assert "did you mean `subject`?" in errors[5]
    assert fake.count("POST") == 0  # nothing written


def test_preflight_reads_each_type_and_account_once_per_run(
    backend: composio.ComposioTriggerBackend, fake: FakeComposio
) -> None:
    many = [resource(gmail(config={"labelIds": f"L{n}"}), f"m{n}") for n in range(20)]
    assert backend.preflight(many) == []
    assert backend.preflight(many) == []
    assert fake.count("GET", "triggers_types") == 1
    assert fake.count("GET", "connected_accounts") == 1


def test_preflight_checks_the_account_status_toolkit_and_a_users_connection(
    backend: composio.ComposioTriggerBackend, fake: FakeComposio
) -> None:
    """Each would pass the upsert (or fail only then) and leave a trigger that never fires."""
    fake.expire_account("ca_123")
    by_user = gmail(user_id="nobody")
    del by_user["connected_account"]
    has_one = gmail(user_id="user-1", config={"labelIds": "X"})
    del has_one["connected_account"]
    errors = [
        str(e)
        for e in backend.preflight(
            [
                resource(gmail(connected_account="ca_123"), "expired", 3),
                resource(gmail(connected_account="ca_slack_eng", config={}), "slack", 9),
                resource(by_user, "user", 15),
                resource(has_one, "fine", 21),
            ]
        )
    ]
    assert [e.split(" (")[0] for e in errors] == [
        "agents/agent.yaml:3:1: connected_account: connected account `ca_123` is EXPIRED, not "
        "ACTIVE: Composio disables its triggers",
        "agents/agent.yaml:9:1: connected_account: connected account `ca_slack_eng` is a `slack` "
        "connection, but `GMAIL_NEW_GMAIL_MESSAGE` is a `gmail` trigger",
        "agents/agent.yaml:15:1: user_id: user `nobody` has no ACTIVE `gmail` connection in this "
        "Composio project",
    ], errors
    assert "reconnect the account in Composio" in errors[0]


def test_an_unknown_slug_gets_suggestions_from_the_toolkits_trigger_types(
    backend: composio.ComposioTriggerBackend, fake: FakeComposio
) -> None:
    [typo] = backend.preflight([resource(gmail(event="GMAIL_NEW_GMAIL_MESAGE"), "typo")])
    assert "unknown Composio trigger type `GMAIL_NEW_GMAIL_MESAGE`" in str(typo)
    assert "did you mean `GMAIL_NEW_GMAIL_MESSAGE`?" in str(typo)
    slack = gmail(event="SLACK_CHANNEL_MESSAGE_RECEIVED", toolkit="slack", config={})
    [renamed] = backend.preflight([resource({**slack, "connected_account": "ca_slack_eng"})])
    assert "(`slack` trigger types: SLACK_RECEIVE_MESSAGE)" in str(renamed)  # none close
    assert fake.count("GET", "triggers_types$") == 2  # one list per toolkit asked about


def test_preflight_refuses_two_triggers_on_one_instance(
    backend: composio.ComposioTriggerBackend,
) -> None:
    [error] = backend.preflight([resource(gmail(), "a", 5), resource(gmail(), "b", 9)])
    assert str(error).startswith("agents/agent.yaml:9:1: config: same Composio trigger instance")
    assert "`agent/triggers/a` (agents/agent.yaml:5)" in str(error)


def test_placeholders_follow_the_payload_schema() -> None:
    from planner_operator.backends.composio.checks import payload_has
    from tests.fakes.composio_server import load_types

    types, _ = load_types()
    calendar = types["GOOGLECALENDAR_GOOGLE_CALENDAR_EVENT_SYNC_TRIGGER"]["payload"]
    gmail_payload = types["GMAIL_NEW_GMAIL_MESSAGE"]["payload"]
    assert payload_has(calendar, ["attendees", "0", "email"])  # items: {type: object}, open
    assert payload_has(gmail_payload, ["payload", "headers", "0", "name"])  # an open object
    assert payload_has(gmail_payload, ["attachment_list", "2"])
    assert not payload_has(gmail_payload, ["subject", "length"])  # a string has no fields
    assert not payload_has(calendar, ["summary", "x"])


# -- listing ---------------------------------------------------------------------------------


def test_lists_only_the_accounts_in_scope_and_reports_composio_disabling(
    backend: composio.ComposioTriggerBackend, fake: FakeComposio
) -> None:
    fake.add_instance("SLACK_RECEIVE_MESSAGE", "ca_slack_eng", {})  # someone else's account
    assert list(list_all(backend)) == []  # nothing in scope yet: not even listed
    mine = backend.create("agent/triggers/mail", gmail())
    theirs = fake.add_instance("GMAIL_NEW_GMAIL_MESSAGE", "ca_gmail_jobsearch", {"query": "x"})
    fake.disable_by_composio(mine.remote_id)  # e.g. a failing poller: the API says only when
    listed = {o.remote_id: o for o in list_all(backend)}
    assert set(listed) == {mine.remote_id, theirs}
    gone = listed[mine.remote_id]
    assert (gone.state, gone.reason, gone.key) == ("disabled", None, None)
    assert dict(gone.spec) == {**composio_sdk.observed(gmail(), True), "enabled": False}

    again = backend.update(mine.remote_id, "agent/triggers/mail", gmail())  # reconcile re-enables
    assert (again.state, again.reason) == ("active", None)
    assert fake.instances()[0]["disabled_at"] is None


def test_an_instance_of_an_expired_account_is_an_error_and_not_re_enabled(
    fake: FakeComposio, settings: Settings
) -> None:
    """Composio disables the instances of an expired connection: re-enabling them would loop."""
    with composio.from_env(settings, fake.env(**FAST)) as first:
        mine = first.create("agent/triggers/mail", gmail())
    fake.expire_account("ca_gmail_jobsearch")
    with composio.from_env(settings, fake.env(**FAST)) as later:
        [seen] = list_all(later)
        assert (seen.state, seen.reason) == (
            "error",
            "connected account ca_gmail_jobsearch is EXPIRED: reconnect it in Composio",
        )
        patches = fake.count("PATCH")
        with pytest.raises(PermanentError, match=r"not re-enabling trigger .* is EXPIRED"):
            later.update(mine.remote_id, "agent/triggers/mail", gmail())
        assert fake.count("PATCH") == patches  # no enable call
        paused = later.update(mine.remote_id, "agent/triggers/mail", gmail(enabled=False))
        assert paused.state == "error" and fake.count("PATCH") == patches  # already disabled
    fake.reconnect("ca_gmail_jobsearch")
    with composio.from_env(settings, fake.env(**FAST)) as fixed:
        back = fixed.update(mine.remote_id, "agent/triggers/mail", gmail())
        assert back.state == "active" and fake.instances()[0]["disabled_at"] is None


def test_scope_remembers_accounts_that_left_the_config(
    fake: FakeComposio, settings: Settings
) -> None:
    with composio.from_env(settings, fake.env(**FAST)) as first:
        made = first.create("agent/triggers/mail", gmail())
    with composio.from_env(settings, fake.env(**FAST)) as later:
        later.preflight([resource(gmail(connected_account="ca_123"), "other")])
        assert made.remote_id in {o.remote_id for o in list_all(later)}


def test_user_scoped_instances_are_listed_once(backend: composio.ComposioTriggerBackend) -> None:
    spec = gmail(connected_account=None, user_id="user-1")
    del spec["connected_account"]
    by_user = backend.create("agent/triggers/by-user", spec)
    by_account = backend.create("agent/triggers/by-account", gmail(config={}))
    listed = [o.remote_id for o in list_all(backend, page_size=1)]
    assert sorted(listed) == sorted({by_user.remote_id, by_account.remote_id})


def test_webhook_triggers_live_in_the_local_table(fake: FakeComposio, settings: Settings) -> None:
    hook = {"webhook": {"secret_env": "X_SECRET", "scheme": "github"}, "enabled": True}
    with select.composio_triggers(settings, fake.env(**FAST)) as backend:
        made = backend.create("agent/triggers/hook", {**hook, "action": {"workflow": {"id": "w"}}})
        assert made.remote_id.startswith("trg_") and made.key == "agent/triggers/hook"
        assert [o.remote_id for o in list_all(backend)] == [made.remote_id]
        assert list(list_all(backend.events)) == []  # Composio never sees it
        backend.update(made.remote_id, made.key or "", {**made.spec, "enabled": False})
        backend.delete(made.remote_id)
        assert list(list_all(backend)) == [] and fake.count("POST") == 0


def test_routing_lists_composio_instances_then_webhook_rows_across_pages(
    fake: FakeComposio, settings: Settings
) -> None:
    hook = {"webhook": {"secret_env": "X_SECRET"}, "action": {"workflow": {"id": "w"}}}
    with select.composio_triggers(settings, fake.env(**FAST)) as backend:
        backend.preflight([resource(gmail(config={"n": n}), f"m{n}") for n in range(3)])
        made = [backend.create(f"agent/triggers/m{n}", gmail(config={"n": n})) for n in range(3)]
        made += [backend.create(f"agent/triggers/h{n}", hook) for n in range(3)]
        pages, cursor = [], None
        while True:
            page = backend.list(cursor=cursor, limit=2)
            pages.append([o.remote_id for o in page.items])
            cursor = page.next_cursor
            if cursor is None:
                break
        listed = [remote_id for page in pages for remote_id in page]
        assert sorted(listed) == sorted(o.remote_id for o in made)
        assert len(listed) == len(set(listed))


def test_routing_preflight_gives_composio_only_its_own_triggers(
    fake: FakeComposio, settings: Settings
) -> None:
    hook = resource({"webhook": {"secret_env": "S"}, "action": {"workflow": {"id": "w"}}}, "h")
    with select.composio_triggers(settings, fake.env(**FAST)) as backend:
        # Composio's own preflight cannot read a webhook trigger (it has no event slug)
        with pytest.raises(ValueError, match="non-empty value for `slug`"):
            backend.events.preflight([hook])
        assert backend.preflight([resource(gmail()), hook]) == []


# -- lost answers, retries, renames ------------------------------------------------------------


def test_a_create_that_timed_out_is_looked_up_before_it_is_retried(
    backend: composio.ComposioTriggerBackend, fake: FakeComposio
) -> None:
    fake.inject(Fault("slow", "/upsert$", delay=1.5))
    with pytest.raises(UnknownOutcome):
        backend.create("agent/triggers/mail", gmail())
    upserts = fake.count("POST", "/upsert$")
    again = backend.create("agent/triggers/mail", gmail())  # the applier's retry
    assert fake.count("POST", "/upsert$") == upserts  # found, not written again
    assert [i["id"] for i in fake.instances()] == [again.remote_id]


def test_a_delete_that_timed_out_is_looked_up_before_it_is_retried(
    backend: composio.ComposioTriggerBackend, fake: FakeComposio
) -> None:
    made = backend.create("agent/triggers/mail", gmail())
    fake.inject(Fault("slow", "/manage/", method="DELETE", delay=1.5))
    with pytest.raises(UnknownOutcome):
        backend.delete(made.remote_id)
    with pytest.raises(NotFound, match="already gone"):
        backend.delete(made.remote_id)
    assert fake.count("DELETE") == 1


def test_sdk_retries_are_spent_from_the_budget(
    backend: composio.ComposioTriggerBackend, fake: FakeComposio
) -> None:
    fake.inject(Fault("commit_then_500", "/upsert$", times=2))
    made = backend.create("agent/triggers/mail", gmail())
    assert fake.count("POST", "/upsert$") == 3  # two lost answers, then the SDK's last retry
    assert [i["id"] for i in fake.instances()] == [made.remote_id]  # upsert: no duplicate
    assert backend.limiter is not None and backend.limiter.admitted == len(fake.requests)


def test_a_rename_keeps_the_instance_the_new_key_resolved_to(
    backend: composio.ComposioTriggerBackend, fake: FakeComposio
) -> None:
    old = backend.create("agent/triggers/mail", gmail())
    assert backend.preflight([resource(gmail(), "renamed")]) == []
    new = backend.create("agent/triggers/renamed", gmail())
    assert new.remote_id == old.remote_id
    with pytest.raises(Conflict, match=r"`agent/triggers/renamed` .*a rename"):
        backend.delete(old.remote_id)  # the planner deleting the old key
    assert [i["id"] for i in fake.instances()] == [new.remote_id]
    assert backend.preflight([]) == []  # once nothing wants it, it goes
    backend.delete(old.remote_id)
    assert fake.instances() == []


# -- configuration and errors ------------------------------------------------------------------


def test_missing_key_and_bad_url_are_explained(settings: Settings) -> None:
    with pytest.raises(AuthError, match="COMPOSIO_API_KEY is not set"):
        composio.from_env(settings, {})
    with pytest.raises(SourceError, match="https"):
        composio.from_env(settings, {"COMPOSIO_API_KEY": "k", "COMPOSIO_BASE_URL": "http://x.io"})


def test_a_rejected_key_is_an_auth_error_that_never_shows_the_key(
    fake: FakeComposio, settings: Settings
) -> None:
    wrong = "ak_live_WRONG_KEY_1234567890"
    env = fake.env(COMPOSIO_API_KEY=wrong, **FAST)
    with (
        composio.from_env(settings, env) as backend,
        pytest.raises(AuthError, match="rejected COMPOSIO_API_KEY") as err,
    ):
        backend.create("agent/triggers/mail", gmail())
    assert wrong not in str(err.value) and "401" in str(err.value)


def test_an_unknown_account_at_create_names_the_field(
    backend: composio.ComposioTriggerBackend,
) -> None:
    with pytest.raises(PermanentError, match=r"ca_nope not found; check `connected_account`"):
        backend.create("agent/triggers/mail", gmail(connected_account="ca_nope"))


def test_nothing_is_sent_anywhere_but_the_configured_api(
    backend: composio.ComposioTriggerBackend,
    fake: FakeComposio,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Telemetry is off in every thread, and the only host contacted is the fake."""
    from composio.core.models import _telemetry

    hosts: list[str] = []
    real = httpx.HTTPTransport.handle_request

    def spy(self: httpx.HTTPTransport, request: httpx.Request) -> httpx.Response:
        hosts.append(request.url.host)
        return real(self, request)

    monkeypatch.setattr(httpx.HTTPTransport, "handle_request", spy)
    backend.preflight([resource(gmail())])
    made = backend.create("agent/triggers/mail", gmail())
    # A traced SDK call from a thread that never saw ``allow_tracking=False`` (a ContextVar).
    worker = threading.Thread(target=lambda: backend._type("SLACK_RECEIVE_MESSAGE"))
    worker.start()
    worker.join()
    backend.preflight([])  # the trigger left the config
    backend.delete(made.remote_id)
    assert hosts and set(hosts) == {"127.0.0.1"}
    assert len(hosts) == len(fake.requests)
    assert _telemetry._thread is None  # the telemetry sender never started
    with (
        pytest.raises(PermanentError, match="talks only to the configured API"),
        backend._sdk("probe"),
    ):
        backend._client.client._client.get("https://telemetry.composio.dev/v1/metrics")


def test_info_shows_the_budget(backend: composio.ComposioTriggerBackend) -> None:
    assert backend.info.extra["budget"] == "500000/min (50% of 1000000/min)"
    assert composio_sdk.ComposioConfig.from_env({"COMPOSIO_API_KEY": "k"}).budget.limit == 1000
