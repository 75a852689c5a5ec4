"""A protocol-faithful fake of the two GitHub REST endpoints an edit uses, over a real git repo.

The fake answers from a real bare repository (the test's "remote"), so "does the head branch
exist" and "are there commits between base and head" are git's answers, not the test's. Shapes
and status codes, with their sources (GitHub REST docs, "Pulls" and "Troubleshooting"/"Client
errors"; the 422 bodies as GitHub sends them, quoted in go-github issue #1441 and
vsoch/pull-request-action issue #86):

``POST /repos/{owner}/{repo}/pulls`` (docs: "Create a pull request")
    JSON body ``{title, head, base, body?, draft?, maintainer_can_modify?}``; ``head`` is
    ``branch`` or ``owner:branch``. **201** with the pull request object (``number``,
    ``html_url``, ``url``, ``state: "open"``, ``title``, ``body``, ``head``/``base`` as
    ``{label: "owner:ref", ref, sha}``, ``user``, ``created_at``...). A body that is not JSON:
    **400** ``{"message": "Problems parsing JSON"}``; not an object: **400** ``{"message":
    "Body should be a JSON object"}`` (docs: "Client errors"). Every 422 is ``{"message":
    "Validation Failed", "errors": [...], "documentation_url": ...}`` with, per rule:

    - a missing ``title``, ``head`` or ``base``: ``{"resource": "PullRequest", "field": F,
      "code": "missing_field"}`` (docs: error code ``missing_field``);
    - a ``head`` or ``base`` branch that does not exist: ``{"resource": "PullRequest",
      "field": "head"|"base", "code": "invalid"}``;
    - an open pull request for the same head and base: ``{"resource": "PullRequest", "code":
      "custom", "message": "A pull request already exists for owner:branch."}``;
    - no commits between them: ``{"resource": "PullRequest", "code": "custom", "message":
      "No commits between base and head"}``.

``GET /repos/{owner}/{repo}/pulls`` (docs: "List pull requests")
    Query ``state`` (``open`` default | ``closed`` | ``all``), ``head`` (``user:ref-name``),
    ``base``; **200** with a JSON array of pull request objects, newest first.

Auth (docs: "Authenticating"; "Troubleshooting")
    ``Authorization: Bearer <token>`` or ``token <token>``. A wrong token: **401**
    ``{"message": "Bad credentials", "documentation_url": ..., "status": "401"}``; none:
    **401** ``{"message": "Requires authentication", ...}``. An unknown repository: **404**
    ``{"message": "Not Found", ...}``.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import git
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.fakes.serving import run_app
from tests.support import canaries

# the session's canary (tests/support/canary_guard.py fails a test that prints it)
TOKEN = canaries.SESSION["PLANNER_FORGE_TOKEN"]
DOCS = "https://docs.github.com/rest/pulls/pulls#create-a-pull-request"


@dataclass
class Seen:
    method: str
    path: str
    query: dict[str, str]
    body: Any
    authorization: str | None


@dataclass
class FakeGitHub:
    """``repo`` (``owner/name``) backed by the bare repository ``git_dir``."""

    repo: str
    git_dir: Path
    token: str = TOKEN
    pulls: list[dict[str, Any]] = field(default_factory=list)
    seen: list[Seen] = field(default_factory=list)
    url: str = ""
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def owner(self) -> str:
        return self.repo.split("/")[0]

    def app(self) -> Starlette:
        path = f"/repos/{self.repo}/pulls"
        return Starlette(
            routes=[
                Route(path, self._create, methods=["POST"]),
                Route(path, self._list, methods=["GET"]),
                Route("/repos/{owner}/{name}/pulls", self._unknown, methods=["GET", "POST"]),
            ]
        )

    @contextmanager
    def running(self) -> Iterator[FakeGitHub]:
        with run_app(self.app()) as url:
            self.url = url
            yield self

    def close(self, number: int) -> None:
        """Close a pull request (as a merge or a person would)."""
        for pull in self.pulls:
            if pull["number"] == number:
                pull["state"] = "closed"

    # -- endpoints ------------------------------------------------------------------------------

    async def _create(self, request: Request) -> JSONResponse:
        raw = await request.body()
        self._record(request, raw)
        denied = self._auth(request)
        if denied is not None:
            return denied
        try:
            body = json.loads(raw)
        except ValueError:
            return JSONResponse(
                {"message": "Problems parsing JSON", "documentation_url": DOCS}, 400
            )
        if not isinstance(body, dict):
            return JSONResponse(
                {"message": "Body should be a JSON object", "documentation_url": DOCS}, 400
            )
        missing = [f for f in ("title", "head", "base") if not body.get(f)]
        if missing:
            return _invalid(
                [{"resource": "PullRequest", "field": f, "code": "missing_field"} for f in missing]
            )
        head = str(body["head"]).split(":", 1)[-1]
        base = str(body["base"])
        shas = {ref: self._sha(ref) for ref in (head, base)}
        bad = [f for f, ref in (("head", head), ("base", base)) if shas[ref] is None]
        if bad:
            return _invalid(
                [{"resource": "PullRequest", "field": f, "code": "invalid"} for f in bad]
            )
        with self.lock:
            if any(
                p for p in self._open() if p["head"]["ref"] == head and p["base"]["ref"] == base
            ):
                message = f"A pull request already exists for {self.owner}:{head}."
                return _invalid([{"resource": "PullRequest", "code": "custom", "message": message}])
            if not self._ahead(base, head):
                message = f"No commits between {base} and {head}"
                return _invalid([{"resource": "PullRequest", "code": "custom", "message": message}])
            pull = self._pull(len(self.pulls) + 1, body, head, base, shas)
            self.pulls.append(pull)
        return JSONResponse(pull, 201)

    async def _list(self, request: Request) -> JSONResponse:
        self._record(request, b"")
        denied = self._auth(request)
        if denied is not None:
            return denied
        state = request.query_params.get("state", "open")
        head = request.query_params.get("head")
        base = request.query_params.get("base")
        found = [
            p
            for p in reversed(self.pulls)
            if (state == "all" or p["state"] == state)
            and (head is None or p["head"]["label"] == head)
            and (base is None or p["base"]["ref"] == base)
        ]
        return JSONResponse(found, 200)

    async def _unknown(self, request: Request) -> JSONResponse:
        self._record(request, await request.body())
        return JSONResponse({"message": "Not Found", "documentation_url": DOCS}, 404)

    # -- helpers --------------------------------------------------------------------------------

    def _record(self, request: Request, raw: bytes) -> None:
        try:
            body: Any = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode("utf-8", "replace")
        self.seen.append(
            Seen(
                request.method,
                request.url.path,
                dict(request.query_params),
                body,
                request.headers.get("authorization"),
            )
        )

    def _auth(self, request: Request) -> JSONResponse | None:
        header = request.headers.get("authorization")
        if not header:
            body = {"message": "Requires authentication", "documentation_url": DOCS}
            return JSONResponse(body, 401)
        scheme, _, value = header.partition(" ")
        if scheme.lower() not in ("bearer", "token") or value != self.token:
            body = {"message": "Bad credentials", "documentation_url": DOCS, "status": "401"}
            return JSONResponse(body, 401)
        return None

    def _open(self) -> list[dict[str, Any]]:
        return [p for p in self.pulls if p["state"] == "open"]

    def _sha(self, branch: str) -> str | None:
        with git.Repo(self.git_dir) as repo:
            try:
                return str(repo.commit(f"refs/heads/{branch}").hexsha)
            except (git.BadName, ValueError):
                return None

    def _ahead(self, base: str, head: str) -> bool:
        with git.Repo(self.git_dir) as repo:
            count = repo.git.rev_list("--count", f"refs/heads/{base}..refs/heads/{head}")
        return int(count) > 0

    def _pull(
        self, number: int, body: dict[str, Any], head: str, base: str, shas: dict[str, str | None]
    ) -> dict[str, Any]:
        api = f"{self.url}/repos/{self.repo}/pulls/{number}"
        return {
            "url": api,
            "id": 1000 + number,
            "node_id": f"PR_fake{number}",
            "html_url": f"https://github.com/{self.repo}/pull/{number}",
            "number": number,
            "state": "open",
            "locked": False,
            "draft": bool(body.get("draft", False)),
            "title": body["title"],
            "body": body.get("body"),
            "user": {"login": "planner-bot", "type": "Bot"},
            "created_at": "2026-01-01T00:00:00Z",
            "head": {"label": f"{self.owner}:{head}", "ref": head, "sha": shas[head]},
            "base": {"label": f"{self.owner}:{base}", "ref": base, "sha": shas[base]},
            "maintainer_can_modify": bool(body.get("maintainer_can_modify", False)),
        }


def _invalid(errors: list[dict[str, Any]]) -> JSONResponse:
    body = {"message": "Validation Failed", "errors": errors, "documentation_url": DOCS}
    return JSONResponse(body, 422)
