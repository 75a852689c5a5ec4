"""A save through ``propose.Editor``: work tree, commit and pull request, conflicts, errors.

The remote is a real bare repository; the forge is the fake GitHub over that repository.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import git
import pytest

from planner_operator.core.settings import Settings
from planner_operator.edit import forge as forge_mod
from planner_operator.edit import propose
from planner_operator.errors import AuthError, EditConflict, EditError, EditInvalid, NotFoundError
from tests.edit.conftest import AGENTS, JOB, Remote, editor
from tests.fakes.github_server import FakeGitHub

KEY = "sales-agent/jobs/pipeline-check"


def add_job(**kw: object) -> propose.Change:
    fields: dict[str, object] = {
        "agent": "sales-agent",
        "kind": "job",
        "name": "pipeline-check",
        "op": "create",
        "item": JOB,
    }
    return propose.Change(**{**fields, **kw})  # type: ignore[arg-type]


def creates(proposal: propose.Proposal) -> list[str]:
    return [c["key"] for c in proposal.plan_json()["changes"] if c["op"] == "create"]


# -- work tree ---------------------------------------------------------------------------------


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    return Path(shutil.copytree(AGENTS, tmp_path / "agents"))


def test_a_dry_run_shows_diff_and_plan_and_writes_nothing(tree: Path, settings: Settings) -> None:
    before = (tree / "sales-agent.yaml").read_bytes()
    proposal = editor(settings, path=tree).propose(add_job(dry_run=True))
    assert proposal.status == "preview" and (tree / "sales-agent.yaml").read_bytes() == before
    assert "+    - name: pipeline-check\n" in proposal.diff
    assert proposal.diff.startswith(f"--- a/{tree}/sales-agent.yaml\n+++ b/{tree}/sales-agent.yaml")
    assert KEY in creates(proposal)
    # the markdown plan a reviewer sees: next fires and a sample of the rendered message
    assert "pipeline-check" in proposal.markdown and "Good morning: Monday" in proposal.markdown
    assert proposal.summary.startswith("Plan: ")


def test_a_save_writes_the_file_atomically_and_names_the_next_revision(
    tree: Path, settings: Settings
) -> None:
    ed = editor(settings, path=tree)
    opened = ed.source("sales-agent")
    proposal = ed.propose(add_job(base=opened.revision))
    assert proposal.status == "written" and proposal.base_revision == opened.revision
    text = (tree / "sales-agent.yaml").read_text()
    assert "name: pipeline-check" in text
    assert (
        proposal.revision
        == propose.file_revision(text.encode())
        == ed.source("sales-agent").revision
    )
    assert not [p for p in tree.iterdir() if p.name.startswith(".")]  # no temporary file left


def test_a_stale_base_is_refused_naming_the_newer_revision(tree: Path, settings: Settings) -> None:
    ed = editor(settings, path=tree)
    opened = ed.source("sales-agent")
    file = tree / "sales-agent.yaml"
    file.write_text(file.read_text().replace("14", "21"))
    newer = ed.source("sales-agent").revision
    edited = file.read_bytes()
    with pytest.raises(EditConflict) as caught:
        ed.propose(add_job(base=opened.revision))
    assert caught.value.current == newer and caught.value.base == opened.revision
    assert newer[:19] in str(caught.value)
    assert file.read_bytes() == edited  # nothing overwritten


def test_an_edit_that_breaks_the_file_is_invalid_with_positions(
    tree: Path, settings: Settings
) -> None:
    bad = {**JOB, "schedule": "0 25 * * *"}
    with pytest.raises(EditInvalid) as caught:
        editor(settings, path=tree).propose(add_job(item=bad))
    error = caught.value.errors[0]
    assert error.file == str(tree / "sales-agent.yaml") and "schedule" in error.path
    text = (tree / "sales-agent.yaml").read_text()
    assert "0 25" not in text  # not written


def test_missing_and_existing_items_and_agents(tree: Path, settings: Settings) -> None:
    ed = editor(settings, path=tree)
    with pytest.raises(NotFoundError, match="POST /api/agents"):
        ed.propose(add_job(agent="nobody"))
    with pytest.raises(EditError, match="already exists"):
        ed.propose(add_job(name="weekly-pipeline-review"))
    with pytest.raises(NotFoundError):
        ed.propose(add_job(name="nope", op="delete", item=None))
    with pytest.raises(EditError, match="already exists"):
        ed.propose(propose.Change("sales-agent", "agent", "sales-agent", "create", {"name": "S"}))
    created = ed.propose(propose.Change("ops", "agent", "ops", "create", {"name": "Ops"}))
    assert created.status == "written" and (tree / "ops.yaml").exists()
    assert ed.propose(add_job(agent="ops")).status == "written"


def test_off_refuses_every_save(tree: Path, settings: Settings) -> None:
    with pytest.raises(EditError, match="PLANNER_EDIT_MODE=off"):
        editor(settings, path=tree, mode="off").propose(add_job())


# -- git: commit -------------------------------------------------------------------------------


def test_commit_mode_commits_one_file_to_the_watched_branch(
    remote: Remote, settings: Settings
) -> None:
    ed = editor(settings, repo=str(remote.bare), mode="commit")
    opened = ed.source("sales-agent")
    proposal = ed.propose(add_job(base=opened.revision))
    head = remote.head()
    assert proposal.status == "committed" and proposal.commit == head.hexsha == proposal.revision
    assert head.parents[0].hexsha == opened.revision
    assert (head.author.name, head.author.email) == ("Planner Bot", "bot@example.com")
    assert list(head.stats.files) == ["agents/sales-agent.yaml"]
    assert str(head.message).startswith("Add job sales-agent/pipeline-check\n")
    assert "name: pipeline-check" in remote.show("main", "agents/sales-agent.yaml")


def test_a_branch_that_moved_elsewhere_is_no_conflict(remote: Remote, settings: Settings) -> None:
    ed = editor(settings, repo=str(remote.bare), mode="commit")
    opened = ed.source("sales-agent")
    other = "agents/engineering-agent.yaml"
    remote.commit(other, remote.show("main", other) + "# a note\n", "Note")
    proposal = ed.propose(add_job(base=opened.revision))
    assert proposal.status == "committed" and proposal.base_revision == opened.revision
    assert remote.show("main", other).endswith("# a note")


def test_a_file_changed_since_the_base_is_refused_with_the_newer_commit(
    remote: Remote, settings: Settings
) -> None:
    ed = editor(settings, repo=str(remote.bare), mode="commit")
    opened = ed.source("sales-agent")
    path = "agents/sales-agent.yaml"
    newer = remote.commit(path, remote.show("main", path).replace("14", "21") + "\n", "Stale")
    with pytest.raises(EditConflict) as caught:
        ed.propose(add_job(base=opened.revision))
    assert caught.value.current == newer and newer[:12] in str(caught.value)
    assert remote.head().hexsha == newer  # nothing pushed


# -- git: pull request -------------------------------------------------------------------------


@pytest.fixture
def github(remote: Remote) -> Iterator[FakeGitHub]:
    fake = FakeGitHub("acme/agents", remote.bare)
    with fake.running():
        yield fake


def gh(fake: FakeGitHub, token: str | None = None) -> forge_mod.GitHub:
    return forge_mod.GitHub(fake.repo, token or fake.token, base_url=fake.url)


def test_pr_mode_pushes_a_branch_and_opens_a_pull_request_with_the_plan(
    remote: Remote, settings: Settings, github: FakeGitHub
) -> None:
    ed = editor(settings, repo=str(remote.bare), mode="pr", forge=gh(github))
    main_before = remote.head().hexsha
    proposal = ed.propose(add_job(base=ed.source("sales-agent").revision))
    assert proposal.status == "proposed" and remote.head().hexsha == main_before
    assert proposal.branch is not None and proposal.branch.startswith(
        "planner/sales-agent/pipeline-check-"
    )
    assert remote.head(proposal.branch).hexsha == proposal.commit
    pull = proposal.pull_request
    assert pull is not None and pull.url == "https://github.com/acme/agents/pull/1"
    created = next(s for s in github.seen if s.method == "POST")
    assert created.body["head"] == proposal.branch and created.body["base"] == "main"
    assert created.body["body"].startswith(proposal.markdown)
    assert created.body["title"] == "Add job sales-agent/pipeline-check"
    assert created.authorization == f"Bearer {github.token}"


def test_a_retried_save_reuses_its_branch_and_pull_request(
    remote: Remote, settings: Settings, github: FakeGitHub
) -> None:
    ed = editor(settings, repo=str(remote.bare), mode="pr", forge=gh(github))
    first = ed.propose(add_job())
    again = ed.propose(add_job())
    assert first.branch == again.branch and len(github.pulls) == 1
    assert again.pull_request == first.pull_request


def test_a_rejected_token_is_an_auth_error_that_does_not_show_it(
    remote: Remote, settings: Settings, github: FakeGitHub
) -> None:
    ed = editor(settings, repo=str(remote.bare), mode="pr", forge=gh(github, "wrong-token"))
    with pytest.raises(AuthError) as caught:
        ed.propose(add_job())
    assert "401 Bad credentials" in str(caught.value) and "wrong-token" not in str(caught.value)


def test_pr_mode_without_a_forge_pushes_the_branch_and_says_so(
    remote: Remote, settings: Settings
) -> None:
    proposal = editor(settings, repo=str(remote.bare), mode="pr").propose(add_job())
    assert proposal.pull_request is None and proposal.branch is not None
    assert "PLANNER_FORGE_REPO" in proposal.detail
    with git.Repo(remote.bare) as repo:
        assert f"refs/heads/{proposal.branch}" in [r.path for r in repo.refs]


def test_a_relative_path_to_the_remote_works(
    remote: Remote, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(remote.bare.parent)
    proposal = editor(settings, repo="remote.git", mode="commit").propose(add_job())
    assert proposal.status == "committed" and remote.head().hexsha == proposal.commit
