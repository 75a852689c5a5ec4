"""`planner-operator composio ...`: Composio project chores that are not part of a reconcile.

Mounted by cli.py (``app.add_typer(composio_cli.app, name="composio")``). The backend is imported
inside each command: the SDK takes seconds to import and most CLI runs never touch Composio.
The webhook secret is never printed; only where it went.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from planner_operator.core import variables
from planner_operator.core.settings import Settings
from planner_operator.errors import PlannerError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    rich_markup_mode=None,
    help="Composio project settings: the webhook subscription that delivers trigger events.",
    pretty_exceptions_enable=False,
)


@app.command("rotate-secret")
def rotate_secret(
    state_dir: Annotated[
        Path | None,
        typer.Option(
            "--state-dir",
            help="Operator state directory (env PLANNER_STATE_DIR; default .planner).",
        ),
    ] = None,
) -> None:
    """Rotate the signing secret of the project's webhook subscription and store the new one.

    Composio signs every delivery with the new secret at once, so restart (or reload) `serve`
    right after; deliveries already in flight with the old signature are retried by Composio.
    """
    from planner_operator.backends.composio import backend as composio

    try:
        settings = Settings.resolve(state_dir=state_dir)
        with composio.from_env(settings, variables.environ()) as backend:
            subscription, store = backend.rotate_webhook_secret()
    except PlannerError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(
        f"Rotated the signing secret of Composio webhook subscription {subscription}; "
        f"the new secret is in {store.path} (mode 0600). Restart `planner-operator serve`."
    )
    if store.from_env:
        typer.echo(
            "warning: COMPOSIO_WEBHOOK_SECRET is set and takes precedence over that file: update "
            "it from the file (or unset it), or deliveries will fail verification",
            err=True,
        )
