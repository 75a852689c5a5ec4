"""What each CLI command does, as functions returning an exit code (printing is their output).

Kept apart from ``cli.py`` so the option parsing stays declarative and these bodies can be
called from tests and from ``watch`` without going through click.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from planner_operator.backends import select
from planner_operator.backends.base import list_all
from planner_operator.backends.select import open_backends, platform_checks
from planner_operator.cli import remote
from planner_operator.cli import settings as cli_settings
from planner_operator.config import desired as desired_mod
from planner_operator.config import schema as schema_mod
from planner_operator.config import semantic
from planner_operator.config.loader import LoadedFile
from planner_operator.core import clock as clock_mod
from planner_operator.core import jsonfmt, keys, logsafe, scheduling, specs, times, variables
from planner_operator.core.canonical import spec_hash
from planner_operator.core.records import OwnedEntry
from planner_operator.core.settings import Settings
from planner_operator.errors import (
    ConfigError,
    NotApproved,
    NotFoundError,
    PlannerError,
    StateError,
)
from planner_operator.reconcile import plan as plan_mod
from planner_operator.reconcile import render, source
from planner_operator.reconcile.apply import ApplyResult, ItemResult, Progress
from planner_operator.reconcile.engine import SourceSpec, read_actual, session
from planner_operator.reconcile.engine import reconcile as run_reconcile
from planner_operator.reconcile.plan import PlanOptions
from planner_operator.reconcile.render import jsonout
from planner_operator.state import open as state_open
from planner_operator.state.ledger import Ledger

# The one-shot commands' clock: the composition root reads the time, nothing below it.
CLOCK: clock_mod.Clock = clock_mod.SYSTEM

__all__ = ["PlanOptions", "ReconcileArgs", "SourceSpec"]


def out(text: str = "") -> None:
    sys.stdout.write(text + ("\n" if not text.endswith("\n") else ""))


def settings(
    state_dir: Path | None,
    state_db: Path | None,
    ledger_db: Path | None,
    lock_timeout: float | None = None,
) -> Settings:
    return Settings.resolve(
        state_dir=state_dir, state_db=state_db, ledger_db=ledger_db, lock_timeout=lock_timeout
    )


# -- validate ---------------------------------------------------------------------------------


def validate(paths: Sequence[Path], fmt: str) -> int:
    """Exit 1 on errors; warnings (types the catalog cannot know, secrets unset in this
    environment) are shown and do not fail."""
    files = source.load(source.read_paths(paths))
    if not files:
        raise PlannerError(f"no agent files (*.yaml, *.yml) in {', '.join(map(str, paths))}")
    files = _platform_checked(files)
    found = semantic.secret_warnings(files, variables.environ())
    files = [
        replace(
            f, warnings=semantic.in_order([*f.warnings, *(w for w in found if w.file == f.file)])
        )
        for f in files
    ]
    errors = [e for f in files for e in f.errors]
    warnings = [w for f in files for w in f.warnings]
    if fmt == "json":
        out(jsonfmt.document("validate", _validate_json(files)))
    elif fmt == "github":
        for error in errors:
            out(github_annotation(error))
        for warning in warnings:
            out(github_annotation(warning, level="warning"))
    else:
        for error in errors:
            out(str(error))
        for warning in warnings:
            out(f"warning: {warning}")
        noted = f", {len(warnings)} warning(s)" if warnings else ""
        bad = sum(1 for f in files if f.errors)
        if bad:
            out(f"{len(files)} file(s) checked: {bad} invalid, {len(errors)} error(s){noted}.")
        else:
            jobs = sum(len(f.agent.planner.jobs) for f in files if f.agent)
            triggers = sum(len(f.agent.planner.triggers) for f in files if f.agent)
            out(f"{len(files)} file(s) valid: {jobs} job(s), {triggers} trigger(s){noted}.")
    return 1 if errors else 0


def _platform_checked(files: Sequence[LoadedFile]) -> list[LoadedFile]:
    """Files with what the configured agent platform (Mastra) says of their names added: the
    same check the plan makes, so `validate` in CI catches an unknown agent or workflow."""
    closers: list[contextlib.AbstractContextManager[object]] = []
    try:
        checks = platform_checks(variables.environ(None), clock_mod.SYSTEM, closers)
        found: list[ConfigError] = []
        resources = list(desired_mod.build(files).values())
        for check in checks:
            found.extend(check.preflight(resources))
            for warning in getattr(check, "warnings", []):
                sys.stderr.write(f"warning: {warning}\n")
    finally:
        for closer in reversed(closers):
            closer.__exit__(None, None, None)
    if not found:
        return list(files)
    return [
        dataclasses.replace(f, errors=(*f.errors, *(e for e in found if e.file == f.file)))
        for f in files
    ]


def _error_dict(error: ConfigError) -> dict[str, Any]:
    return {
        "file": error.file,
        "line": error.position.line,
        "col": error.position.col,
        "path": error.path,
        "message": error.message,
        "hint": error.hint,
    }


def _validate_json(files: Sequence[LoadedFile]) -> dict[str, Any]:
    return {
        "ok": not any(f.errors for f in files),
        "files": [
            {
                "file": f.file,
                "agent": f.agent_id if f.agent else None,
                "ok": not f.errors,
                "errors": [_error_dict(e) for e in f.errors],
                "warnings": [_error_dict(w) for w in f.warnings],
            }
            for f in files
        ],
    }


def github_annotation(error: ConfigError, *, level: str = "error") -> str:
    """A GitHub Actions workflow command, escaped as the runner expects."""

    def prop(value: str) -> str:
        return _escape(value).replace(":", "%3A").replace(",", "%2C")

    message = f"{error.path}: {error.message}" if error.path else error.message
    if error.hint:
        message += f" ({error.hint})"
    p = error.position
    return f"::{level} file={prop(p.file)},line={p.line},col={p.col}::{_escape(message)}"


def _escape(value: str) -> str:
    return value.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


# -- next-runs --------------------------------------------------------------------------------


def next_runs(paths: Sequence[Path], count: int, start: datetime, fmt: str = "text") -> int:
    files = source.load(source.read_paths(paths))
    for error in (e for f in files for e in f.errors):
        print(str(error), file=sys.stderr)
    resources = desired_mod.build(files)
    jobs = [r for r in resources.values() if r.kind == "job"]
    backend = select.schedule_backend_name(variables.environ())  # where the jobs would run
    if fmt == "json":
        listed = [_job_json(j, count, start, backend) for j in jobs]
        out(jsonfmt.document("next_runs", {"from": start, "backend": backend, "jobs": listed}))
        return 1 if any(f.errors for f in files) else 0
    if not jobs:
        out("No jobs.")
    for job in jobs:
        out(_job_runs(job, count, start, backend))
    return 1 if any(f.errors for f in files) else 0


def _job_json(
    job: desired_mod.DesiredResource, count: int, start: datetime, backend: str
) -> dict[str, Any]:
    spec = specs.JobSpec.from_dict(job.spec)
    fires = (
        scheduling.next_fires(
            spec.schedule, spec.timezone, start=start, count=count, dst=spec.dst, backend=backend
        )
        if spec.enabled
        else []
    )
    return {
        "key": job.key,
        "schedule": spec.schedule,
        "description": scheduling.describe(spec.schedule),
        "timezone": spec.timezone,
        "enabled": spec.enabled,
        "dst": scheduling.effective_dst(spec.dst, spec.schedule, backend),
        "fires": [{"at": f.at, "utc": f.utc, "note": f.note or None} for f in fires],
    }


def _job_runs(job: desired_mod.DesiredResource, count: int, start: datetime, backend: str) -> str:
    spec = specs.JobSpec.from_dict(job.spec)
    expr, tz = spec.schedule, spec.timezone
    head = f"{job.key}  [{expr}] {scheduling.describe(expr)} ({tz})"
    if not spec.enabled:
        return f"{head}\n    paused: does not fire\n"
    lines = [head]
    if scheduling.effective_dst(spec.dst, expr, backend) != spec.dst:
        lines.append(
            f"    dst {spec.dst} on {backend}: a time the spring-forward gap skips does not fire "
            "(its cron scheduler skips it; the embedded scheduler fires it at the jump)"
        )
    fires = scheduling.next_fires(expr, tz, start=start, count=count, dst=spec.dst, backend=backend)
    for fire in fires:
        local = fire.at.strftime("%a %Y-%m-%d %H:%M %Z")
        utc = fire.utc.strftime("%Y-%m-%d %H:%M UTC")
        flag = f"  ! {fire.note}" if fire.note else ""
        lines.append(f"    {local:<28} {utc}{flag}")
    return "\n".join(lines) + "\n"


# -- schema -----------------------------------------------------------------------------------


def schema(output: Path | None, check: bool) -> int:
    text = schema_mod.render_schema()
    if output is None:
        out(text)
        return 0
    if check:
        current = output.read_text(encoding="utf-8") if output.exists() else ""
        if current != text:
            print(f"{output} is stale: run `make schema`", file=sys.stderr)
            return 1
        return 0
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(text, encoding="utf-8")
    return 0


# -- reconcile --------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReconcileArgs:
    source: SourceSpec
    settings: Settings
    dry_run: bool
    check: bool
    detailed_exitcode: bool
    fmt: str
    options: PlanOptions
    yes: bool = False  # --yes / --auto-approve: apply without asking
    server: str | None = None  # --server: plan on this running operator (dry runs only)


def reconcile(args: ReconcileArgs) -> int:
    """Plan, show the plan, then (approved) apply it, as ``terraform apply`` does.

    The plan is printed once, before anything is written. On a terminal the user is asked to
    type ``yes``; elsewhere (CI, pipes) applying needs ``--yes``, so a script can never apply a
    plan nobody asked for. Dry runs only print.
    """
    cli_settings.warn_unknown(args.settings)
    if args.server is not None:
        return remote_dry_run(args)
    if args.check:
        return drift_check(args)
    interactive = sys.stdin.isatty() and sys.stdout.isatty()
    if not args.dry_run and not args.yes and not interactive:
        raise NotApproved(
            "reconcile applies changes only when approved: pass --yes (or --auto-approve) to "
            "apply without a terminal, or --dry-run to print the plan"
        )
    fmt: Any = args.fmt

    def show(plan: plan_mod.Plan) -> None:
        out(render.render(plan, fmt, now=CLOCK.now(), color=sys.stdout.isatty()))
        sys.stdout.flush()  # before the apply's progress lines on stderr, even under a pipe

    def approve(plan: plan_mod.Plan) -> bool:
        asking = not args.yes and plan.has_changes
        if args.fmt != "json":
            show(plan)
        elif asking:  # stdout gets one document, after the apply; the review goes to stderr
            print(render.render(plan, fmt, now=CLOCK.now()), file=sys.stderr)
        return _ask(plan) if asking else True

    spec = args.source
    if spec.repo is None:  # a work tree: wait out a save caught half-way (reconcile.confirm)
        spec = replace(spec, settle=variables.WORKTREE_SETTLE.read(variables.environ()))
    with _progress(enabled=not args.dry_run) as progress:
        outcome = run_reconcile(
            spec,
            args.settings,
            options=args.options,
            dry_run=args.dry_run,
            progress=progress,
            approve=None if args.dry_run else approve,
        )
    if outcome.lock_takeover is not None:
        print(f"warning: {outcome.lock_takeover}", file=sys.stderr)
    plan = outcome.plan
    if args.dry_run:
        show(plan)
    if outcome.declined:
        print("Apply cancelled: nothing was changed.", file=sys.stderr)
        return 1
    if outcome.applied is not None:
        applied = outcome.applied
        if args.fmt == "json":
            out(jsonout.render_applied(plan, applied))
        print(_apply_summary(applied), file=sys.stderr if args.fmt == "json" else sys.stdout)
        for item in applied.failed:
            print(f"error: {item.change.key}: {item.error}", file=sys.stderr)
        for problem in applied.problems:
            print(f"error: {problem}", file=sys.stderr)
        if not applied.ok:
            return 1
    # not ok: load errors, or a refused change (a delete, the subscription)
    detailed = args.dry_run and args.detailed_exitcode
    return remote.exit_code(ok=plan.ok, has_changes=plan.has_changes, detailed=detailed)


def remote_dry_run(args: ReconcileArgs) -> int:
    """``--dry-run --server URL``: the operator there plans the files read here."""
    assert args.server is not None
    if not args.dry_run or args.check:
        raise NotApproved(
            "--server plans only: use it with --dry-run (apply where the state is: `run`, or "
            "`reconcile --yes` with PLANNER_DATABASE_URL)"
        )
    answer = remote.plan(
        args.server, args.source.read(), args.fmt, args.options, variables.environ(None)
    )
    out(answer.output)
    return remote.exit_code(
        ok=answer.ok, has_changes=answer.has_changes, detailed=args.detailed_exitcode
    )


def _apply_summary(result: ApplyResult) -> str:
    """One line; a failed once-per-apply step (an Inngest sync, its read-back) is named in it,
    because the writes it follows do not take effect without it."""
    counts = f"{len(result.succeeded)} change(s) applied, {len(result.failed)} failed"
    if not result.problems:
        return f"Apply: {counts}."
    return f"Apply failed: {counts}; {'; '.join(result.problems)}"


def _ask(plan: plan_mod.Plan) -> bool:
    count = sum(1 for c in plan.changes if c.op is not plan_mod.Op.NOOP and c.blocked is None)
    print(
        f"\nDo you want to apply these {count} change(s)?\n"
        "  Only 'yes' will be accepted to approve.\n",
        file=sys.stderr,
    )
    try:
        answer = input("  Enter a value: ")
    except EOFError:
        return False
    return answer.strip() == "yes"


@contextlib.contextmanager
def _progress(*, enabled: bool) -> Iterator[Progress | None]:
    """A rich progress bar on a terminal; one plain line per item otherwise (CI logs)."""
    if not enabled:
        yield None
        return
    if not sys.stderr.isatty():

        def line(index: int, total: int, item: ItemResult) -> None:
            mark = "ok" if item.ok else f"FAILED: {item.error}"
            sys.stderr.write(f"[{index}/{total}] {item.change.op} {item.change.key} {mark}\n")

        yield line
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn
    from rich.progress import Progress as Bar

    with Bar(
        TextColumn("apply"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.description}"),
        console=Console(stderr=True),
        transient=True,
    ) as bar:
        task = bar.add_task("", total=None)

        def advance(index: int, total: int, item: ItemResult) -> None:
            bar.update(task, total=total, completed=index, description=item.change.key)
            if not item.ok:
                bar.console.print(f"[red]FAILED[/red] {item.change.key}: {item.error}")

        yield advance


def drift_check(args: ReconcileArgs) -> int:
    with session(args.settings) as (backends, ledger):
        actual = {(r.kind, r.remote_id): r for r in read_actual(backends)}
        drifts = [
            d
            for e in ledger.entries(include_retired=False)
            for d in plan_mod.drift_of(e, actual.get((e.kind, e.remote_id)))
        ]
    if args.fmt == "json":
        out(jsonfmt.document("drift", {"drift": [d.__dict__ for d in drifts]}))
    else:
        for d in drifts:
            out(f"drift: {d.key} ({d.remote_id}): {d.what}")
        out(f"{len(drifts)} drifted resource(s)." if drifts else "No drift: remote matches ledger.")
    return 2 if drifts else 0


# -- status / adopt / unlock ------------------------------------------------------------------


def status(settings: Settings, fmt: str) -> int:
    from planner_operator.read import status as status_mod

    report = status_mod.collect(settings, now=CLOCK.now())
    out(status_mod.render_json(report) if fmt == "json" else status_mod.render_text(report))
    return 0


def adopt(settings: Settings, key: str, remote_id: str) -> int:
    try:
        _, kind, _ = keys.split_key(key)
    except ValueError:
        raise PlannerError(f"`{key}` is not a resource key (<agent>/jobs/<name>)") from None
    backends = open_backends(settings)
    try:
        backend = backends.by_kind[kind]
        found = next((r for r in list_all(backend) if r.remote_id == remote_id), None)
        if found is None:
            raise PlannerError(f"{backend.info.name} has no {kind} with id {remote_id}")
        with state_open.ledger(settings) as ledger:
            ledger.adopt(
                OwnedEntry(
                    key=key,
                    kind=kind,
                    backend=backend.info.name,
                    remote_id=remote_id,
                    spec_hash=spec_hash(found.spec),
                    spec=dict(found.spec),
                    revision="adopted",
                    applied_at=CLOCK.now(),
                )
            )
    finally:
        backends.close()
    out(f"Adopted {remote_id} as {key}; the next reconcile brings it in line with its file.")
    return 0


def unlock(settings: Settings) -> int:
    lock = state_open.apply_lock(settings)
    try:
        held = lock.clear()
    except StateError:
        raise
    finally:
        lock.close()
    out(f"Cleared the lock held by {held.describe()}." if held else "The lock was not held.")
    return 0


def serve(
    settings: Settings,
    host: str,
    port: int,
    *,
    watch: Any = None,
    grace: float = 30.0,
) -> int:
    """Serve (and, for ``run``, watch); SIGTERM/SIGINT shut down gracefully via the lifespan."""
    cli_settings.warn_unknown(settings)
    import signal

    from planner_operator.server import connections, operator

    logsafe.configure()
    # the inbox worker in a process of its own unless PLANNER_WORKER_PROCESS=0 (issue 20 item 2)
    worker_process = variables.WORKER_PROCESS.read(variables.environ())
    app = operator.build(
        settings, watch=watch, grace=grace, bind_host=host, worker_process=worker_process
    )
    # uvicorn shuts down gracefully on SIGTERM, then re-raises the signal to the handler that
    # was installed before it: make that a clean exit, as supervisors expect after a stop.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(0))
    # header/body timeouts, a connection cap, the open-files limit (server/connections.py)
    connections.serve(app, host=host, port=port, env=variables.environ(), grace=grace)
    return 0


def run_now(settings: Settings, key: str) -> int:
    """Run an applied job once, now, through the normal executor path and run history."""
    import uuid

    from planner_operator.runtime.executors import select as executor_select
    from planner_operator.runtime.jobrun import Fire, JobRunner

    with state_open.ledger(settings) as ledger:
        key = keys.resolve(key, _applied(ledger), kind="job")
        entry = ledger.get(key)
    assert entry is not None  # resolved among the applied keys
    executors = executor_select.from_env(settings)
    with state_open.runs(settings) as runs:
        runner = JobRunner(runs, executors)
        run_id = f"manual-{uuid.uuid4().hex[:12]}"
        fire = Fire.of(entry.spec, CLOCK.now())
        result = runner.run(key, entry.spec, fire, run_id=run_id, origin="manual", claim_slot=False)
        [record] = runs.list(key=key, limit=1)
    out(f"{key}: {record.status} ({record.action}) run {record.id}")
    out(f"  {record.rendered}")
    shown = json.dumps(result, sort_keys=True, default=str)
    out(f"  result: {shown if len(shown) <= 300 else shown[:297] + '...'}")
    return 0


def _applied(ledger: Ledger) -> list[str]:
    return [e.key for e in ledger.entries(include_retired=False)]


def _run_key(settings: Settings, text: str) -> str:
    """``runs --key``: an applied job or trigger, or the full key of one that had runs."""
    with state_open.ledger(settings) as ledger:
        try:
            return keys.resolve(text, _applied(ledger))
        except NotFoundError:
            if state_open.exists(settings, "runs") and text.count("/") == 2:
                with state_open.runs(settings) as store:
                    if store.list(key=text, limit=1):
                        return text  # removed from the config since, but it has history
            raise


def _run_json(run: Any) -> dict[str, Any]:
    """A run as ``runs --format json`` shows it: a workflow's input as JSON, not as a string."""
    data = dict(run.__dict__)
    data["input"] = None
    if run.action == "workflow" and run.rendered:
        try:
            data["input"] = json.loads(run.rendered)
        except ValueError:
            data["input"] = None
    return data


def runs(settings: Settings, key: str | None, limit: int, fmt: str) -> int:
    if key is not None:
        key = _run_key(settings, key)
    if not state_open.exists(settings, "runs"):
        out("No runs yet.")
        return 0
    with state_open.runs(settings) as store:
        records = store.list(key=key, limit=limit)
    if fmt == "json":
        out(jsonfmt.document("runs", {"runs": [_run_json(r) for r in records]}))
        return 0
    if not records:
        out("No runs yet.")
    for r in records:
        why = f"  ({r.error or r.reason})" if (r.error or r.reason) else ""
        out(
            f"run {r.id:<6} {times.display(r.started_at)}  {r.status:<9} {r.origin:<9} {r.key}{why}"
        )
        if r.rendered:
            out(f"    {r.action}: {r.rendered}")
    return 0


def explain(
    settings: Settings,
    *,
    key: str | None,
    delivery: str | None,
    window: tuple[datetime | None, datetime | None],
    utc: bool,
    fmt: str,
) -> int:
    """A job's timeline (``explain KEY``) or one delivery's path (``explain --delivery ID``)."""
    from planner_operator.read.explain import load as explain_load
    from planner_operator.read.explain import render as explain_render

    if delivery is not None:
        report = explain_load.delivery(settings, delivery)
        json_fmt = fmt == "json"
        out(
            explain_render.delivery_json(report)
            if json_fmt
            else explain_render.delivery_text(report)
        )
        return 0
    assert key is not None
    if len(key.strip("/").split("/")) == 2:  # AGENT/JOB: the applied job of that name
        with state_open.ledger(settings) as ledger:
            key = keys.resolve(key, _applied(ledger), kind="job")
    start, end = window
    timeline = explain_load.job(settings, key, start=start, end=end, now=CLOCK.now())
    if fmt == "json":
        out(explain_render.timeline_json(timeline))
    else:
        out(explain_render.timeline_text(timeline, utc=utc))
    return 0


def watch(
    settings: Settings,
    options: PlanOptions,
    *,
    path: Path | None,
    repo: str | None,
    branch: str,
    interval: float,
    subdir: str,
) -> int:
    cli_settings.warn_unknown(settings)

    from planner_operator.reconcile import watch as watch_mod

    logsafe.configure("%(asctime)s %(levelname)s %(message)s")
    if path is not None:
        watch_mod.watch_files(
            path, settings, options, on_cycle=lambda cycle: watch_mod.record(settings, cycle)
        )
        return 0
    assert repo is not None
    watcher = watch_mod.GitWatcher(
        repo, branch, settings, options, interval=interval, subdir=subdir
    )
    for cycle in watcher.cycles():
        watch_mod.record(settings, cycle)
    return 0
