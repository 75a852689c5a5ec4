"""The dashboard tells the truth about trouble (issue 18): broken files at the top and their
resources frozen, Composio triggers with no event source, failed runs with their error, a
paused job that cannot be run by accident, and pages that read well (no repeated columns,
no literal backticks, a summary before the long tables, no CDN)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from planner_operator.backends.select import open_backends
from planner_operator.core.settings import Settings
from planner_operator.reconcile.engine import SourceSpec, reconcile
from planner_operator.server.app import create_app
from planner_operator.state.runs import RunStore
from tests.server.dashboard.conftest import AGENTS, BEARER, ENV, rows

SALES = "agents/sales-agent.yaml"


def apply(agents: Path, settings: Settings) -> None:
    reconcile(
        SourceSpec(path=agents), settings, backends_factory=lambda s: open_backends(s, env={})
    )


@pytest.fixture
def broken(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    """The examples applied (from the repository root, as `reconcile --path agents` runs), then
    sales-agent.yaml broken and reconciled again."""
    shutil.copytree(AGENTS, tmp_path / "agents")
    monkeypatch.chdir(tmp_path)
    agents = Path("agents")
    settings = Settings.resolve(state_dir=tmp_path / "state", env={})
    apply(agents, settings)
    sales = agents / "sales-agent.yaml"
    sales.write_text(sales.read_text().replace("planner:", "planner:\n  nonsense: 1", 1))
    apply(agents, settings)
    env = {**ENV, "PLANNER_REPO_WEB_URL": "https://git.example.test/team/agents/blob/main"}
    with TestClient(create_app(settings, env)) as client:
        client.headers.update(BEARER)
        yield client


def test_a_broken_file_is_shown_first_and_its_resources_are_frozen(broken: TestClient) -> None:
    page = broken.get("/planner/").text
    assert page.index('id="load-errors"') < page.index('id="jobs"')
    assert "unknown key `nonsense`" in page.split('id="load-errors"')[1].split("</section>")[0]
    for key, row in rows(page, "job").items():
        frozen = "b-frozen" in row
        assert frozen == key.startswith("sales-agent/"), key
    agent = broken.get("/planner/agents/sales-agent").text
    assert 'id="load-errors"' in agent and "b-frozen" in agent


def test_each_resource_links_to_its_file_in_the_repository(broken: TestClient) -> None:
    page = broken.get("/planner/").text
    row = rows(page, "job")["sales-agent/jobs/weekly-pipeline-review"]
    assert 'href="https://git.example.test/team/agents/blob/main/agents/sales-agent.yaml"' in row


def test_composio_triggers_on_the_embedded_backend_say_nothing_delivers(
    broken: TestClient,
) -> None:
    triggers = rows(broken.get("/planner/").text, "trigger")
    assert (
        "no event source: Composio is not configured"
        in triggers["job-application-agent/triggers/recruiter-email"]
    )
    assert "no event source" not in triggers["engineering-agent/triggers/deploy-hook"]  # webhook


def test_a_paused_job_cannot_be_run_by_accident(client: TestClient) -> None:
    client.headers.update(BEARER)
    paused = rows(client.get("/planner/").text, "job")["sales-agent/jobs/quarterly-forecast"]
    assert "disabled" in paused and "<form" not in paused and "enabled: true" in paused


def test_a_paused_job_in_a_broken_file_is_frozen_and_still_cannot_be_run(
    broken: TestClient,
) -> None:
    """Its state is frozen (the one classifier ranks it above paused), yet it is paused in its
    file: the page must not offer to run it."""
    paused = rows(broken.get("/planner/").text, "job")["sales-agent/jobs/quarterly-forecast"]
    assert "b-frozen" in paused and "enabled: false in its file" in paused
    assert "disabled" in paused and "<form" not in paused and "enabled: true" in paused


def test_a_failed_run_shows_its_error_in_the_list_and_first_on_its_page(
    tmp_path: Path,
) -> None:
    settings = Settings.resolve(state_dir=tmp_path / "state", env={})
    apply(AGENTS, settings)
    with RunStore(settings.state_dir / "runs.db") as runs:
        row = runs.start(
            key="sales-agent/jobs/weekly-pipeline-review",
            kind="job",
            run_id="manual-x",
            origin="manual",
            action="chat",
        )
        runs.finish(row, status="failed", error="platform answered 503: try later")
    with TestClient(create_app(settings, ENV)) as client:
        listed = rows(client.get("/planner/runs").text, "run")[str(row)]
        assert "error: platform answered 503: try later" in listed and "—" not in listed
        page = client.get(f"/planner/runs/{row}").text
    assert page.index('id="error"') < page.index("Result")
    assert "Nothing was sent: the run failed before its action." in page
    assert "Message sent" not in page


def test_agent_page_names_the_agent_and_drops_the_agent_column(broken: TestClient) -> None:
    page = broken.get("/planner/agents/engineering-agent").text
    assert '<p class="crumbs"><a href="/planner/">Planner</a> / Engineering Agent</p>' in page
    assert 'data-label="Agent"' not in page and '<th scope="col">Agent</th>' not in page


def test_not_found_shows_code_not_backticks(broken: TestClient) -> None:
    page = broken.get("/planner/agents/nobody").text
    assert "There is no agent <code>nobody</code>" in page and "`nobody`" not in page


def test_the_planner_page_opens_with_a_summary(broken: TestClient) -> None:
    page = broken.get("/planner/").text
    summary = page.split('id="summary"')[1].split("</section>")[0]
    assert page.index('id="summary"') < page.index('id="jobs"')
    assert "Next fire" in summary and "Needs attention" in summary and "b-active" in summary


def test_api_docs_load_nothing_from_a_cdn(broken: TestClient) -> None:
    docs = broken.get("/docs").text
    assert "cdn." not in docs and "/static-offline-docs/swagger-ui-bundle.js" in docs
    assert broken.get("/static-offline-docs/swagger-ui-bundle.js").status_code == 200
