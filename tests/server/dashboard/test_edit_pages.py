"""The edit dialogs on the pages (the browser drives them in ``test_e2e_edit.py``): who gets
them, that a read-only server's pages are unchanged, the script served without a build, and the
dialogs' start data escaped like any outside text."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from planner_operator.backends.select import open_backends
from planner_operator.core.settings import Settings
from planner_operator.edit.target import Target
from planner_operator.reconcile.engine import SourceSpec, reconcile
from planner_operator.server.app import create_app
from tests.server.dashboard.conftest import AGENTS, ENV
from tests.server.dashboard.test_pages import login

EVIL = "Ops </script><script>alert(1)</script>"


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    agents = Path(shutil.copytree(AGENTS, tmp_path / "agents"))
    sales = agents / "sales-agent.yaml"
    sales.write_text(sales.read_text().replace("name: Sales Agent", f'name: "{EVIL}"', 1))
    return agents


def _client(
    tree: Path, tmp_path: Path, *, edits: bool, env: dict[str, str] | None = None
) -> TestClient:
    settings = Settings.resolve(state_dir=tmp_path / "state", env={})
    outcome = reconcile(
        SourceSpec(path=tree), settings, backends_factory=lambda s: open_backends(s, env={})
    )
    assert outcome.applied is not None and outcome.applied.ok
    app = create_app(settings, {**ENV, **(env or {})}, edits=Target(path=tree) if edits else None)
    return TestClient(app, base_url="http://localhost", raise_server_exceptions=True)


@pytest.fixture
def editing(tree: Path, tmp_path: Path) -> Iterator[TestClient]:
    with _client(tree, tmp_path, edits=True) as client:
        yield client


def edit_data(html: str) -> dict[str, object]:
    found = re.search(r'<script type="application/json" id="edit-data">(.*?)</script>', html, re.S)
    assert found, "no edit data on the page"
    data: dict[str, object] = json.loads(found.group(1))
    return data


def test_a_logged_in_visitor_of_an_editing_server_gets_the_dialogs(editing: TestClient) -> None:
    assert "edit.js" not in editing.get("/planner/").text  # not logged in: read-only page
    login(editing)
    for path in ("/planner/", "/planner/agents/sales-agent"):
        html = editing.get(path).text
        assert '<script src="/planner/static/edit.js?v=' in html
        for dialog in ("job-dialog", "trigger-dialog", "agent-dialog", "change-dialog"):
            assert f'<dialog id="{dialog}"' in html, (path, dialog)
        assert 'data-edit="add" data-kind="job"' in html
        assert 'data-edit="add" data-kind="trigger"' in html
        assert html.count('class="edit-actions"') == html.count('<tr class="job"') + html.count(
            '<tr class="trigger"'
        )
        assert 'class="edit-actions"' in html and "hidden>" in html  # revealed by the script
    planner = edit_data(editing.get("/planner/").text)
    assert planner["mode"] == "worktree"
    agents = {a["id"]: a for a in planner["agents"]}  # type: ignore[attr-defined]
    assert agents["sales-agent"]["timezone"] == "America/Los_Angeles"
    assert agents["sales-agent"]["name"] == EVIL  # the JSON says it as it is...
    one = edit_data(editing.get("/planner/agents/sales-agent").text)
    assert [a["id"] for a in one["agents"]] == ["sales-agent"]  # type: ignore[attr-defined]
    assert 'data-edit="new-agent"' not in editing.get("/planner/agents/sales-agent").text


def test_outside_text_cannot_end_the_dialogs_data_script(editing: TestClient) -> None:
    login(editing)
    html = editing.get("/planner/").text
    assert "<script>alert(1)" not in html  # ...but never as markup
    assert html.count("</script>") == html.count("<script")


def test_a_paused_job_offers_resume(editing: TestClient) -> None:
    login(editing)
    html = editing.get("/planner/agents/sales-agent").text
    assert 'aria-label="Resume job quarterly-forecast"' in html
    assert 'aria-label="Pause job weekly-pipeline-review"' in html


def test_a_read_only_server_or_edits_off_keep_the_pages_as_they_were(
    tree: Path, tmp_path: Path
) -> None:
    for edits, env in ((False, {}), (True, {"PLANNER_EDIT_MODE": "off"})):
        with _client(tree, tmp_path / str(edits), edits=edits, env=env) as client:
            login(client)
            html = client.get("/planner/").text
            assert "edit.js" not in html and "<dialog" not in html and "edit-actions" not in html
            assert "Run now" in html  # still logged in: the other buttons are there


def test_the_script_is_served_as_a_static_file_without_a_login(editing: TestClient) -> None:
    got = editing.get("/planner/static/edit.js")
    assert got.status_code == 200 and got.headers["content-type"].startswith("text/javascript")
    assert "dry_run" in got.text and "import " not in got.text  # no modules, no build
    assert "http://" not in got.text and "https://" not in got.text  # nothing from a CDN
