"""The edit dialogs as a person uses them, in headless Chromium, against a real git remote.

The operator follows a local bare repository (``run --repo``) in pull-request mode; the forge is
``tests/fakes/github_server.py`` over that same repository. A person creates a job from a
preset, edits it, pauses it and deletes a trigger, each through a dialog that previews the
diff and the plan before saving; the test plays the reviewer (merges each pull request by
moving ``main`` to its branch, then reconciles as the watcher would) and finally reads the
branches' commits, the pull request bodies and the file, whose comments must have survived.
Also here: a conflict (the file changed under an open dialog), the keyboard-only path, and
the dialogs on a 390 px phone.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import git
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import Select

from planner_operator.backends.select import open_backends
from planner_operator.core.settings import Settings
from planner_operator.edit.target import Target
from planner_operator.reconcile.engine import SourceSpec, reconcile
from planner_operator.server.app import create_app
from tests.fakes.github_server import FakeGitHub
from tests.server.dashboard.conftest import ENV, TOKEN, serve
from tests.server.dashboard.test_e2e_browser import (  # noqa: F401 -- `browser` is a fixture
    PHONE,
    as_laptop,
    as_phone,
    browser,
    pytestmark,
    wait,
)
from tests.support.git_remote import seeded_remote

FILE = "agents/sales-agent.yaml"
COMMENTS = (
    "# Qualifies every new HubSpot contact and keeps the pipeline moving.",
    "enabled: false   # paused until the forecast workflow is finished",
    "id: qualify-lead   # empty input: the event payload is the workflow's input",
)


@dataclass
class EditSite:
    url: str
    bare: Path
    person: git.Repo
    forge: FakeGitHub
    settings: Settings

    def main(self) -> str:
        with git.Repo(self.bare) as repo:
            return str(repo.commit("refs/heads/main").hexsha)

    def merge(self, branch: str) -> None:
        """The reviewer merges (a fast-forward), and the watcher applies what landed."""
        with git.Repo(self.bare) as repo:
            sha = repo.commit(f"refs/heads/{branch}").hexsha
            repo.git.update_ref("refs/heads/main", sha)
        self.apply()

    def apply(self) -> None:
        outcome = reconcile(
            SourceSpec(repo=self.bare, rev="main"),
            self.settings,
            backends_factory=lambda s: open_backends(s, env={}),
        )
        assert outcome.applied is not None and outcome.applied.ok, outcome

    def push(self, path: str, text: str, message: str) -> str:
        """A person's commit straight to main (what the dialog must not overwrite)."""
        self.person.git.pull("-q", "--rebase", "origin", "main")
        (Path(self.person.working_dir) / path).write_text(text)
        self.person.index.add([path])
        self.person.index.commit(message)
        self.person.git.push("-q", "origin", "HEAD:main")
        return str(self.person.head.commit.hexsha)

    def show(self, rev: str, path: str = FILE) -> str:
        with git.Repo(self.bare) as repo:
            return str(repo.git.show(f"{rev}:{path}"))


@pytest.fixture(scope="module")
def edit_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EditSite]:
    root = tmp_path_factory.mktemp("dashboard-edit")
    bare, person = seeded_remote(root)
    settings = Settings.resolve(state_dir=root / "state", env={})
    forge = FakeGitHub("acme/agents", bare)
    with forge.running():
        site = EditSite("", bare, person, forge, settings)
        site.apply()
        env = {
            **ENV,
            "PLANNER_EDIT_MODE": "pr",
            "PLANNER_EDIT_AUTHOR": "Planner Bot <bot@example.com>",
            "PLANNER_FORGE_REPO": forge.repo,
            "PLANNER_FORGE_URL": forge.url,
            "PLANNER_FORGE_TOKEN": forge.token,
        }
        app = create_app(settings, env, edits=Target(repo=str(bare)))
        with serve(app) as url:
            site.url = url
            yield site
    person.close()


@pytest.fixture
def page(edit_site: EditSite, browser: WebDriver) -> WebDriver:  # noqa: F811
    """The sales agent's page, logged in, at laptop size."""
    as_laptop(browser)
    browser.get(f"{edit_site.url}/planner/login?next=/planner/agents/sales-agent")
    if browser.find_elements(By.ID, "token"):
        browser.find_element(By.ID, "token").send_keys(TOKEN)
        browser.find_element(By.CSS_SELECTOR, "form.login button[type=submit]").click()
    browser.get(f"{edit_site.url}/planner/agents/sales-agent")
    wait(browser).until(ec.visibility_of_element_located((By.CSS_SELECTOR, ".edit-bar button")))
    return browser


def dialog(driver: WebDriver, name: str) -> WebElement:
    found = wait(driver).until(ec.presence_of_element_located((By.ID, f"{name}-dialog")))
    wait(driver).until(lambda d: found.get_attribute("open") is not None)
    return found


def role(scope: WebElement, name: str) -> WebElement:
    return scope.find_element(By.CSS_SELECTOR, f'[data-role="{name}"]')


def text(element: WebElement) -> str:
    """All of an element's text, shown or scrolled out of view (``.text`` is only what shows)."""
    return str(element.get_attribute("textContent") or "")


def set_value(driver: WebDriver, element: WebElement, value: str) -> None:
    """A time input takes typing in a locale's format; set it as the picker would."""
    driver.execute_script(
        "arguments[0].value = arguments[1];"
        "arguments[0].dispatchEvent(new Event('input', {bubbles: true}));",
        element,
        value,
    )


def preview_and_save(driver: WebDriver, box: WebElement, expect_in_diff: str) -> str:
    """Preview (the dry run: diff and plan), then Save; the pull request link's href."""
    save = role(box, "save")
    preview = box.find_elements(By.CSS_SELECTOR, '[data-role="preview"]')
    if preview and not save.is_enabled():  # the change dialog previews on opening
        preview[0].click()
    wait(driver).until(
        lambda d: expect_in_diff in text(role(box, "outcome-diff")) or text(role(box, "conflict"))
    )
    diff = text(role(box, "outcome-diff"))
    assert expect_in_diff in diff, (diff, text(role(box, "conflict")))
    assert "Preview" in role(box, "outcome-title").text
    assert role(box, "outcome-plan").text.startswith("Plan: ")
    wait(driver).until(lambda d: save.is_enabled())
    save.click()
    link = wait(driver).until(lambda d: box.find_elements(By.CSS_SELECTOR, "a.pr-link"))
    assert role(box, "outcome-title").text == "Saved"
    return str(link[0].get_attribute("href"))


def card(driver: WebDriver, site: EditSite, key: str) -> WebElement:
    """The card of ``key`` once the watcher has applied it (reloading until it shows)."""

    def shown(d: WebDriver) -> list[WebElement]:
        d.get(f"{site.url}/planner/agents/sales-agent")
        return d.find_elements(By.CSS_SELECTOR, f'tr[data-key="{key}"]')

    return wait(driver).until(shown)[0]


def branch_of(site: EditSite, number: int) -> str:
    pull = next(p for p in site.forge.pulls if p["number"] == number)
    return str(pull["head"]["ref"])


def test_create_edit_pause_and_delete_through_the_dialogs_become_reviewed_commits(
    edit_site: EditSite, page: WebDriver
) -> None:
    site, driver = edit_site, page
    start = site.main()

    # + Add job, from the "weekdays at a time" preset
    driver.find_element(By.CSS_SELECTOR, 'button[data-edit="add"][data-kind="job"]').click()
    box = dialog(driver, "job")
    box.find_element(By.ID, "job-name").send_keys("pipeline-check")
    Select(box.find_element(By.ID, "job-preset")).select_by_value("weekdays")
    set_value(driver, box.find_element(By.ID, "job-time"), "07:30")
    fires = role(box, "fires")
    wait(driver).until(lambda d: len(fires.find_elements(By.TAG_NAME, "li")) == 5)
    wait(driver).until(lambda d: "30 7 * * 1-5" in role(box, "schedule-text").text)
    assert all("07:30" in li.text for li in fires.find_elements(By.TAG_NAME, "li"))
    template = box.find_element(By.ID, "job-template")
    template.send_keys("Good {weekday}: check {stale} deals")
    problems = role(box, "template-problems")
    wait(driver).until(lambda d: "{stale}" in problems.text)
    assert "{weekday}" in role(box, "variables").text
    template.clear()
    template.send_keys("Good morning: {weekday} pipeline check.")
    wait(driver).until(lambda d: problems.text == "")
    first = preview_and_save(driver, box, "+    - name: pipeline-check")
    assert first == "https://github.com/acme/agents/pull/1"
    assert site.main() == start  # proposed, not committed to main
    role(box, "close").click()
    site.merge(branch_of(site, 1))

    # Edit it: the dialog opens pre-filled from the file; move it to 08:15
    row = card(driver, site, "sales-agent/jobs/pipeline-check")
    row.find_element(By.CSS_SELECTOR, '[data-edit="edit"]').click()
    box = dialog(driver, "job")
    assert box.find_element(By.ID, "job-name").get_attribute("value") == "pipeline-check"
    assert Select(box.find_element(By.ID, "job-preset")).first_selected_option.text == (
        "Weekdays at a time"
    )
    assert box.find_element(By.ID, "job-time").get_attribute("value") == "07:30"
    set_value(driver, box.find_element(By.ID, "job-time"), "08:15")
    wait(driver).until(lambda d: "15 8 * * 1-5" in role(box, "schedule-text").text)
    preview_and_save(driver, box, "+      schedule: 15 8 * * 1-5")
    role(box, "close").click()
    site.merge(branch_of(site, 2))

    # Pause it: the change dialog previews `enabled: false`, Confirm proposes it
    row = card(driver, site, "sales-agent/jobs/pipeline-check")
    row.find_element(By.CSS_SELECTOR, '[data-edit="pause"]').click()
    box = dialog(driver, "change")
    assert role(box, "title").text == "Pause job pipeline-check"
    preview_and_save(driver, box, "+      enabled: false")
    role(box, "close").click()
    site.merge(branch_of(site, 3))

    # Delete a trigger
    row = card(driver, site, "sales-agent/triggers/deal-stage-changed")
    row.find_element(By.CSS_SELECTOR, '[data-edit="delete"]').click()
    box = dialog(driver, "change")
    preview_and_save(driver, box, "-    - name: deal-stage-changed")
    role(box, "close").click()

    # the review trail: one branch and one commit per save, by the configured author
    assert [p["number"] for p in site.forge.pulls] == [1, 2, 3, 4]
    base = start
    with git.Repo(site.bare) as repo:
        for number in (1, 2, 3, 4):
            branch = branch_of(site, number)
            assert branch.startswith("planner/sales-agent/")
            commits = list(repo.iter_commits(f"{base}..refs/heads/{branch}"))
            assert len(commits) == 1, branch
            assert commits[0].author.name == "Planner Bot"
            assert commits[0].author.email == "bot@example.com"
            base = commits[0].hexsha
    bodies = [str(p["body"]) for p in site.forge.pulls]
    assert "pipeline-check" in bodies[0] and "```diff" in bodies[0]
    assert "deal-stage-changed" in bodies[3]
    final = site.show(f"refs/heads/{branch_of(site, 4)}")
    for comment in COMMENTS:
        assert comment in final
    assert "- name: deal-stage-changed" not in final
    assert "schedule: 15 8 * * 1-5" in final and "enabled: false" in final


def test_a_file_changed_under_an_open_dialog_is_refused_and_the_form_stays_filled(
    edit_site: EditSite, page: WebDriver
) -> None:
    site, driver = edit_site, page
    row = card(driver, site, "sales-agent/jobs/weekly-pipeline-review")
    row.find_element(By.CSS_SELECTOR, '[data-edit="edit"]').click()
    box = dialog(driver, "job")
    template = box.find_element(By.ID, "job-template")
    template.send_keys(" Be brief.")
    typed = template.get_attribute("value")
    current = site.show("refs/heads/main")
    newer = site.push(FILE, current.replace("name: Sales Agent", "name: Sales Team"), "Rename")
    role(box, "preview").click()
    conflict = wait(driver).until(ec.visibility_of(role(box, "conflict")))
    assert newer[:12] in conflict.text and "newer revision" in conflict.text
    assert template.get_attribute("value") == typed  # nothing lost
    assert not role(box, "save").is_enabled()
    role(box, "reload").click()
    wait(driver).until(lambda d: "reloaded" in role(box, "where").text)
    assert template.get_attribute("value") == typed
    link = preview_and_save(driver, box, "Be brief.")
    assert link.startswith("https://github.com/acme/agents/pull/")
    role(box, "close").click()


def test_the_dialogs_work_with_the_keyboard_alone(edit_site: EditSite, page: WebDriver) -> None:
    driver = page
    add = driver.find_element(By.CSS_SELECTOR, 'button[data-edit="add"][data-kind="trigger"]')
    driver.execute_script("arguments[0].focus()", add)
    driver.switch_to.active_element.send_keys(Keys.ENTER)
    box = dialog(driver, "trigger")
    inside = "return arguments[0].contains(document.activeElement)"
    wait(driver).until(lambda d: d.execute_script(inside, box))
    for _ in range(8):
        driver.switch_to.active_element.send_keys(Keys.TAB)
        assert driver.execute_script(inside, box), "focus left the open dialog"
    driver.switch_to.active_element.send_keys(Keys.ESCAPE)
    wait(driver).until(lambda d: box.get_attribute("open") is None)
    assert driver.switch_to.active_element == add  # focus back where it was


def test_the_dialogs_fit_a_phone(edit_site: EditSite, page: WebDriver) -> None:
    driver = page
    as_phone(driver)
    try:
        driver.get(f"{edit_site.url}/planner/agents/sales-agent")
        wide = "return document.documentElement.scrollWidth - window.innerWidth"
        assert driver.execute_script(wide) <= 0
        for kind in ("job", "trigger"):
            driver.find_element(
                By.CSS_SELECTOR, f'button[data-edit="add"][data-kind="{kind}"]'
            ).click()
            box = dialog(driver, kind)
            right = driver.execute_script("return arguments[0].getBoundingClientRect().right", box)
            assert right <= PHONE[0]
            widest = driver.execute_script(
                "return Math.max(...Array.from(arguments[0].querySelectorAll('input, select, "
                "textarea, button')).filter(e => e.offsetParent).map(e => "
                "e.getBoundingClientRect().right))",
                box,
            )
            assert widest <= PHONE[0], f"a {kind} dialog control sticks out: {widest}px"
            preview = role(box, "preview")
            driver.execute_script("arguments[0].scrollIntoView()", preview)
            assert preview.is_displayed()
            role(box, "close").click()
    finally:
        as_laptop(driver)
