"""The fake GitHub answers as its docstring says GitHub does (each 422 rule, 400, 401, 404)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import git
import httpx
import pytest

from tests.fakes.github_server import TOKEN, FakeGitHub


@pytest.fixture
def fake(tmp_path: Path) -> Iterator[FakeGitHub]:
    work = git.Repo.init(tmp_path / "work", initial_branch="main")
    (tmp_path / "work" / "a.txt").write_text("a\n")
    work.index.add(["a.txt"])
    actor = git.Actor("T", "t@example.com")
    work.index.commit("one", author=actor, committer=actor)
    work.git.branch("same")  # no commits ahead of main
    work.git.checkout("-q", "-b", "feature")
    (tmp_path / "work" / "a.txt").write_text("b\n")
    work.index.add(["a.txt"])
    work.index.commit("two", author=actor, committer=actor)
    bare = tmp_path / "bare.git"  # a bare clone keeps every branch under refs/heads
    git.Repo.clone_from(tmp_path / "work", bare, bare=True).close()
    work.close()
    with FakeGitHub("acme/agents", bare).running() as running:
        yield running


def client(fake: FakeGitHub, token: str | None = TOKEN) -> httpx.Client:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.Client(base_url=fake.url, headers=headers)


PULLS = "/repos/acme/agents/pulls"


def test_create_list_and_the_already_exists_rule(fake: FakeGitHub) -> None:
    with client(fake) as http:
        made = http.post(PULLS, json={"title": "T", "head": "feature", "base": "main", "body": "B"})
        assert made.status_code == 201
        pull = made.json()
        assert pull["number"] == 1 and pull["state"] == "open"
        assert pull["head"]["label"] == "acme:feature" and pull["base"]["ref"] == "main"
        again = http.post(PULLS, json={"title": "T", "head": "acme:feature", "base": "main"})
        assert again.status_code == 422
        assert again.json()["errors"] == [
            {
                "resource": "PullRequest",
                "code": "custom",
                "message": "A pull request already exists for acme:feature.",
            }
        ]
        listed = http.get(PULLS, params={"head": "acme:feature", "state": "open"}).json()
        assert [p["number"] for p in listed] == [1]
        assert http.get(PULLS, params={"head": "acme:other"}).json() == []
        fake.close(1)
        assert http.get(PULLS, params={"head": "acme:feature"}).json() == []
        assert len(http.get(PULLS, params={"state": "all"}).json()) == 1


def test_validation_failures_are_422_as_github_words_them(fake: FakeGitHub) -> None:
    with client(fake) as http:
        missing = http.post(PULLS, json={"head": "feature"})
        assert missing.status_code == 422 and missing.json()["message"] == "Validation Failed"
        assert {(e["field"], e["code"]) for e in missing.json()["errors"]} == {
            ("title", "missing_field"),
            ("base", "missing_field"),
        }
        unknown = http.post(PULLS, json={"title": "T", "head": "nope", "base": "main"})
        assert unknown.json()["errors"] == [
            {"resource": "PullRequest", "field": "head", "code": "invalid"}
        ]
        same = http.post(PULLS, json={"title": "T", "head": "same", "base": "main"})
        assert same.status_code == 422
        assert same.json()["errors"][0]["message"] == "No commits between main and same"
        assert http.post(PULLS, content=b"{").status_code == 400
        assert http.post(PULLS, json=[1]).json()["message"] == "Body should be a JSON object"


def test_tokens_and_repositories(fake: FakeGitHub) -> None:
    with client(fake, "wrong") as http:
        bad = http.get(PULLS)
        assert bad.status_code == 401 and bad.json()["message"] == "Bad credentials"
    with client(fake, None) as http:
        assert http.get(PULLS).json()["message"] == "Requires authentication"
    with client(fake) as http:
        assert http.get("/repos/acme/other/pulls").status_code == 404
