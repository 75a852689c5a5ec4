"""Every dashboard page through the real app (TestClient): status codes, what a person reads,
empty states, escaping of outside text, friendly 404s, and the buttons behind the login."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from fastapi.testclient import TestClient

from planner_operator.core import scheduling
from planner_operator.core.settings import Settings
from planner_operator.server.app import create_app
from planner_operator.state.runs import RunStore
from tests.server.dashboard.conftest import BEARER, ENV, TOKEN, rows

MORNING = "job-application-agent/jobs/morning-job-check"
DAILY = "job-application-agent/jobs/daily-application-check"
HTML = {"Accept": "text/html"}


def _same_origin(client: TestClient) -> dict[str, str]:
    return {"Origin": str(client.base_url)}


def login(client: TestClient) -> None:
    response = client.post(
        "/planner/login",
        data={"token": TOKEN, "next": "/planner/"},
        headers=_same_origin(client),
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text
    assert response.headers["location"] == "/planner/"


def wait_finished(client: TestClient, run_id: str, timeout: float = 10.0) -> str:
    deadline = time.monotonic() + timeout
    while True:
        page = client.get(f"/planner/runs/{run_id}").text
        if 'class="badge b-running"' not in page or time.monotonic() > deadline:
            return page
        time.sleep(0.05)


def test_root_and_bare_prefix_redirect_to_the_planner(client: TestClient) -> None:
    for path in ("/", "/planner"):
        response = client.get(path, follow_redirects=False)
        assert response.status_code == 307
        assert response.headers["location"] == "/planner/"


def test_planner_lists_the_example_jobs_with_next_runs_in_their_own_timezone(
    client: TestClient,
) -> None:
    before = datetime.now(UTC) - timedelta(seconds=1)
    page = client.get("/planner/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    jobs = rows(page.text, "job")
    assert {MORNING, DAILY, "sales-agent/jobs/quarterly-forecast"} <= set(jobs)
    assert "Job Application Agent" in jobs[MORNING]
    for key, spec_zone, cron in (
        (MORNING, "Europe/Berlin", "0 9 * * 1"),
        (DAILY, "America/New_York", "@daily"),
    ):
        shown = re.search(r'<time class="next-run" datetime="([^"]+)"', jobs[key])
        assert shown, jobs[key]
        at = datetime.fromisoformat(shown.group(1))
        expected = scheduling.next_fires(cron, spec_zone, start=before, count=1)[0].at
        assert at == expected
        assert at.utcoffset() == expected.utcoffset()  # written in the job's zone, not UTC
        abbreviation = expected.astimezone(ZoneInfo(spec_zone)).tzname()
        assert f"{abbreviation} (UTC" in jobs[key]
        assert spec_zone in jobs[key]
    assert f">{scheduling.describe('@daily')}</span>" in jobs[DAILY]
    assert 'title="cron: 0 0 * * *"' in jobs[DAILY]
    paused = jobs["sales-agent/jobs/quarterly-forecast"]
    assert "b-paused" in paused and "none: paused" in paused
    triggers = rows(page.text, "trigger")
    mail = triggers["job-application-agent/triggers/recruiter-email"]
    assert "GMAIL_NEW_GMAIL_MESSAGE" in mail.replace("<wbr>", "") and "composio" in mail
    assert "GMAIL_<wbr>NEW_<wbr>GMAIL_<wbr>MESSAGE" in mail  # wraps after underscores only
    assert "webhook" in triggers["engineering-agent/triggers/deploy-hook"]
    assert "Last reconcile" in page.text and "12 create" in page.text


def test_reading_needs_no_login_on_loopback_but_buttons_do(client: TestClient) -> None:
    page = client.get("/planner/").text
    assert "Log in to run" in page and "Run now" not in page
    refused = client.post("/planner/jobs/job-application-agent/morning-job-check/run")
    assert refused.status_code == 401
    login(client)
    page = client.get("/planner/").text
    assert page.count('run-now"') == len(rows(page, "job"))
    assert "Log out" in page


def test_a_wrong_token_shows_the_login_page_again(client: TestClient) -> None:
    response = client.post(
        "/planner/login", data={"token": "nope", "next": "/planner/"}, headers=_same_origin(client)
    )
    assert response.status_code == 401
    assert "That token is not valid." in response.text
    assert TOKEN not in response.text
    assert "PLANNER_API_TOKEN" in response.text  # where the token is, never what it is


def test_run_now_redirects_to_the_new_run_which_shows_the_rendered_message(
    client: TestClient,
) -> None:
    login(client)
    response = client.post(
        "/planner/jobs/job-application-agent/morning-job-check/run",
        headers=_same_origin(client),
        follow_redirects=False,
    )
    assert response.status_code == 303
    match = re.fullmatch(r"/planner/runs/(\d+)\?flash=run", response.headers["location"])
    assert match
    page = wait_finished(client, match.group(1))
    shown = client.get(response.headers["location"]).text
    run_status = client.get(
        response.headers["location"].replace("/planner/runs/", "/api/runs/").split("?")[0],
        headers=BEARER,
    ).json()["status"]
    if run_status == "running":
        assert "Run started. This page refreshes itself until the run has finished." in shown
    else:  # the banner never promises a refresh for a run that is over
        assert "Run started; it has already finished (its outcome is below)." in shown
        assert "refreshes itself" not in shown
    assert 'class="badge b-succeeded"' in page
    assert "Check job boards for new postings matching senior Python roles" in page
    listing = client.get("/planner/runs").text
    assert rows(listing, "run")[match.group(1)].count("morning-job-check") >= 1
    planner = rows(client.get("/planner/").text, "job")[MORNING]
    assert f'/planner/runs/{match.group(1)}"' in planner  # last run links to it


def test_run_now_with_a_bearer_token_and_unknown_jobs_give_a_friendly_404(
    client: TestClient,
) -> None:
    response = client.post("/planner/jobs/job-application-agent/no-such-job/run", headers=BEARER)
    assert response.status_code == 404
    assert "Could not run job-application-agent/no-such-job" in response.text
    assert "Back to the Planner" in response.text


def test_send_test_event_runs_the_trigger(client: TestClient) -> None:
    response = client.post(
        "/planner/triggers/job-application-agent/recruiter-email/test",
        headers=BEARER,
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text
    run_id = response.headers["location"].split("/")[-1].split("?")[0]
    page = wait_finished(client, run_id)
    assert "recruiter-email" in page
    assert "Trigger event" in page


def test_empty_state_dir_explains_what_to_do(empty_client: TestClient) -> None:
    page = empty_client.get("/planner/").text
    assert "No jobs applied yet" in page and "planner-operator reconcile" in page
    assert "No event triggers applied yet" in page
    assert "No reconcile has run against this state directory yet" in page
    runs = empty_client.get("/planner/runs").text
    assert "No runs yet:" in runs and "Run now" in runs


def test_outside_text_is_escaped_on_every_page(client: TestClient, applied: Settings) -> None:
    evil = '<script>alert("x")</script><img src=x onerror=alert(1)>'
    with RunStore(applied.state_dir / "runs.db") as store:
        row = store.start(
            key=MORNING, kind="job", run_id="r-evil", origin="manual", action="chat", rendered=evil
        )
        store.finish(row, status="failed", error=evil, result={"html": evil})
    for path in ("/planner/runs", f"/planner/runs/{row}", "/planner/"):
        page = client.get(path).text
        assert "<script>" not in page and "<img" not in page, path
    detail = client.get(f"/planner/runs/{row}").text
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in detail
    assert 'id="error"' in detail and 'class="badge b-failed"' in detail


def test_runs_filters_and_older_pages(client: TestClient, applied: Settings) -> None:
    with RunStore(applied.state_dir / "runs.db") as store:
        for n in range(55):
            row = store.start(
                key=DAILY, kind="job", run_id=f"r{n}", origin="scheduler", action="workflow"
            )
            store.finish(row, status="failed" if n == 3 else "succeeded", result={"n": n})
    first = client.get("/planner/runs").text
    assert len(rows(first, "run")) == 50
    older = re.search(r'href="(/planner/runs\?[^"]*before=\d+[^"]*)" rel="next"', first)
    assert older, "no link to older runs"
    second = client.get(older.group(1).replace("&amp;", "&")).text
    assert len(rows(second, "run")) == 5
    assert "newest" in second
    failed = client.get("/planner/runs?status=failed&agent=job-application-agent").text
    assert list(rows(failed, "run")) == [str(4)]
    assert "b-failed" in failed
    none = client.get("/planner/runs?agent=sales-agent").text
    assert "No runs match these filters." in none
    bogus = client.get("/planner/runs?status=<b>&before=x")
    assert bogus.status_code == 200 and "<b>" not in bogus.text


def test_agent_page_and_friendly_404s(client: TestClient) -> None:
    agent = client.get("/planner/agents/sales-agent")
    assert agent.status_code == 200
    assert "Sales Agent" in agent.text and "weekly-pipeline-review" in agent.text
    assert "morning-job-check" not in agent.text
    for path, words in (
        ("/planner/agents/nobody", "There is no agent"),
        ("/planner/runs/999999", "There is no run #999999"),
        ("/planner/runs/abc", "is not a run number"),
        ("/planner/nowhere", "The dashboard has no page at /planner/nowhere"),
    ):
        response = client.get(path, headers=HTML)
        assert response.status_code == 404, path
        assert words in response.text
        assert "Back to the Planner" in response.text


def test_stylesheet_is_served_locally(client: TestClient) -> None:
    page = client.get("/planner/").text
    href = re.search(r'<link rel="stylesheet" href="([^"]+)"', page)
    assert href and href.group(1).startswith("/planner/static/planner.css?v=")
    css = client.get(href.group(1))
    assert css.status_code == 200
    assert css.headers["content-type"].startswith("text/css")
    assert "@media (max-width: 760px)" in css.text
    assert "http" not in page.split("<main>")[0].replace('href="/', "")  # nothing remote


def test_a_job_filter_without_its_agent_is_explained(client: TestClient) -> None:
    response = client.get("/planner/runs?job=morning-job-check")
    assert response.status_code == 422
    assert "Cannot list these runs" in response.text and "agent" in response.text
    scoped = client.get("/planner/runs?agent=job-application-agent&job=morning-job-check")
    assert scoped.status_code == 200
    assert "Only runs of <code>morning-job-check</code>" in scoped.text


def test_off_loopback_every_page_asks_for_the_login_first(applied: Settings) -> None:
    app = create_app(applied, ENV, bind_host="0.0.0.0")
    with TestClient(app) as exposed:
        response = exposed.get("/planner/runs", headers=HTML, follow_redirects=False)
        assert response.status_code == 303
        assert response.headers["location"] == "/planner/login?next=/planner/runs"
        assert exposed.get(response.headers["location"]).status_code == 200
        login(exposed)
        assert exposed.get("/planner/runs", headers=HTML).status_code == 200
