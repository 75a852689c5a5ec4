"""The table of every environment variable the operator reads: name, type, default, meaning.

This is the one place a variable is named. Code reads a value as ``variables.LOCK_TIMEOUT.read(
env)`` (typed, parsed by the one parser of its type in ``envparse``); the README's configuration
table is generated from ``ALL`` (``make readme`` after adding a row; ``make check`` and a test
fail while they differ); and ``unknown`` warns at start about ``PLANNER_*`` names that are not
here, with a did-you-mean for near misses, because a mistyped variable is otherwise silently
ignored.

Vendor variables that the SDKs define (``INNGEST_*``, ``COMPOSIO_*``) are here when the operator
reads them too. One kind of variable cannot be listed: an agent file's webhook trigger names its
own secret variable (``secret_env: GITHUB_HOOK_SECRET``); those are read through
``dynamic_secret`` and known only once the files or the ledger are read.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from planner_operator.core import envparse as p
from planner_operator.core.envparse import Var

PREFIX = "PLANNER_"
INNGEST_DEV_URL = "http://127.0.0.1:8288"
CHAT_PATH_DEFAULT = "/api/workforce/{agentId}/chat"

# -- where the operator keeps its state (core.settings) --------------------------------------
_S = "settings"
STATE_DIR: Var[Path] = Var(
    "PLANNER_STATE_DIR", "path", Path(".planner"), "operator state directory", _S, p.path,
    flag="--state-dir",
)  # fmt: skip
STATE_DB: Var[Path | None] = Var(
    "PLANNER_STATE_DB", "path", None, "embedded backend database", _S, p.path,
    flag="--state-db", shown_default="`<state-dir>/state.db`",
)  # fmt: skip
LEDGER_DB: Var[Path | None] = Var(
    "PLANNER_LEDGER_DB", "path", None, "ledger (what the operator owns) and apply lock", _S,
    p.path, flag="--ledger-db", shown_default="`<state-dir>/ledger.db`",
)  # fmt: skip
DATABASE_URL: Var[str | None] = Var(
    "PLANNER_DATABASE_URL", "secret URL", None,
    "`postgresql://user:password@host[:port]/dbname`: keep all state in one PostgreSQL "
    "database shared by every process and replica (migrated at start)", _S, p.database_url,
    secret=True, shown_default="SQLite files under the state directory",
)  # fmt: skip
LOCK_TIMEOUT: Var[float] = Var(
    "PLANNER_LOCK_TIMEOUT", "seconds", 30.0, "seconds a second applier waits before failing",
    _S, p.seconds(), flag="--lock-timeout",
)  # fmt: skip

# -- reading agent files (reconcile.source, reconcile.confirm) ------------------------------
WORKTREE_SETTLE: Var[float] = Var(
    "PLANNER_WORKTREE_SETTLE", "seconds", 0.2,
    "`reconcile --path`: a file is planned once two reads this far apart agree, and a delete "
    "is applied once a read this much later plans it too (a save caught half-way deletes "
    "nothing); 0 reads once. Watch mode uses its debounce", "cli.commands", p.seconds(),
)  # fmt: skip

# -- which backends (backends.select) ---------------------------------------------------------
_B = "backends.select"
SCHEDULE_BACKEND: Var[str | None] = Var(
    "PLANNER_SCHEDULE_BACKEND", "`local` \\| `inngest`", None,
    "force the schedule backend (auto: `inngest` when `INNGEST_DEV`, `INNGEST_SIGNING_KEY`, "
    "`INNGEST_BASE_URL` or `INNGEST_API_BASE_URL` is set)", _B, p.choice("local", "inngest"),
    shown_default="auto",
)  # fmt: skip
TRIGGER_BACKEND: Var[str | None] = Var(
    "PLANNER_TRIGGER_BACKEND", "`local` \\| `composio`", None,
    "force the trigger backend (auto: `composio` when `COMPOSIO_API_KEY` is set)", _B,
    p.choice("local", "composio"), shown_default="auto",
)  # fmt: skip

# -- Inngest (backends.inngest) ---------------------------------------------------------------
_I = "backends.inngest"
INNGEST_DEV: Var[str | None] = Var(
    "INNGEST_DEV", "flag or URL", None,
    f"`1` (the dev server at {INNGEST_DEV_URL}) or a dev server's URL: Inngest dev mode, no "
    "signing", _I, p.dev_server(INNGEST_DEV_URL), shown_default="off (production)",
)  # fmt: skip
INNGEST_SIGNING_KEY: Var[str | None] = Var(
    "INNGEST_SIGNING_KEY", "secret", None,
    "required in production mode; `serve` refuses to start without it", _I, p.text, secret=True,
)  # fmt: skip
INNGEST_BASE_URL: Var[str | None] = Var(
    "INNGEST_BASE_URL", "URL", None,
    "one base for the Inngest API and event API (the dev server's URL in dev mode)", _I, p.url,
    shown_default="Inngest Cloud",
)  # fmt: skip
INNGEST_API_BASE_URL: Var[str | None] = Var(
    "INNGEST_API_BASE_URL", "URL", None, "where the SDK syncs and the operator reads functions",
    _I, p.url, shown_default="`INNGEST_BASE_URL`, else `https://api.inngest.com`",
)  # fmt: skip
INNGEST_EVENT_API_BASE_URL: Var[str | None] = Var(
    "INNGEST_EVENT_API_BASE_URL", "URL", None, "where events are sent", _I, p.url,
    shown_default="`INNGEST_BASE_URL`, else `https://inn.gs`",
)  # fmt: skip
INNGEST_EVENT_KEY: Var[str | None] = Var(
    "INNGEST_EVENT_KEY", "secret", None, "event key, as in the Inngest SDK", _I, p.text,
    secret=True,
)  # fmt: skip
INNGEST_ENV: Var[str | None] = Var(
    "INNGEST_ENV", "text", None, "Inngest environment (branch environments), as in the SDK", _I,
    p.text,
)  # fmt: skip
INNGEST_SERVE_ORIGIN: Var[str] = Var(
    "INNGEST_SERVE_ORIGIN", "URL", "http://127.0.0.1:8000",
    "the public origin of `serve`: Inngest calls it, `serve` registers it, and a reconcile "
    "(CI, `run`) asks `serve` there to sync", _I, p.url,
    shown_default="`http://127.0.0.1:8000`",
)  # fmt: skip
INNGEST_SERVE_PATH: Var[str] = Var(
    "INNGEST_SERVE_PATH", "URL path", "/api/inngest", "the path of the Inngest endpoint", _I,
    p.url_path, shown_default="`/api/inngest`",
)  # fmt: skip
INNGEST_APP_ID: Var[str] = Var(
    "PLANNER_INNGEST_APP_ID", "text", "planner-operator",
    "the Inngest app: dedicate it to the operator (a sync replaces the app's function set)", _I,
    p.text, shown_default="`planner-operator`",
)  # fmt: skip
INNGEST_RETRIES: Var[int] = Var(
    "PLANNER_INNGEST_RETRIES", "whole number", 3, "retries per job function", _I, p.whole(0),
)  # fmt: skip
INNGEST_ENABLE_UNAUTHED_SYNC: Var[bool] = Var(
    "INNGEST_ENABLE_UNAUTHED_SYNC", "flag", True,
    "read by the Inngest SDK in `serve`: `false` accepts only signed sync requests (the "
    "operator signs its own, from `serve` and from a reconcile elsewhere)", _I, p.flag,
)  # fmt: skip
INNGEST_VERIFY_INTERVAL: Var[float] = Var(
    "PLANNER_INNGEST_VERIFY_INTERVAL", "seconds", 60.0,
    "`serve`: how often it reads back its Inngest app (functions, crons, the registered URL) "
    "for `/healthz`", "server.inngest_mount", p.seconds(positive=True),
)  # fmt: skip

# -- Composio (backends.composio) -------------------------------------------------------------
_C = "backends.composio"
COMPOSIO_API_KEY: Var[str | None] = Var(
    "COMPOSIO_API_KEY", "secret", None, "Composio project API key (the SDK's own variable)", _C,
    p.text, secret=True,
)  # fmt: skip
COMPOSIO_BASE_URL: Var[str] = Var(
    "COMPOSIO_BASE_URL", "URL", "https://backend.composio.dev",
    "Composio API base (https; http only on loopback)", _C, p.url,
    shown_default="`https://backend.composio.dev`",
)  # fmt: skip
COMPOSIO_BUDGET_PER_MIN: Var[int] = Var(
    "PLANNER_COMPOSIO_BUDGET_PER_MIN", "whole number", 2000,
    "the organisation's Composio request budget per minute (client-side limiter)", _C,
    p.whole(1, unit="requests per minute"),
)  # fmt: skip
COMPOSIO_BUDGET_SHARE: Var[float] = Var(
    "PLANNER_COMPOSIO_BUDGET_SHARE", "share (0, 1]", 0.5,
    "the share of that budget the operator may use (agents' tool calls use the rest)", _C,
    p.fraction,
)  # fmt: skip
COMPOSIO_TIMEOUT: Var[float] = Var(
    "PLANNER_COMPOSIO_TIMEOUT", "seconds", 30.0,
    "seconds per Composio request; a timed-out write is re-read before any retry", _C,
    p.seconds(positive=True),
)  # fmt: skip
PUBLIC_URL: Var[str | None] = Var(
    "PLANNER_PUBLIC_URL", "URL", None,
    "public https:// base URL of `serve`; the Composio webhook subscription points at "
    "`<url>/webhooks/composio` (Composio delivers to HTTPS only)", _C, p.url,
)  # fmt: skip
COMPOSIO_WEBHOOK_SECRET: Var[str | None] = Var(
    "COMPOSIO_WEBHOOK_SECRET", "secret", None,
    "the subscription's signing secret, in every `serve` process; else the one reconcile or "
    "`planner-operator composio rotate-secret` stored", _C, p.text, secret=True,
    shown_default="`<state-dir>/secrets.db` (0600)",
)  # fmt: skip

# -- where jobs and workflows run (runtime.executors) ------------------------------------------
_E = "runtime.executors"
PLATFORM_URL: Var[str | None] = Var(
    "PLANNER_PLATFORM_URL", "URL", None,
    "the agent platform: chats start at `<url>` + `PLANNER_CHAT_PATH`", _E, p.url,
    shown_default="local outbox",
)  # fmt: skip
CHAT_PATH: Var[str] = Var(
    "PLANNER_CHAT_PATH", "URL path", CHAT_PATH_DEFAULT,
    "path of a new chat under the platform URL (`{agentId}` filled in)", _E, p.url_path,
    shown_default=f"`{CHAT_PATH_DEFAULT}`",
)  # fmt: skip
CHAT_URL: Var[str | None] = Var(
    "PLANNER_CHAT_URL", "URL", None,
    "the whole chat URL (overrides the two above; may hold `{agentId}`)", _E, p.url,
    shown_default="local outbox",
)  # fmt: skip
WORKFLOW_URL: Var[str | None] = Var(
    "PLANNER_WORKFLOW_URL", "URL", None, "where workflows nobody registered locally run", _E,
    p.url, shown_default="shipped examples",
)  # fmt: skip
# Python workflows other packages register (``[project.entry-points."planner_operator.workflows"]``)
WORKFLOW_ENTRY_POINTS = "planner_operator.workflows"
WORKFLOWS: Var[tuple[str, ...]] = Var(
    "PLANNER_WORKFLOWS", "list (`;`)", (),
    "workflow registrations: `id=module:function;id=https://...;id=inngest:event`", _E, p.items,
)  # fmt: skip
PLATFORM_TOKEN: Var[str | None] = Var(
    "PLANNER_PLATFORM_TOKEN", "secret", None, "bearer token for the agent platform", _E, p.text,
    secret=True,
)  # fmt: skip
EXECUTOR_TIMEOUT: Var[float] = Var(
    "PLANNER_EXECUTOR_TIMEOUT", "seconds", 30.0, "seconds per agent-platform call", _E,
    p.seconds(positive=True),
)  # fmt: skip
MASTRA_URL: Var[str | None] = Var(
    "PLANNER_MASTRA_URL", "URL", None,
    "a Mastra server's API base (e.g. `http://127.0.0.1:4111/api`): chats go to its agents, "
    "workflows nobody registered locally to its workflows", _E, p.url,
    shown_default="not used",
)  # fmt: skip
MASTRA_TOKEN: Var[str | None] = Var(
    "PLANNER_MASTRA_TOKEN", "secret", None, "bearer token for the Mastra server", _E, p.text,
    secret=True,
)  # fmt: skip
MASTRA_WAIT: Var[float] = Var(
    "PLANNER_MASTRA_WAIT", "seconds", 300.0,
    "how long a run waits for a Mastra workflow's result before it is retried (the retry "
    "finds the same Mastra run and waits again)", _E, p.seconds(positive=True),
)  # fmt: skip
POSTINGS_FILE: Var[Path | None] = Var(
    "PLANNER_POSTINGS_FILE", "path", None,
    "job postings the example workflow `job-application-check` reads", "runtime.workflows",
    p.path, shown_default="`examples/postings.json`",
)  # fmt: skip

# -- the serving process (server, runtime.worker, runtime.scheduler) -------------------------
API_TOKEN: Var[str | None] = Var(
    "PLANNER_API_TOKEN", "secret", None,
    "bearer token for the API and dashboard (see [API and auth](#api-and-auth)), and the one "
    "`reconcile --dry-run --server` sends; set but empty is an error", "server.auth, cli.remote",
    p.text, secret=True, empty_is_unset=False,
    shown_default="file `<state-dir>/api-token` (0600, generated)",
)  # fmt: skip
GIT_WEBHOOK_SECRET: Var[str | None] = Var(
    "PLANNER_GIT_WEBHOOK_SECRET", "secret", None, "enables `POST /hooks/git` for `run --repo`",
    "server.operator", p.text, secret=True,
)  # fmt: skip
SCHEDULER_JITTER: Var[float] = Var(
    "PLANNER_SCHEDULER_JITTER", "seconds", 0.0,
    "embedded scheduler: up to this many seconds of random delay per fire", "server.operator",
    p.seconds(),
)  # fmt: skip
_H = "server.hosts, server.connections"
ALLOWED_HOSTS: Var[tuple[str, ...]] = Var(
    "PLANNER_ALLOWED_HOSTS", "host names", (),
    "the `Host` names the server answers to besides the loopback names (others: 421; DNS "
    "rebinding defence): `name`, `.domain` (and its subdomains) or `*`, comma-separated", _H,
    p.names, shown_default="loopback names only",
)  # fmt: skip
HEADER_TIMEOUT: Var[float] = Var(
    "PLANNER_HEADER_TIMEOUT", "seconds", 10.0,
    "a connection must send its request line and headers within this (else 408, closed)", _H,
    p.seconds(positive=True),
)  # fmt: skip
BODY_TIMEOUT: Var[float] = Var(
    "PLANNER_BODY_TIMEOUT", "seconds", 30.0,
    "a request must send its whole body within this after its headers (else 408, closed)", _H,
    p.seconds(positive=True),
)  # fmt: skip
MAX_CONNECTIONS: Var[int] = Var(
    "PLANNER_MAX_CONNECTIONS", "whole number", 4096,
    "open connections at most (lowered to fit the open-files limit); at the cap the longest "
    "idle one is closed, or a new one refused with 503", _H, p.whole(16),
)  # fmt: skip
_W = "server.webhooks"
WEBHOOK_MAX_BODY: Var[int] = Var(
    "PLANNER_WEBHOOK_MAX_BODY", "bytes", 1024 * 1024,
    "largest webhook body accepted (larger: 413)", _W, p.whole(1, unit="bytes"),
    shown_default="`1048576` (1 MiB)",
)  # fmt: skip
WORKER: Var[bool] = Var(
    "PLANNER_WORKER", "flag", True,
    "`serve` runs the inbox worker; off leaves the inbox to `planner-operator worker` processes",
    _W, p.flag,
)  # fmt: skip
WORKER_PROCESS: Var[bool] = Var(
    "PLANNER_WORKER_PROCESS", "flag", True,
    "`serve` runs its inbox worker as a child process (an interpreter of its own, so the "
    "drain keeps up with ingest); off keeps it a thread of `serve`", "cli.commands", p.flag,
)  # fmt: skip
INBOX_SYNCHRONOUS: Var[str] = Var(
    "PLANNER_INBOX_SYNCHRONOUS", "`NORMAL` \\| `FULL`", "NORMAL",
    "SQLite `synchronous` of the inbox: `FULL` fsyncs every acknowledged delivery", _W,
    p.choice("NORMAL", "FULL", upper=True), shown_default="`NORMAL`",
)  # fmt: skip
GC_TUNE: Var[bool] = Var(
    "PLANNER_GC_TUNE", "flag", False,
    "freeze the startup heap out of garbage collection (shorter ack pauses; see "
    "docs/webhooks.md)", _W, p.flag,
)  # fmt: skip
_K = "runtime.worker"
WORKER_CONCURRENCY: Var[int] = Var(
    "PLANNER_WORKER_CONCURRENCY", "whole number", 4, "deliveries the inbox worker runs at once",
    _K, p.whole(1),
)  # fmt: skip
INBOX_LEASE: Var[float] = Var(
    "PLANNER_INBOX_LEASE", "seconds", 60.0,
    "a claimed delivery's lease (renewed while it runs; another worker takes it after)", _K,
    p.seconds(positive=True),
)  # fmt: skip
WORKER_MAX_ATTEMPTS: Var[int] = Var(
    "PLANNER_WORKER_MAX_ATTEMPTS", "whole number", 8,
    "attempts per delivery before it is dead-lettered", _K, p.whole(1),
)  # fmt: skip
WORKER_POLL: Var[float] = Var(
    "PLANNER_WORKER_POLL", "seconds", 1.0, "how often an idle worker looks at the inbox", _K,
    p.seconds(positive=True),
)  # fmt: skip
_W = "runtime.waiting"
WAITING_POLL_CAP: Var[float] = Var(
    "PLANNER_WAITING_POLL_CAP", "seconds", 300.0,
    "longest pause between two polls of a run its platform suspended (`waiting`); polls start "
    "5 s apart and back off to half the time waited so far, up to this", _W,
    p.seconds(positive=True),
)  # fmt: skip
WAITING_MAX: Var[float] = Var(
    "PLANNER_WAITING_MAX", "seconds", 604800.0,
    "how long a `waiting` run (suspended in Mastra) is polled before it is shown failed "
    "(default 7 days)", _W,
    p.seconds(positive=True),
)  # fmt: skip

# -- /metrics (server.metrics) ---------------------------------------------------------------
METRICS_RESOURCE_SERIES: Var[int] = Var(
    "PLANNER_METRICS_RESOURCE_SERIES", "whole number", 500,
    "`/metrics`: at most this many jobs and triggers get series of their own "
    "(`planner_resource_state`, per-job counters); past it the rest are summed into "
    "`agent=\"(other)\"` series and `planner_resources{kind,state}` still counts every one "
    "(0: no per-resource series)", "server.metrics", p.whole(0),
)  # fmt: skip

# -- the dashboard (server.dashboard) ---------------------------------------------------------
_D = "server.dashboard"
REPO_WEB_URL: Var[str | None] = Var(
    "PLANNER_REPO_WEB_URL", "URL", None,
    "web address of the agent files in the repository (e.g. "
    "`https://github.com/org/agents/blob/main`); the dashboard links each job and trigger to "
    "its file there, since config lives in git", _D, p.url,
)  # fmt: skip

# -- edits from the API and dashboard (edit) ---------------------------------------------------
_ED = "edit"
EDIT_MODE: Var[str | None] = Var(
    "PLANNER_EDIT_MODE", "`pr` \\| `commit` \\| `worktree` \\| `off`", None,
    "what a save from the API or dashboard does: `pr` pushes a branch and opens a pull request, "
    "`commit` commits to the watched branch (`run --repo`), `worktree` writes the file "
    "(`run --path`), `off` refuses edits", _ED, p.choice("pr", "commit", "worktree", "off"),
    shown_default="`pr` with `--repo`, `worktree` with `--path`",
)  # fmt: skip
EDIT_AUTHOR: Var[str] = Var(
    "PLANNER_EDIT_AUTHOR", "`Name <email>`", "planner-operator <planner-operator@localhost>",
    "author and committer of the commits edits make", _ED, p.text,
)  # fmt: skip
FORGE_URL: Var[str] = Var(
    "PLANNER_FORGE_URL", "URL", "https://api.github.com",
    "the forge's REST API (GitHub Enterprise: `https://host/api/v3`)", _ED, p.url,
)  # fmt: skip
FORGE_REPO: Var[str | None] = Var(
    "PLANNER_FORGE_REPO", "`owner/name`", None,
    "the repository pull requests are opened in (`PLANNER_EDIT_MODE=pr`); unset: the branch is "
    "pushed and no pull request is opened", _ED, p.text,
)  # fmt: skip
FORGE_TOKEN: Var[str | None] = Var(
    "PLANNER_FORGE_TOKEN", "secret", None,
    "token for the forge's REST API (GitHub: `pull_requests: write`); never logged", _ED,
    p.text, secret=True,
)  # fmt: skip

ALL: tuple[Var[Any], ...] = tuple(
    v for v in globals().values() if isinstance(v, Var)
)  # in the order above, which is the README's
BY_NAME: dict[str, Var[Any]] = {v.name: v for v in ALL}

# Read by the test suite and CI scripts, never by the product; known so they are not warned of.
DEVELOPMENT = {
    "PLANNER_CI": "CI: tests that need Chromium fail instead of skipping",
    "PLANNER_KEEP_SCREENSHOTS": "dashboard browser test: keep its screenshots",
}


def environ(env: Mapping[str, str] | None = None) -> Mapping[str, str]:
    """``env``, or the process environment when None: the one place the product takes it."""
    return os.environ if env is None else env


def dynamic_secret(env: Mapping[str, str], name: str) -> str:
    """The value of a variable an agent file names (``secret_env:``), stripped; "" when unset.

    The documented exception to the table: such names are data, chosen per trigger.
    """
    return (env.get(name) or "").strip()


def unknown(env: Mapping[str, str], *, also_known: Iterable[str] = ()) -> list[str]:
    """One warning per ``PLANNER_*`` variable that nothing reads, with a did-you-mean.

    ``also_known``: names agent files or the ledger use as ``secret_env`` (they may start with
    ``PLANNER_`` too).
    """
    known = {*BY_NAME, *DEVELOPMENT, *also_known}
    ours = sorted(n for n in BY_NAME if n.startswith(PREFIX))
    messages = []
    for name in sorted(n for n in env if n.startswith(PREFIX) and n not in known):
        close = difflib.get_close_matches(name, ours, n=1, cutoff=0.8)
        hint = f"; did you mean {close[0]}?" if close else ""
        messages.append(
            f"environment variable {name} is not a planner-operator setting and is ignored"
            f"{hint} (`planner-operator settings` lists them)"
        )
    return messages
