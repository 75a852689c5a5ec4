"""Paged and filtered lists: /api/jobs, /api/triggers, /api/agents and the compat /triggers.

Over the example agents (6 jobs, one paused; 6 triggers, one a signed webhook): pages follow
``X-Next-Cursor`` to the end without repeats, filters and sorts are what they say, a cursor is
tied to its query and survives resources being added and removed under it, and every bad
parameter is a 400 naming it.
"""

from __future__ import annotations

import base64
from typing import Any

import pytest
from fastapi.testclient import TestClient

from planner_operator.core.records import OwnedEntry
from planner_operator.core.settings import Settings
from planner_operator.state.ledger import Ledger
from tests.server.api.status_state import applied, applied_once, client

__all__ = ["applied", "applied_once", "client"]  # fixtures


def walk(client: TestClient, path: str, **params: Any) -> tuple[list[str], list[int]]:
    """Every key over every page of ``path``, and each page's size."""
    keys: list[str] = []
    sizes: list[int] = []
    cursor = None
    while True:
        answer = client.get(path, params={**params, **({"cursor": cursor} if cursor else {})})
        assert answer.status_code == 200, answer.text
        items = answer.json()
        keys += [i.get("key") or i["id"] for i in items]
        sizes.append(len(items))
        cursor = answer.headers.get("x-next-cursor")
        if cursor is None:
            assert "link" not in answer.headers
            return keys, sizes
        assert answer.headers["link"].endswith('; rel="next"') and cursor in answer.headers["link"]


def test_default_answer_is_still_the_whole_list_under_100(client: TestClient) -> None:
    answer = client.get("/api/jobs")
    assert len(answer.json()) == 6 and answer.headers["x-total-count"] == "6"
    assert "x-next-cursor" not in answer.headers
    assert set(answer.json()[0]) >= {"key", "state", "next_runs", "last_run", "schedule_text"}


def test_pages_of_two_walk_every_job_once_in_key_order(client: TestClient) -> None:
    everything = [j["key"] for j in client.get("/api/jobs").json()]
    keys, sizes = walk(client, "/api/jobs", limit=2)
    assert keys == sorted(everything) and sizes == [2, 2, 2]
    triggers, sizes = walk(client, "/api/triggers", limit=4)
    assert len(triggers) == 6 == len(set(triggers)) and sizes == [4, 2]
    agents, _ = walk(client, "/api/agents", limit=1)
    assert agents == ["engineering-agent", "job-application-agent", "sales-agent"]


def test_filters_by_agent_state_source_toolkit_and_text(client: TestClient) -> None:
    def keys(path: str, **params: Any) -> list[str]:
        return [i.get("key") or i["id"] for i in client.get(path, params=params).json()]

    assert keys("/api/jobs", agent="sales-agent") == [
        "sales-agent/jobs/quarterly-forecast",
        "sales-agent/jobs/weekly-pipeline-review",
    ]
    assert keys("/api/jobs", state="paused") == ["sales-agent/jobs/quarterly-forecast"]
    assert keys("/api/jobs", q="MORNING-job") == ["job-application-agent/jobs/morning-job-check"]
    assert keys("/api/triggers", source="webhook") == ["engineering-agent/triggers/deploy-hook"]
    assert keys("/api/triggers", toolkit="hubspot") == [
        "sales-agent/triggers/deal-stage-changed",
        "sales-agent/triggers/new-contact",
    ]
    assert keys("/api/triggers", q="cd system") == ["engineering-agent/triggers/deploy-hook"]
    assert keys("/api/agents", state="paused") == ["sales-agent"]
    assert keys("/api/agents", q="job appl") == ["job-application-agent"]
    assert keys("/api/jobs", agent="nobody") == []
    assert keys("/triggers", toolkit="hubspot", limit=1) == [
        "sales-agent/triggers/deal-stage-changed"
    ]


def test_sort_by_next_fire_puts_the_soonest_first_and_paused_last(client: TestClient) -> None:
    jobs = client.get("/api/jobs", params={"sort": "next_fire"}).json()
    fires = [j["next_runs"][0]["utc"] for j in jobs if j["next_runs"]]
    assert fires == sorted(fires) and len(fires) == 5
    assert jobs[-1]["key"] == "sales-agent/jobs/quarterly-forecast"  # paused: no next fire
    keys, _ = walk(client, "/api/jobs", sort="next_fire", limit=2)
    assert keys == [j["key"] for j in jobs]
    agents = client.get("/api/agents", params={"sort": "next_fire"}).json()
    soonest = list(dict.fromkeys(j["agent"] for j in jobs))  # each agent at its first job
    assert [a["id"] for a in agents] == soonest


def test_a_page_stays_stable_while_resources_come_and_go(
    client: TestClient, applied: Settings
) -> None:
    first = client.get("/api/jobs", params={"limit": 3})
    seen = [j["key"] for j in first.json()]
    with Ledger(applied.ledger_db) as ledger:
        gone = ledger.get(seen[0])
        assert gone is not None
        ledger.forget(backend=gone.backend, remote_id=gone.remote_id)  # a page already shown
        template = ledger.get("sales-agent/jobs/weekly-pipeline-review")
        assert template is not None
        for key in ("aaa-agent/jobs/early", "zzz-agent/jobs/late"):  # before and after
            ledger.record(
                OwnedEntry(
                    key=key,
                    kind="job",
                    backend=template.backend,
                    remote_id=f"job_{key}",
                    spec_hash=template.spec_hash,
                    spec=template.spec,
                )
            )
    rest = client.get("/api/jobs", params={"limit": 100, "cursor": first.headers["x-next-cursor"]})
    later = [j["key"] for j in rest.json()]
    assert not set(seen) & set(later)  # nothing repeats, nothing before the cursor comes back
    assert later[-1] == "zzz-agent/jobs/late" and "aaa-agent/jobs/early" not in later
    assert rest.headers["x-total-count"] == "7"


@pytest.mark.parametrize(
    ("query", "parameter"),
    [
        ("limit=0", "limit"),
        ("limit=1001", "limit"),
        ("limit=ten", "limit"),
        ("state=sleeping", "state"),
        ("sort=name", "sort"),
        ("cursor=not-a-cursor", "cursor"),
        ("q=" + "x" * 201, "q"),
        ("source=composio", "source"),  # jobs have no source
    ],
)
def test_bad_parameters_are_400s_naming_the_parameter(
    client: TestClient, query: str, parameter: str
) -> None:
    answer = client.get(f"/api/jobs?{query}")
    assert answer.status_code == 400, answer.text
    assert answer.json()["parameter"] == parameter
    assert f"`{parameter}`" in answer.json()["detail"]


def test_a_cursor_is_checked_against_its_query_and_its_checksum(client: TestClient) -> None:
    cursor = client.get("/api/jobs", params={"limit": 2}).headers["x-next-cursor"]
    other = client.get("/api/jobs", params={"limit": 2, "cursor": cursor, "state": "active"})
    assert other.status_code == 400 and "another query" in other.json()["detail"]
    body, _, check = cursor.partition(".")
    payload = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)).replace(b"job", b"jox")
    edited = base64.urlsafe_b64encode(payload).decode().rstrip("=") + "." + check
    answer = client.get("/api/jobs", params={"limit": 2, "cursor": edited})
    assert answer.status_code == 400 and answer.json()["parameter"] == "cursor"
    sorted_cursor = client.get("/api/triggers", params={"limit": 2, "sort": "next_fire"}).json()
    assert sorted_cursor["parameter"] == "sort"  # triggers have no next fire


def test_the_openapi_document_names_the_parameters_headers_and_400(client: TestClient) -> None:
    from tests.server.api.status_state import BEARER

    spec = client.get("/openapi.json", headers=BEARER).json()
    jobs = spec["paths"]["/api/jobs"]["get"]
    names = {p["name"] for p in jobs["parameters"]}
    assert names == {"agent", "state", "q", "sort", "limit", "cursor"}
    assert "X-Next-Cursor" in jobs["responses"]["200"]["headers"]
    assert "400" in jobs["responses"]
    compat = {p["name"] for p in spec["paths"]["/triggers"]["get"]["parameters"]}
    assert {"source", "toolkit", "cursor", "limit"} <= compat


def test_unknown_names_are_refused_by_the_api_and_ignored_by_the_compat_routes(
    client: TestClient,
) -> None:
    typo = client.get("/api/jobs", params={"stat": "error"})
    assert typo.status_code == 400 and typo.json()["parameter"] == "stat"
    old_client = client.get("/triggers", params={"page": "1"})
    assert old_client.status_code == 200 and len(old_client.json()) == 6
    assert client.get("/triggers", params={"limit": "0"}).json()["parameter"] == "limit"
