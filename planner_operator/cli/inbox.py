"""``planner-operator inbox ...`` and ``planner-operator worker``: the inbox from the terminal.

Mounted by ``cli.py`` (``app.add_typer(inbox_cli.app, name="inbox")`` and
``app.command("worker")(inbox_cli.worker_command)``). Kept apart so the webhook side can grow
without touching the reconcile commands; errors map to exit codes the same way (``PlannerError``
-> one line on stderr, exit 1).

* ``inbox list`` / ``inbox show ID``: what arrived, how it ended, how often it was re-sent.
* ``inbox replay ID``: run a stored delivery again, now, through the normal worker path (a dead
  letter after a fix; a done one runs again under a new idempotency key).
* ``inbox replay ID --rev REV``: only print what the config at that git revision would do with
  the delivery (the rendered message or workflow input); nothing runs, nothing changes.
* ``inbox inject KEY``: store an event for a trigger without HTTP (a local event source, for
  the demo and for trying a template against a real payload).
"""

from __future__ import annotations

import asyncio
import json
import secrets
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from planner_operator.core import times, variables
from planner_operator.core.records import Delivery, NewDelivery
from planner_operator.core.settings import Settings
from planner_operator.errors import PlannerError, StateError
from planner_operator.state import open as state_open
from planner_operator.state.inbox import Inbox, delivery_id

if TYPE_CHECKING:
    from planner_operator.runtime.worker import Worker

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    rich_markup_mode=None,
    help="The durable webhook inbox: list, show, replay and inject deliveries.",
    pretty_exceptions_enable=False,
)

StateDir = Annotated[
    Path | None,
    typer.Option(
        "--state-dir", help="Operator state directory (env PLANNER_STATE_DIR; default .planner)."
    ),
]
LedgerDb = Annotated[
    Path | None,
    typer.Option(
        "--ledger-db",
        help="Ledger database (env PLANNER_LEDGER_DB; default <state-dir>/ledger.db).",
    ),
]
Json = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]


def iso(ts: float | None) -> str | None:
    """Unix seconds in the stored time format (JSON output)."""
    return None if ts is None else times.from_epoch(ts)


def summary(d: Delivery) -> dict[str, Any]:
    """Everything but the body, for listings and JSON output."""
    out = {k: v for k, v in d.__dict__.items() if k != "body"}
    out["received"] = iso(d.received_at)
    out["size"] = len(d.body)
    return out


def _run(fn: Callable[[], int]) -> None:
    try:
        code = fn()
    except PlannerError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        raise typer.Exit(130) from None
    raise typer.Exit(code)


def _settings(state_dir: Path | None, ledger_db: Path | None = None) -> Settings:
    return Settings.resolve(state_dir=state_dir, ledger_db=ledger_db)


def _open(settings: Settings) -> Inbox:
    if not state_open.exists(settings, "inbox"):
        where = state_open.where(settings, "inbox")
        raise StateError(f"no inbox at {where}: nothing was received yet")
    return state_open.inbox(settings)


@app.command("list")
def list_(
    status: Annotated[
        str | None,
        typer.Option("--status", help="received, processing, failed, done, ignored or dead."),
    ] = None,
    key: Annotated[str | None, typer.Option("--key", help="Only this trigger key.")] = None,
    limit: Annotated[
        int, typer.Option("--limit", "-n", min=1, max=10000, help="Deliveries to show.")
    ] = 50,
    as_json: Json = False,
    state_dir: StateDir = None,
) -> None:
    """Recent deliveries, newest first."""

    def body() -> int:
        with _open(_settings(state_dir)) as inbox:
            items = inbox.list(status=status, key=key, limit=limit)
            counts = inbox.counts()
        if as_json:
            typer.echo(json.dumps([summary(d) for d in items], indent=2, default=str))
            return 0
        if not items:
            typer.echo("No deliveries.")
        for d in items:
            dup = f"  dup x{d.duplicates}" if d.duplicates else ""
            where = d.trigger_key or d.remote_id or "-"
            received = times.display(datetime.fromtimestamp(d.received_at, UTC))
            typer.echo(
                f"{received}  {d.status:<10} {d.attempts:>2}x  {d.id}  {where}"
                f"  {d.outcome or d.last_error or ''}{dup}".rstrip()
            )
        typer.echo("  ".join(f"{s}: {n}" for s, n in sorted(counts.items())) or "empty")
        return 0

    _run(body)


@app.command()
def show(
    delivery_id: Annotated[str, typer.Argument(help="Delivery id (webhook-id).")],
    body: Annotated[bool, typer.Option("--body", help="Also print the stored body.")] = False,
    state_dir: StateDir = None,
) -> None:
    """One delivery: headers kept (never signatures), status, attempts, outcome, errors."""

    def run() -> int:
        with _open(_settings(state_dir)) as inbox:
            found = inbox.get(delivery_id)
        if found is None:
            raise StateError(f"no delivery {delivery_id} in the inbox")
        shown = summary(found)
        if body:
            shown["body"] = found.body.decode("utf-8", "replace")
        typer.echo(json.dumps(shown, indent=2, sort_keys=True, default=str))
        return 0

    _run(run)


@app.command()
def replay(
    delivery_id: Annotated[str, typer.Argument(help="Delivery id (webhook-id).")],
    rev: Annotated[
        str | None,
        typer.Option("--rev", help="Only print what the config at this git revision would do."),
    ] = None,
    repo: Annotated[Path, typer.Option("--repo", help="Git repository for --rev.")] = Path("."),
    agents_dir: Annotated[
        str, typer.Option("--agents-dir", help="Directory of agent files inside --repo.")
    ] = "agents",
    state_dir: StateDir = None,
    ledger_db: LedgerDb = None,
) -> None:
    """Run a stored delivery again now (or, with --rev, preview it against another revision)."""
    settings = _settings(state_dir, ledger_db)
    if rev:
        _run(lambda: preview(settings, delivery_id, rev, repo, agents_dir))
    _run(lambda: rerun(settings, delivery_id))


def preview(settings: Settings, delivery_id: str, rev: str, repo: Path, agents_dir: str) -> int:
    from planner_operator.reconcile.engine import SourceSpec, read_desired
    from planner_operator.runtime.events import parse
    from planner_operator.runtime.events import preview as render
    from planner_operator.runtime.worker import Routes

    with _open(settings) as inbox:
        found = inbox.get(delivery_id)
    if found is None:
        raise StateError(f"no delivery {delivery_id} in the inbox")
    key = found.trigger_key
    if key is None:
        envelope = parse(found).composio
        routes = Routes(settings)
        routes.reload()
        remote_id = envelope.trigger_id if envelope else None
        route = routes.find(found.source, remote_id=remote_id, key=found.trigger_key)
        if route is None:
            raise PlannerError(f"{delivery_id}: no applied trigger owns it, so no key to look up")
        key = route.key
    wanted = read_desired(SourceSpec(repo=repo, rev=rev, subdir=agents_dir))
    resource = wanted.resources.get(key)
    if resource is None:
        typer.echo(f"{key} does not exist at {rev}: the delivery would be ignored")
        return 0
    typer.echo(f"At {rev}: {render(found, key, resource.spec)}")
    return 0


def rerun(settings: Settings, delivery_id: str) -> int:
    worker = _worker(settings)
    with _open(settings) as inbox:
        inbox.requeue(delivery_id)
        claimed = inbox.claim_id(delivery_id, worker.owner, worker.config.lease)
    if claimed is None:
        typer.echo(f"{delivery_id}: queued; a running worker took it")
        return 0
    outcome = worker.process(claimed)
    typer.echo(f"{delivery_id}: {outcome.status}: {outcome.note}")
    if outcome.error:
        typer.echo(f"  error: {outcome.error}")
    return 0 if outcome.status in ("done", "ignored") else 1


@app.command()
def inject(
    key: Annotated[str, typer.Argument(help="Trigger key, e.g. my-agent/triggers/new-email.")],
    data: Annotated[
        str, typer.Option("--data", "-d", help="Event payload: JSON, or @file, or - for stdin.")
    ] = "{}",
    state_dir: StateDir = None,
) -> None:
    """Store an event for a trigger as if it had arrived (the worker runs it)."""

    def run() -> int:
        text = sys.stdin.read() if data == "-" else data
        if text.startswith("@"):
            text = Path(text[1:]).read_text(encoding="utf-8")
        try:
            payload = json.loads(text)
        except ValueError as exc:
            raise PlannerError(f"--data is not JSON: {exc}") from None
        settings = _settings(state_dir)
        delivery = NewDelivery(
            id=delivery_id("local", f"inject_{secrets.token_hex(8)}"),
            source="local",
            body=json.dumps(payload).encode(),
            trigger_key=key,
            event_type="local",
        )
        with state_open.inbox(settings) as inbox:
            inbox.insert(delivery)
        typer.echo(delivery.id)
        return 0

    _run(run)


def _worker(settings: Settings, concurrency: int | None = None) -> Worker:
    import dataclasses

    from planner_operator.runtime.executors import select as executor_select
    from planner_operator.runtime.worker import Routes, Worker, WorkerConfig

    config = WorkerConfig.from_env(variables.environ())
    if concurrency:
        config = dataclasses.replace(config, concurrency=concurrency)
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    return Worker(
        inbox=state_open.inbox(settings),
        routes=Routes(settings),
        runs=state_open.runs(settings),
        executors=executor_select.from_env(settings),
        config=config,
    )


def worker_command(
    once: Annotated[
        bool, typer.Option("--once", help="Run what is due now, then exit (cron, demo).")
    ] = False,
    concurrency: Annotated[
        int | None, typer.Option("--concurrency", "-c", min=1, max=256, help="Parallel runs.")
    ] = None,
    state_dir: StateDir = None,
    ledger_db: LedgerDb = None,
) -> None:
    """Run inbox deliveries (what `serve` does in-process), e.g. as separate processes.

    \b
    Example:
      planner-operator worker --concurrency 8
    """

    def run() -> int:
        from planner_operator.core import logsafe

        logsafe.configure()
        worker = _worker(_settings(state_dir, ledger_db), concurrency)
        if once:
            typer.echo(f"{worker.drain()} delivery(ies) handled")
            return 0
        asyncio.run(worker.run())
        return 0

    _run(run)
