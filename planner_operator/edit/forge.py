"""Where pull requests are opened: one small Protocol, GitHub's REST API behind it.

Two calls are all an edit needs: find the open pull request for a branch (so a retried save
returns the pull request it already opened instead of failing), and open one. That is small
enough for a GitLab merge-request implementation to sit beside this one.

The token comes from ``PLANNER_FORGE_TOKEN`` and goes only into the Authorization header:
never into a URL (proxy logs), an error message or a log line. The base URL is configurable
(``PLANNER_FORGE_URL``) for GitHub Enterprise, and so the tests' fake server can stand in.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import httpx

from planner_operator.core import variables
from planner_operator.errors import AuthError, BackendError, PermanentError, RetryableError

TIMEOUT = httpx.Timeout(20.0, connect=5.0)
API_VERSION = "2022-11-28"  # GitHub's REST API version header


@dataclass(frozen=True)
class PullRequest:
    number: int
    url: str  # the page a person opens (html_url), not the API address
    head: str
    base: str


class Forge(Protocol):
    """A code host that takes pull (merge) requests."""

    name: str

    def find_open(self, *, head: str, base: str) -> PullRequest | None:
        """The open pull request from branch ``head`` into ``base``, if there is one."""
        ...

    def open(self, *, head: str, base: str, title: str, body: str) -> PullRequest:
        """Open a pull request from ``head`` into ``base``; an existing one is returned."""
        ...


class GitHub:
    """GitHub's REST API: ``POST /repos/{owner}/{repo}/pulls`` and
    ``GET /repos/{owner}/{repo}/pulls?head=owner:branch&state=open``."""

    name = "github"

    def __init__(
        self,
        repo: str,
        token: str,
        *,
        base_url: str = "https://api.github.com",
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        owner, _, name = repo.partition("/")
        if not owner or not name or "/" in name:
            raise PermanentError(f"PLANNER_FORGE_REPO={repo!r} is not `owner/name`")
        self.owner, self.repo = owner, name
        self._client = httpx.Client(
            base_url=base_url.rstrip("/"),
            headers={
                "Authorization": f"Bearer {token}",
                "Accept": "application/vnd.github+json",
                "X-GitHub-Api-Version": API_VERSION,
                "User-Agent": "planner-operator",
            },
            timeout=TIMEOUT,
            transport=transport,
        )

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> GitHub | None:
        """None when no repository is configured (the branch is pushed, no PR is opened)."""
        repo = variables.FORGE_REPO.read(env)
        if repo is None:
            return None
        token = variables.FORGE_TOKEN.read(env)
        if not token:
            raise AuthError(
                "PLANNER_FORGE_REPO is set but PLANNER_FORGE_TOKEN is not: set the token (a "
                "GitHub token that may write pull requests), or unset the repository",
                backend=cls.name,
            )
        return cls(repo, token, base_url=variables.FORGE_URL.read(env))

    def close(self) -> None:
        self._client.close()

    @property
    def _pulls(self) -> str:
        return f"/repos/{self.owner}/{self.repo}/pulls"

    def find_open(self, *, head: str, base: str) -> PullRequest | None:
        params = {"head": f"{self.owner}:{head}", "state": "open", "base": base}
        found = self._call("GET", self._pulls, params=params)
        if not isinstance(found, list):
            raise PermanentError("answered the pull request list with a non-list", backend="github")
        return next((p for p in map(_pull, found) if p.head == head), None)

    def open(self, *, head: str, base: str, title: str, body: str) -> PullRequest:
        payload = {"title": title, "head": head, "base": base, "body": body}
        try:
            return _pull(self._call("POST", self._pulls, json=payload))
        except _Unprocessable as exc:
            if exc.already_exists:  # a retried save: the one opened the first time
                existing = self.find_open(head=head, base=base)
                if existing is not None:
                    return existing
            raise PermanentError(
                f"refused to open the pull request {head} -> {base}: {exc}", backend="github"
            ) from None

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self._client.request(method, path, **kwargs)
        except httpx.TimeoutException:
            raise RetryableError(f"{method} {path} timed out", backend="github") from None
        except httpx.HTTPError as exc:
            raise RetryableError(
                f"{method} {path} failed: {type(exc).__name__}", backend="github"
            ) from None
        if response.status_code in (401, 403):
            raise AuthError(
                f"{method} {path}: {response.status_code} {_message(response)} (check "
                "PLANNER_FORGE_TOKEN: it must be valid and allowed to write pull requests)",
                backend="github",
                status=response.status_code,
            )
        if response.status_code == 422:
            raise _Unprocessable(response)
        if response.status_code == 429 or response.status_code >= 500:
            raise RetryableError(
                f"{method} {path}: {response.status_code} {_message(response)}",
                backend="github",
                status=response.status_code,
            )
        if response.status_code >= 400:
            raise PermanentError(
                f"{method} {path}: {response.status_code} {_message(response)}",
                backend="github",
                status=response.status_code,
            )
        try:
            return response.json()
        except ValueError:
            raise PermanentError(
                f"{method} {path}: the answer is not JSON", backend="github"
            ) from None


class _Unprocessable(BackendError):
    """GitHub's 422 "Validation Failed": ``errors`` say which rule (see the fake's docstring)."""

    def __init__(self, response: httpx.Response) -> None:
        errors = _body(response).get("errors") or []
        self.details = [e for e in errors if isinstance(e, dict)]
        texts = [str(e.get("message") or f"{e.get('field')} {e.get('code')}") for e in self.details]
        super().__init__("; ".join(texts) or _message(response), backend="github", status=422)

    @property
    def already_exists(self) -> bool:
        return any(
            str(e.get("message", "")).startswith("A pull request already exists")
            for e in self.details
        )


def _body(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _message(response: httpx.Response) -> str:
    return str(_body(response).get("message") or response.reason_phrase)


def _pull(data: Any) -> PullRequest:
    try:
        return PullRequest(
            number=int(data["number"]),
            url=str(data["html_url"]),
            head=str(data["head"]["ref"]),
            base=str(data["base"]["ref"]),
        )
    except (KeyError, TypeError, ValueError):
        raise PermanentError(
            "answered with a pull request of an unknown shape", backend="github"
        ) from None
