"""The command line: thin commands over the library; errors become exit codes in one place.

Exit codes (Terraform-style): 0 success / no changes, 1 error (including invalid config and
refused changes), 2 changes present (``reconcile --dry-run --detailed-exitcode``) or drift found
(``reconcile --check``).

typer (on click) was chosen for typed options with generated ``--help``; rich only for colour
and progress on a terminal: output is plain text whenever stdout is not a TTY.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from datetime import UTC, datetime
from enum import StrEnum
from importlib import metadata
from pathlib import Path
from typing import Annotated, NoReturn, TypeVar

import typer

from planner_operator.cli import commands
from planner_operator.errors import PlannerError

app = typer.Typer(
    no_args_is_help=True,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
)

_F = TypeVar("_F", bound=Callable[..., object])


class ValidateFormat(StrEnum):
    text = "text"
    json = "json"
    github = "github"


class PlanFormat(StrEnum):
    text = "text"
    markdown = "markdown"
    json = "json"


class ReadFormat(StrEnum):
    """Formats of the read commands (status, runs, explain): no markdown there."""

    text = "text"
    json = "json"


PathsArg = Annotated[
    list[Path] | None,
    typer.Argument(help="Agent files or directories (default: agents/).", show_default=False),
]
StateDir = Annotated[
    Path | None,
    typer.Option(
        "--state-dir", help="Operator state directory (env PLANNER_STATE_DIR; default .planner)."
    ),
]
StateDb = Annotated[
    Path | None,
    typer.Option(
        "--state-db",
        help="Embedded backend database (env PLANNER_STATE_DB; default <state-dir>/state.db).",
    ),
]
LedgerDb = Annotated[
    Path | None,
    typer.Option(
        "--ledger-db",
        help="Ledger database (env PLANNER_LEDGER_DB; default <state-dir>/ledger.db).",
    ),
]

AllowMassDelete = Annotated[
    bool,
    typer.Option(
        "--allow-mass-delete",
        help="Apply a plan that deletes more than max(3, 10%) of the managed resources.",
    ),
]
AllowProtectedDelete = Annotated[
    bool,
    typer.Option(
        "--allow-protected-delete", help="Apply deletes of resources marked `protect: true`."
    ),
]
AgentsDir = Annotated[
    str, typer.Option("--agents-dir", help="Directory of agent files inside the repository.")
]
Fmt = Annotated[PlanFormat, typer.Option("--format", "-f", help="Output format.")]
ReadFmt = Annotated[ReadFormat, typer.Option("--format", "-f", help="Output format.")]


def _version(value: bool) -> None:
    if value:
        typer.echo(f"planner-operator {metadata.version('planner-operator')}")
        raise typer.Exit(0)


@app.callback()
def _main(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """GitOps for AI-agent automation: agent YAML in git -> schedules and event triggers.

    \b
    Start here:
      planner-operator validate agents/
      planner-operator reconcile --path agents --dry-run
      planner-operator run --path agents
    """


HOST_HELP = (
    "Bind address. Off loopback every API and dashboard request needs the token "
    "(PLANNER_API_TOKEN or <state-dir>/api-token), not only writes."
)


def _fail(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(1)


def _run(fn: Callable[[], int]) -> None:
    """Run a command body; our errors print one line and exit 1, never a traceback."""
    try:
        code = fn()
    except PlannerError as exc:
        _fail(str(exc))
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        raise typer.Exit(130) from None
    raise typer.Exit(code)


@app.command()
def validate(
    paths: PathsArg = None,
    fmt: Annotated[
        ValidateFormat, typer.Option("--format", "-f", help="github: workflow annotations.")
    ] = ValidateFormat.text,
) -> None:
    """Check agent files: schema, schedules, timezones, templates. Exit 0 valid, 1 invalid.

    \b
    Examples:
      planner-operator validate agents/
      planner-operator validate agents/sales-agent.yaml --format github
    """
    _run(lambda: commands.validate(paths or [Path("agents")], fmt.value))


@app.command("next-runs")
def next_runs(
    paths: PathsArg = None,
    count: Annotated[
        int, typer.Option("--count", "-n", min=1, max=1000, help="Fires per job.")
    ] = 5,
    start: Annotated[
        str | None, typer.Option("--from", help="ISO-8601 start time (default: now).")
    ] = None,
    fmt: ReadFmt = ReadFormat.text,
) -> None:
    """Next fire times of every job, in its timezone and UTC, with DST-affected fires flagged.

    \b
    Example:
      planner-operator next-runs agents/ -n 3 --from 2026-10-24T00:00:00Z
    """
    _run(
        lambda: commands.next_runs(paths or [Path("agents")], count, _parse_start(start), fmt.value)
    )


def _parse_start(text: str | None) -> datetime:
    if text is None:
        return commands.CLOCK.now()
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        _fail(f"--from {text!r} is not an ISO-8601 time (e.g. 2026-03-08T00:00:00+00:00)")
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@app.command()
def schema(
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write here instead of stdout.")
    ] = None,
    check: Annotated[bool, typer.Option("--check", help="Exit 1 if OUTPUT is stale.")] = False,
) -> None:
    """Print (or write) the JSON Schema of agent files.

    \b
    Example:
      planner-operator schema -o schemas/agent.schema.json --check
    """
    _run(lambda: commands.schema(output, check))


@app.command("settings")
def settings_command(
    markdown: Annotated[
        bool, typer.Option("--markdown", help="Print the README's configuration table.")
    ] = False,
) -> None:
    """Every environment variable the operator reads, and its value here (secrets hidden).

    Exit 1 when a value is invalid; unknown PLANNER_* variables are listed as warnings.

    \b
    Example:
      PLANNER_WORKER=off planner-operator settings
    """
    from planner_operator.cli import settings as cli_settings

    _run(lambda: cli_settings.show(markdown=markdown))


@app.command()
def reconcile(
    path: Annotated[
        Path | None, typer.Option("--path", help="Directory of agent files in the work tree.")
    ] = None,
    repo: Annotated[
        Path | None, typer.Option("--repo", help="Git repository to read a revision from.")
    ] = None,
    rev: Annotated[str, typer.Option("--rev", help="Revision to read with --repo.")] = "HEAD",
    agents_dir: AgentsDir = "agents",
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Plan only; change nothing.")] = False,
    yes: Annotated[
        bool,
        typer.Option(
            "--yes",
            "--auto-approve",
            "-y",
            help="Apply without asking (needed to apply when stdin is not a terminal).",
        ),
    ] = False,
    check: Annotated[
        bool, typer.Option("--check", help="Read actual state; exit 2 if it drifted from ledger.")
    ] = False,
    detailed_exitcode: Annotated[
        bool, typer.Option("--detailed-exitcode", help="Exit 2 when the plan has changes.")
    ] = False,
    fmt: Fmt = PlanFormat.text,
    allow_mass_delete: AllowMassDelete = False,
    allow_protected_delete: AllowProtectedDelete = False,
    allow_empty: Annotated[
        bool, typer.Option("--allow-empty", help="Allow deletes when no agent files are found.")
    ] = False,
    take_over_subscription: Annotated[
        bool,
        typer.Option(
            "--take-over-subscription",
            help="Point the Composio webhook subscription here even if another app set it.",
        ),
    ] = False,
    state_dir: StateDir = None,
    state_db: StateDb = None,
    ledger_db: LedgerDb = None,
    lock_timeout: Annotated[
        float | None, typer.Option("--lock-timeout", help="Seconds to wait for another applier.")
    ] = None,
    server: Annotated[
        str | None,
        typer.Option(
            "--server",
            help="With --dry-run: send the agent files to this running operator (its POST "
            "/api/plan, token from env PLANNER_API_TOKEN), which plans them against its state.",
        ),
    ] = None,
) -> None:
    """Plan the changes from agent files to the backends, and apply them (unless --dry-run).

    \b
    Examples:
      planner-operator reconcile --path agents --dry-run
      planner-operator reconcile --path agents --yes
      planner-operator reconcile --repo . --rev origin/main -f markdown --dry-run
      planner-operator reconcile --check
      planner-operator reconcile --dry-run --server https://planner.example
    """
    if path is not None and repo is not None:
        _fail("--path and --repo are exclusive: read the work tree or a git revision, not both")
    _run(
        lambda: commands.reconcile(
            commands.ReconcileArgs(
                source=commands.SourceSpec(path=path, repo=repo, rev=rev, subdir=agents_dir),
                settings=commands.settings(state_dir, state_db, ledger_db, lock_timeout),
                dry_run=dry_run,
                check=check,
                detailed_exitcode=detailed_exitcode,
                fmt=fmt.value,
                options=commands.PlanOptions(
                    allow_mass_delete=allow_mass_delete,
                    allow_protected_delete=allow_protected_delete,
                    allow_empty=allow_empty,
                    take_over_subscription=take_over_subscription,
                ),
                yes=yes,
                server=server,
            )
        )
    )


@app.command()
def status(
    fmt: ReadFmt = ReadFormat.text,
    state_dir: StateDir = None,
    state_db: StateDb = None,
    ledger_db: LedgerDb = None,
) -> None:
    """Every job and trigger: active / paused / error / drifted / unmanaged, next runs.

    \b
    Example:
      planner-operator status --format json
    """
    _run(lambda: commands.status(commands.settings(state_dir, state_db, ledger_db), fmt.value))


@app.command()
def adopt(
    key: Annotated[str, typer.Argument(help="Resource key, e.g. my-agent/jobs/daily.")],
    remote_id: Annotated[str, typer.Argument(help="Id of the existing remote object.")],
    state_dir: StateDir = None,
    state_db: StateDb = None,
    ledger_db: LedgerDb = None,
) -> None:
    """Take over an existing remote object for KEY; the next reconcile brings it in line.

    \b
    Example:
      planner-operator adopt sales-agent/triggers/new-contact ti_Hx1kP0aB
    """
    _run(lambda: commands.adopt(commands.settings(state_dir, state_db, ledger_db), key, remote_id))


@app.command()
def unlock(
    state_dir: StateDir = None,
    ledger_db: LedgerDb = None,
) -> None:
    """Clear the apply lock after checking its holder is gone.

    \b
    Example:
      planner-operator unlock --state-dir .planner
    """
    _run(lambda: commands.unlock(commands.settings(state_dir, None, ledger_db)))


@app.command()
def serve(
    host: Annotated[str, typer.Option("--host", help=HOST_HELP)] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port.")] = 8000,
    state_dir: StateDir = None,
    state_db: StateDb = None,
    ledger_db: LedgerDb = None,
) -> None:
    """Serve the Inngest endpoint (/api/inngest), health and run history (FastAPI + uvicorn).

    \b
    Example:
      planner-operator serve --host 127.0.0.1 --port 8000
    """
    _run(lambda: commands.serve(commands.settings(state_dir, state_db, ledger_db), host, port))


@app.command("run-now")
def run_now(
    key: Annotated[str, typer.Argument(help="Applied job key, e.g. my-agent/jobs/daily.")],
    state_dir: StateDir = None,
    state_db: StateDb = None,
    ledger_db: LedgerDb = None,
) -> None:
    """Run an applied job once, now, through the normal executor path (recorded in run history).

    \b
    Example:
      planner-operator run-now sales-agent/weekly-pipeline-review
    """
    _run(lambda: commands.run_now(commands.settings(state_dir, state_db, ledger_db), key))


@app.command()
def runs(
    key: Annotated[str | None, typer.Option("--key", help="Only this job or trigger.")] = None,
    limit: Annotated[
        int, typer.Option("--limit", "-n", min=1, max=1000, help="Runs to show.")
    ] = 20,
    fmt: ReadFmt = ReadFormat.text,
    state_dir: StateDir = None,
) -> None:
    """Run history: newest first, with the rendered message or workflow input of each run.

    \b
    Example:
      planner-operator runs --key sales-agent/weekly-pipeline-review -n 5
    """
    _run(lambda: commands.runs(commands.settings(state_dir, None, None), key, limit, fmt.value))


@app.command()
def explain(
    key: Annotated[
        str | None, typer.Argument(help="Job key: AGENT/JOB or AGENT/jobs/JOB.", show_default=False)
    ] = None,
    delivery: Annotated[
        str | None,
        typer.Option("--delivery", help="Explain one webhook delivery (its id) instead of a job."),
    ] = None,
    start: Annotated[
        str | None,
        typer.Option(
            "--from",
            help="ISO-8601 window start (default: 7 days before --to, at most 500 slots).",
        ),
    ] = None,
    end: Annotated[
        str | None, typer.Option("--to", help="ISO-8601 window end (default: now).")
    ] = None,
    utc: Annotated[
        bool, typer.Option("--utc", help="Times in UTC, not the job's timezone.")
    ] = False,
    fmt: ReadFmt = ReadFormat.text,
    state_dir: StateDir = None,
    ledger_db: LedgerDb = None,
) -> None:
    """Why a job's slots did or did not run (a timeline), or what became of one delivery.

    \b
    Examples:
      planner-operator explain sales-agent/weekly-pipeline-review --utc
      planner-operator explain --delivery msg_2kL9
    """
    if (key is None) == (delivery is None):
        _fail("explain needs a job key (AGENT/JOB) or --delivery ID, not both")
    window = (_parse_time(start, "--from"), _parse_time(end, "--to"))
    _run(
        lambda: commands.explain(
            commands.settings(state_dir, None, ledger_db),
            key=key,
            delivery=delivery,
            window=window,
            utc=utc,
            fmt=fmt.value,
        )
    )


def _parse_time(text: str | None, flag: str) -> datetime | None:
    if text is None:
        return None
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        _fail(f"{flag} {text!r} is not an ISO-8601 time (e.g. 2026-03-08T00:00:00+00:00)")
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _seconds(text: str) -> float:
    units = {"s": 1.0, "m": 60.0, "h": 3600.0}
    try:
        if text and text[-1] in units:
            return float(text[:-1]) * units[text[-1]]
        return float(text)
    except ValueError:
        _fail(f"--interval {text!r} is not a duration (e.g. 30s, 2m, 1h)")


@app.command()
def watch(
    path: Annotated[
        Path | None, typer.Option("--path", help="Watch this directory of agent files.")
    ] = None,
    repo: Annotated[
        str | None, typer.Option("--repo", help="Poll this git remote (URL or path).")
    ] = None,
    branch: Annotated[str, typer.Option("--branch", help="Branch to follow.")] = "main",
    interval: Annotated[str, typer.Option("--interval", help="Poll interval.")] = "30s",
    agents_dir: AgentsDir = "agents",
    allow_mass_delete: AllowMassDelete = False,
    allow_protected_delete: AllowProtectedDelete = False,
    state_dir: StateDir = None,
    state_db: StateDb = None,
    ledger_db: LedgerDb = None,
) -> None:
    """Reconcile on every file change (--path) or every new commit (--repo).

    \b
    Examples:
      planner-operator watch --path agents
      planner-operator watch --repo git@example.com:team/agents.git --interval 1m
    """
    if (path is None) == (repo is None):
        _fail("watch needs exactly one of --path DIR or --repo URL|PATH")
    options = commands.PlanOptions(
        allow_mass_delete=allow_mass_delete, allow_protected_delete=allow_protected_delete
    )
    settings = commands.settings(state_dir, state_db, ledger_db)
    _run(
        lambda: commands.watch(
            settings,
            options,
            path=path,
            repo=repo,
            branch=branch,
            interval=_seconds(interval),
            subdir=agents_dir,
        )
    )


@app.command("run")
def run_operator(
    path: Annotated[Path | None, typer.Option("--path", help="Watch this directory.")] = None,
    repo: Annotated[str | None, typer.Option("--repo", help="Poll this git remote.")] = None,
    branch: Annotated[str, typer.Option("--branch", help="Branch to follow.")] = "main",
    interval: Annotated[str, typer.Option("--interval", help="Git poll interval.")] = "30s",
    agents_dir: AgentsDir = "agents",
    host: Annotated[str, typer.Option("--host", help=HOST_HELP)] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port.")] = 8000,
    grace: Annotated[float, typer.Option("--grace", help="Shutdown grace seconds.")] = 30.0,
    allow_mass_delete: AllowMassDelete = False,
    allow_protected_delete: AllowProtectedDelete = False,
    state_dir: StateDir = None,
    state_db: StateDb = None,
    ledger_db: LedgerDb = None,
) -> None:
    """The one long-running process: watch + serve + worker + embedded scheduler.

    \b
    Example:
      planner-operator run --path agents --port 8000
    """
    if (path is None) == (repo is None):
        _fail("run needs exactly one of --path DIR or --repo URL|PATH")
    from planner_operator.server.operator import WatchSpec

    spec = WatchSpec(
        path=path,
        repo=repo,
        branch=branch,
        interval=_seconds(interval),
        subdir=agents_dir,
        options=commands.PlanOptions(
            allow_mass_delete=allow_mass_delete, allow_protected_delete=allow_protected_delete
        ),
    )
    settings = commands.settings(state_dir, state_db, ledger_db)
    _run(lambda: commands.serve(settings, host, port, watch=spec, grace=grace))


def _mount_subcommands() -> None:
    from planner_operator.cli import composio as composio_cli
    from planner_operator.cli import inbox as inbox_cli

    app.add_typer(composio_cli.app, name="composio", help="Composio webhook subscription.")
    app.add_typer(inbox_cli.app, name="inbox", help="Stored webhook deliveries.")
    app.command("worker")(inbox_cli.worker_command)


_mount_subcommands()


def main() -> None:
    try:
        app()
    except BrokenPipeError:  # `planner-operator ... | head`
        sys.stderr.close()
        sys.exit(0)
