"""The dashboard as a person uses it, in headless Chromium (Debian's chromium + chromium-driver).

A real uvicorn serves the real app over the repo's example agents, reconciled on the embedded
backend; Selenium drives the browser with explicit binary paths and ``SE_OFFLINE`` so Selenium
Manager never downloads anything (CI machines are offline). One browser for the module keeps
the whole file to a few seconds. Screenshots of the Planner page at laptop and phone width land
in the test's tmp dir for a person to look at.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

from planner_operator.core import scheduling
from planner_operator.server.app import create_app
from tests.server.dashboard.conftest import ENV, TOKEN, applied_state, serve

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
pytestmark = pytest.mark.skipif(
    not (CHROMIUM.exists() and CHROMEDRIVER.exists()) and not os.environ.get("PLANNER_CI"),
    reason="needs Debian's chromium and chromium-driver (.ci/run installs them: "
    "apt-get install chromium chromium-driver)",
)

MORNING = "job-application-agent/jobs/morning-job-check"
LAPTOP = (1366, 900)
PHONE = (390, 844)
FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)


@dataclass(frozen=True)
class Site:
    url: str
    shots: Path


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    root = tmp_path_factory.mktemp("dashboard-e2e")
    settings = applied_state(root / "state")
    with serve(create_app(settings, ENV)) as url:
        yield Site(url, root)


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebDriver]:
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}")
    options.add_argument(f"--window-size={LAPTOP[0]},{LAPTOP[1]}")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("SE_OFFLINE", "true")  # Selenium Manager: never download a browser or driver
        driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(15)
    try:
        yield driver
    finally:
        driver.quit()


def wait(driver: WebDriver, timeout: float = 15.0) -> WebDriverWait[WebDriver]:
    return WebDriverWait(
        driver, timeout, poll_frequency=0.1, ignored_exceptions=(StaleElementReferenceException,)
    )


def as_laptop(driver: WebDriver) -> None:
    driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})


def as_phone(driver: WebDriver) -> None:
    width, height = PHONE
    metrics = {"width": width, "height": height, "deviceScaleFactor": 2, "mobile": True}
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", metrics)


def screenshot(driver: WebDriver, path: Path) -> Path:
    """The whole page, not just the viewport, so the screenshot shows every table."""
    shot = driver.execute_cdp_cmd(
        "Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True}
    )
    path.write_bytes(base64.b64decode(shot["data"]))
    return path


def job_row(driver: WebDriver, key: str) -> WebElement:
    return driver.find_element(By.CSS_SELECTOR, f'tr.job[data-key="{key}"]')


def test_planner_shows_the_example_jobs_with_next_runs_in_their_timezone(
    site: Site, browser: WebDriver
) -> None:
    as_laptop(browser)
    before = datetime.now(UTC) - timedelta(seconds=1)
    browser.get(f"{site.url}/planner/")
    assert browser.title.startswith("Planner")
    row = job_row(browser, MORNING)
    assert row.is_displayed()
    assert "Job Application Agent" in row.text
    assert "morning-job-check" in row.text
    shown = row.find_element(By.CSS_SELECTOR, "time.next-run")
    at = datetime.fromisoformat(shown.get_attribute("datetime") or "")
    expected = scheduling.next_fires("0 9 * * 1", "Europe/Berlin", start=before, count=1)[0].at
    assert at == expected and at.utcoffset() == expected.utcoffset()
    zone = expected.astimezone(ZoneInfo("Europe/Berlin")).tzname()
    assert shown.text.endswith(f"09:00 {zone} (UTC+0{1 if zone == 'CET' else 2}:00)")
    assert "in " in row.text  # the relative hint, e.g. "in 3 d"
    keys = {
        row.get_attribute("data-key") for row in browser.find_elements(By.CSS_SELECTOR, "tr.job")
    }
    assert {MORNING, "job-application-agent/jobs/daily-application-check"} <= keys
    assert browser.find_element(By.ID, "reconcile").is_displayed()


def test_a_person_logs_in_runs_a_job_now_and_sees_the_run(site: Site, browser: WebDriver) -> None:
    as_laptop(browser)
    browser.get(f"{site.url}/planner/")
    job_row(browser, MORNING).find_element(By.LINK_TEXT, "Log in to run").click()
    wait(browser).until(ec.presence_of_element_located((By.ID, "token"))).send_keys(TOKEN)
    browser.find_element(By.CSS_SELECTOR, "form.login button[type=submit]").click()
    wait(browser).until(ec.url_to_be(f"{site.url}/planner/"))

    job_row(browser, MORNING).find_element(By.CSS_SELECTOR, "button.run-now").click()
    wait(browser).until(ec.url_contains("/planner/runs/"))
    run_path = browser.current_url.removeprefix(site.url).split("?")[0]
    wait(browser).until(ec.text_to_be_present_in_element((By.ID, "outcome"), "succeeded"))
    message = browser.find_element(By.ID, "rendered").text
    assert message.startswith("Good morning! Check job boards for new postings matching")

    browser.find_element(By.LINK_TEXT, "Runs").click()
    wait(browser).until(ec.presence_of_element_located((By.CSS_SELECTOR, "tr.run")))
    newest = browser.find_elements(By.CSS_SELECTOR, "tr.run")[0]
    assert newest.find_element(By.TAG_NAME, "a").get_attribute("href") == site.url + run_path
    assert "succeeded" in newest.find_element(By.CSS_SELECTOR, "td.outcome").text
    assert "Good morning! Check job boards" in newest.find_element(By.CSS_SELECTOR, ".message").text
    assert "manual" in newest.text and "UTC" in newest.text

    browser.find_element(By.LINK_TEXT, "Planner").click()
    last = job_row(browser, MORNING).find_element(By.CSS_SELECTOR, "td.last-run")
    assert "succeeded" in last.text
    assert last.find_element(By.TAG_NAME, "a").get_attribute("href") == site.url + run_path


def test_pages_fit_a_phone_and_a_laptop(site: Site, browser: WebDriver) -> None:
    as_laptop(browser)
    browser.get(f"{site.url}/planner/")
    laptop = screenshot(browser, site.shots / "planner-laptop.png")
    assert browser.find_element(By.CSS_SELECTOR, "#jobs thead").is_displayed()
    assert browser.execute_script("return window.innerWidth") == LAPTOP[0]
    as_phone(browser)
    try:
        for path in (
            "/planner/",
            "/planner/runs",
            "/planner/runs/1",
            "/planner/agents/sales-agent",
        ):
            browser.get(f"{site.url}{path}")
            assert browser.execute_script("return window.innerWidth") == PHONE[0]
            overflow = browser.execute_script(
                "return document.documentElement.scrollWidth - window.innerWidth"
            )
            assert overflow <= 0, f"{path} scrolls sideways by {overflow}px on a phone"
        browser.get(f"{site.url}/planner/")
        phone = screenshot(browser, site.shots / "planner-phone.png")
        assert not browser.find_element(By.CSS_SELECTOR, "#jobs thead").is_displayed()  # cards
        row = job_row(browser, MORNING)
        assert row.is_displayed()
        assert row.find_element(By.CSS_SELECTOR, "time.next-run").is_displayed()
        assert row.find_element(By.CSS_SELECTOR, "td.actions").is_displayed()
    finally:
        as_laptop(browser)
    assert laptop.stat().st_size > 10_000 and phone.stat().st_size > 10_000
    if os.environ.get("PLANNER_KEEP_SCREENSHOTS"):
        keep = Path(os.environ["PLANNER_KEEP_SCREENSHOTS"])
        keep.mkdir(parents=True, exist_ok=True)
        for shot in (laptop, phone):
            (keep / shot.name).write_bytes(shot.read_bytes())
