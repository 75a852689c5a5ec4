"""The dashboard at 10,000 jobs and 10,000 triggers, in headless Chromium (issue 22).

1,000 generated agents (``bench/read_bench.py``'s, 10 jobs + 10 triggers each) are applied by
the real reconcile on the embedded backend and served by a real uvicorn. A person opens the
Planner page (small: under 200 KB), reads the summary, finds an agent by name, opens it, and
pages through the lists. Slow (the apply takes a minute): ``make test-all`` runs it.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support import expected_conditions as ec

from bench import read_bench
from planner_operator.core.settings import Settings
from planner_operator.reconcile import engine, plan
from planner_operator.server.app import create_app
from tests.server.dashboard import test_e2e_browser
from tests.server.dashboard.conftest import ENV, serve
from tests.server.dashboard.test_e2e_browser import as_laptop, browser, wait

__all__ = ["browser"]  # fixture
pytestmark = [test_e2e_browser.pytestmark, pytest.mark.slow]
PAGE_BUDGET = 200 * 1024


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("dashboard-scale")
    read_bench.write_agents(root / "agents")
    settings = Settings.resolve(state_dir=root / "state", env={})
    outcome = engine.reconcile(
        engine.SourceSpec(path=root / "agents"),
        settings,
        options=plan.PlanOptions(allow_mass_delete=True),
    )
    assert outcome.applied is not None and not outcome.applied.failed
    with serve(create_app(settings, ENV)) as url:
        yield url


def test_the_planner_page_at_20000_resources_is_small_and_leads_to_every_agent(
    big: str, browser: WebDriver
) -> None:
    body = httpx.get(f"{big}/planner/", timeout=120).content
    assert len(body) < PAGE_BUDGET, f"the Planner page is {len(body):,} bytes"
    as_laptop(browser)
    browser.get(f"{big}/planner/")
    summary = browser.find_element(By.ID, "summary").text
    assert "(20,000)" in summary
    assert len(browser.find_elements(By.CSS_SELECTOR, "#upcoming li")) == 10
    agents = browser.find_elements(By.CSS_SELECTOR, "tr.agent")
    assert [a.get_attribute("data-id") for a in agents][:2] == ["agent-0000", "agent-0001"]
    assert len(agents) == 50
    assert len(browser.find_elements(By.CSS_SELECTOR, "tr.job")) == 25
    assert "25 of 10,000" in browser.find_element(By.ID, "jobs-h").text

    browser.find_element(By.LINK_TEXT, "more agents →").click()
    wait(browser).until(ec.presence_of_element_located((By.CSS_SELECTOR, "tr.agent")))
    second = [
        a.get_attribute("data-id") for a in browser.find_elements(By.CSS_SELECTOR, "tr.agent")
    ]
    assert second[0] == "agent-0050" and len(second) == 50

    search = browser.find_element(By.CSS_SELECTOR, "form[role=search] input[name=q]")
    search.clear()
    search.send_keys("Agent 777")
    search.submit()
    wait(browser).until(ec.url_contains("q=Agent+777"))
    found = browser.find_elements(By.CSS_SELECTOR, "tr.agent")
    assert [a.get_attribute("data-id") for a in found] == ["agent-0777"]
    found[0].find_element(By.TAG_NAME, "a").click()
    wait(browser).until(ec.url_contains("/planner/agents/agent-0777"))
    jobs = browser.find_elements(By.CSS_SELECTOR, "tr.job")
    triggers = browser.find_elements(By.CSS_SELECTOR, "tr.trigger")
    assert len(jobs) == 10 and len(triggers) == 10
    assert all(str(j.get_attribute("data-key")).startswith("agent-0777/") for j in jobs)


def keys(driver: WebDriver) -> list[str]:
    return [
        str(r.get_attribute("data-key")) for r in driver.find_elements(By.CSS_SELECTOR, "tr.job")
    ]


def test_the_planner_pages_its_jobs_without_repeats(big: str, browser: WebDriver) -> None:
    as_laptop(browser)
    browser.get(f"{big}/planner/")
    first = keys(browser)
    browser.find_element(By.LINK_TEXT, "more jobs →").click()
    wait(browser).until(ec.url_contains("jobs="))
    second = keys(browser)
    assert len(second) == 25 and not set(first) & set(second) and min(second) > max(first)
    assert len(browser.find_elements(By.CSS_SELECTOR, "tr.agent")) == 50  # the agents stay
    browser.find_element(By.LINK_TEXT, "← first jobs").click()
    wait(browser).until(lambda d: "jobs=" not in d.current_url)
    again = keys(browser)
    assert again == first


def test_an_agent_page_is_small_too(big: str) -> None:
    page = httpx.get(f"{big}/planner/agents/agent-0500", timeout=120)
    assert page.status_code == 200 and len(page.content) < PAGE_BUDGET
