"""GET /api/forms/*: what the edit dialogs preview as a person types, from the code a save uses.

Each answer is checked against that code (``core.scheduling``, ``config.semantic``, the catalog
and the workflow registry); bad input is a 422 naming the query parameter, never a 5xx; and
the routes are reads, so they need the token exactly where every read does (off loopback).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st

from planner_operator.config import catalog
from planner_operator.core import scheduling, templates
from planner_operator.core.clock import ManualClock
from planner_operator.core.settings import Settings
from planner_operator.runtime.workflows import BUILTIN
from planner_operator.server import auth
from planner_operator.server.app import create_app

TOKEN = "forms-api-test-token-0123456789abcdef"
ENV = {auth.ENV_TOKEN: TOKEN, "PLANNER_WORKER": "0", "DEPLOY_WEBHOOK_SECRET": "d-secret"}
BEARER = {"Authorization": f"Bearer {TOKEN}"}
# the Friday before New York springs forward (Sunday 2027-03-14, 02:00 -> 03:00)
FRIDAY = datetime(2027, 3, 12, 12, 0, tzinfo=UTC)
ROUTES = [
    "/api/forms/schedule?schedule=0+9+*+*+*",
    "/api/forms/template?template=hi",
    "/api/forms/catalog",
]


def app_client(tmp_path: Path, bind_host: str = "127.0.0.1") -> TestClient:
    state = Settings.resolve(state_dir=tmp_path / "state", env={})
    app = create_app(state, ENV, clock=ManualClock(FRIDAY), bind_host=bind_host)
    return TestClient(app, base_url="http://localhost", raise_server_exceptions=True)


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    with app_client(tmp_path) as test_client:
        yield test_client


def test_the_schedule_in_words_and_its_next_fires_in_the_zone_flag_the_dst_day(
    client: TestClient,
) -> None:
    got = client.get(
        "/api/forms/schedule", params={"schedule": "30 2 * * *", "timezone": "America/New_York"}
    )
    assert got.status_code == 200
    body = got.json()
    assert body["text"] == scheduling.describe("30 2 * * *")
    expected = scheduling.next_fires("30 2 * * *", "America/New_York", start=FRIDAY, count=5)
    assert [f["at"] for f in body["fires"]] == [f.at.isoformat() for f in expected]
    days = {f["at"][:10]: f for f in body["fires"]}
    assert days["2027-03-14"]["dst_day"] is True  # 02:30 does not exist that day
    assert days["2027-03-14"]["note"] == expected[1].note and expected[1].note
    assert days["2027-03-13"]["dst_day"] is False and days["2027-03-13"]["zone"] == "EST"
    assert days["2027-03-15"]["zone"] == "EDT"


def test_a_macro_is_expanded_and_the_count_is_honoured(client: TestClient) -> None:
    body = client.get("/api/forms/schedule", params={"schedule": "@daily", "count": 2}).json()
    assert body["schedule"] == "0 0 * * *" and len(body["fires"]) == 2


@pytest.mark.parametrize(
    ("params", "field", "words"),
    [
        ({"schedule": "61 * * * *"}, "schedule", "out of range"),
        ({"schedule": "every day"}, "schedule", "not cron"),
        ({"schedule": "0 9 * * *", "timezone": "Europe/Berln"}, "timezone", "Europe/Berlin"),
        ({"schedule": "0 9 * * *", "count": 0}, "count", ""),
        ({}, "schedule", ""),
    ],
)
def test_a_bad_schedule_or_zone_is_a_422_naming_the_field(
    client: TestClient, params: dict[str, str | int], field: str, words: str
) -> None:
    got = client.get("/api/forms/schedule", params=params)
    assert got.status_code == 422
    (error,) = got.json()["detail"]
    assert error["loc"] == ["query", field] and words in error["msg"]


@settings(max_examples=60, deadline=None)
@given(schedule=st.text(min_size=1, max_size=40), zone=st.text(min_size=1, max_size=30))
def test_no_schedule_or_zone_text_is_a_server_error(
    tmp_path_factory: pytest.TempPathFactory, schedule: str, zone: str
) -> None:
    with app_client(tmp_path_factory.mktemp("any")) as client:
        got = client.get("/api/forms/schedule", params={"schedule": schedule, "timezone": zone})
    assert got.status_code in (200, 422), got.text


def test_a_job_template_lists_the_built_ins_and_flags_an_unknown_placeholder(
    client: TestClient,
) -> None:
    got = client.get(
        "/api/forms/template",
        params={"template": "On {weekday}, look at {staleDay} and {userCriteria}",
                "agent_variables": "userCriteria", "action_variables": "staleDays"},
    )  # fmt: skip
    body = got.json()
    assert body["checked"] is True and body["placeholders"] == [
        "weekday",
        "staleDay",
        "userCriteria",
    ]
    names = {v["name"]: v["source"] for v in body["available"]}
    assert names == {
        **dict.fromkeys(templates.JOB_BUILTINS, "built-in"),
        "userCriteria": "agent",
        "staleDays": "action",
    }
    (problem,) = body["problems"]
    assert problem["message"] == "placeholder `{staleDay}` has no value"
    assert problem["hint"] == "did you mean `{staleDays}`?"


def test_a_trigger_template_knows_its_event_payload_and_not_an_unknown_one(
    client: TestClient,
) -> None:
    gmail = catalog.bundled()["GMAIL_NEW_GMAIL_MESSAGE"]
    known = client.get(
        "/api/forms/template",
        params={"template": "{sendr}: {subject}", "kind": "trigger", "event": gmail.slug},
    ).json()
    assert {v["name"] for v in known["available"] if v["source"] == "payload"} == gmail.fields
    assert [p["hint"] for p in known["problems"]] == ["did you mean `{sender}`?"]
    webhook = client.get(
        "/api/forms/template", params={"template": "{anything}", "kind": "trigger"}
    ).json()
    assert webhook["checked"] is False and webhook["problems"] == []


def test_a_template_syntax_error_is_a_problem_not_a_failure(client: TestClient) -> None:
    got = client.get("/api/forms/template", params={"template": "hello {name"})
    assert got.status_code == 200
    assert got.json()["problems"][0]["message"].startswith("template: ")


def test_the_catalog_offers_the_bundled_trigger_types_the_workflows_and_the_zones(
    client: TestClient,
) -> None:
    body = client.get("/api/forms/catalog").json()
    slugs = {e["slug"]: e for t in body["toolkits"] for e in t["events"]}
    assert set(slugs) == set(catalog.bundled())
    for toolkit in body["toolkits"]:
        assert all(
            catalog.bundled()[e["slug"]].toolkit == toolkit["slug"] for e in toolkit["events"]
        )
    hubspot = slugs["HUBSPOT_CONTACT_CREATED_TRIGGER"]
    assert hubspot["config"] == dict(catalog.bundled()[hubspot["slug"]].config)
    assert set(BUILTIN) <= set(body["workflows"])
    assert "Europe/Berlin" in body["timezones"] and "UTC" in body["timezones"]
    assert body["operators"] == ["equals", "contains", "in", "exists"]
    assert body["composio"] is False and body["webhook_path"] == "/webhooks/{agent}/{trigger}"


def test_the_forms_are_reads_that_need_the_token_off_loopback(tmp_path: Path) -> None:
    with app_client(tmp_path, bind_host="0.0.0.0") as exposed:
        for route in ROUTES:
            assert exposed.get(route).status_code == 401, route
            assert exposed.get(route, headers={"Authorization": "Bearer nope"}).status_code == 401
            assert exposed.get(route, headers=BEARER).status_code == 200, route
            for method in ("POST", "PUT", "DELETE"):  # nothing here writes
                assert exposed.request(method, route, headers=BEARER).status_code == 405
