"""`planner-operator composio ...`: Composio project chores that are not part of a reconcile.

Mounted by cli.py (``app.add_typer(composio_cli.app, name="composio")``). The backend is imported
inside each command: the SDK takes seconds to import and most CLI runs never touch Composio.
The webhook secret is never printed; only where it went.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from planner_operator.core import jsonfmt, variables
from planner_operator.core.settings import Settings
from planner_operator.errors import PlannerError

if TYPE_CHECKING:
    from planner_operator.backends.composio.backend import TriggerType

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    rich_markup_mode=None,
    help="Composio project settings: the webhook subscription that delivers trigger events, "
    "and the trigger types a file can name.",
    pretty_exceptions_enable=False,
)
StateDir = Annotated[
    Path | None,
    typer.Option(
        "--state-dir", help="Operator state directory (env PLANNER_STATE_DIR; default .planner)."
    ),
]


class Format(StrEnum):
    text = "text"
    json = "json"


def _fail(exc: PlannerError) -> typer.Exit:
    typer.echo(f"error: {exc}", err=True)
    return typer.Exit(1)


@app.command("rotate-secret")
def rotate_secret(
    state_dir: StateDir = None,
    grace: Annotated[
        float,
        typer.Option(
            "--grace-hours",
            min=0,
            help="Keep accepting the old secret this long, for deliveries signed before.",
        ),
    ] = 24.0,
) -> None:
    """Rotate the signing secret of the project's webhook subscription and store the new one.

    Composio signs every delivery with the new secret at once. `serve` re-reads the stored
    secret every few seconds, so it needs no restart, and it keeps accepting the old one for
    --grace-hours, so a delivery signed before the rotation and retried after still verifies.

    \b
    Example:
      planner-operator composio rotate-secret --grace-hours 1
    """
    from planner_operator.backends.composio import backend as composio

    try:
        settings = Settings.resolve(state_dir=state_dir)
        with composio.from_env(settings, variables.environ()) as backend:
            subscription, where = backend.rotate_webhook_secret(grace=grace * 3600)
    except PlannerError as exc:
        raise _fail(exc) from None
    typer.echo(
        f"Rotated the signing secret of Composio webhook subscription {subscription}; the new "
        f"secret is stored in {where} (mode 0600). Running `serve` processes pick it up within "
        f"seconds and accept the old one for {grace:g} more hour(s)."
    )
    if variables.COMPOSIO_WEBHOOK_SECRET.read(variables.environ()):
        typer.echo(
            "warning: COMPOSIO_WEBHOOK_SECRET is set and takes precedence over the stored "
            "secret: update it everywhere `serve` runs (or unset it), or deliveries will fail "
            "verification",
            err=True,
        )


@app.command("trigger-types")
def trigger_types(
    toolkit: Annotated[
        str | None, typer.Option("--toolkit", help="Only this toolkit's types, e.g. gmail.")
    ] = None,
    fmt: Annotated[Format, typer.Option("--format", "-f", help="Output format.")] = Format.text,
    state_dir: StateDir = None,
) -> None:
    """List the trigger types Composio offers: slug, poll or webhook, config and payload fields.

    `config` is what a trigger's `config:` may set (* = required); `payload` is what its
    templates can name, e.g. {subject}.

    \b
    Examples:
      planner-operator composio trigger-types --toolkit gmail
      planner-operator composio trigger-types -f json
    """
    from planner_operator.backends.composio import backend as composio

    try:
        settings = Settings.resolve(state_dir=state_dir)
        with composio.from_env(settings, variables.environ()) as backend:
            found = backend.trigger_types(toolkit.lower() if toolkit else None)
    except PlannerError as exc:
        raise _fail(exc) from None
    if fmt is Format.json:
        typer.echo(jsonfmt.document("trigger_types", {"trigger_types": [_json(t) for t in found]}))
        return
    if not found:
        where = f" for toolkit `{toolkit}`" if toolkit else ""
        typer.echo(f"No trigger types{where}.")
        return
    for t in sorted(found, key=lambda t: (t.toolkit, t.slug)):
        typer.echo(f"{t.slug}  ({t.toolkit}, {t.kind or '?'})  {t.name}")
        typer.echo(f"  config:  {', '.join(_fields(t.config, required=True)) or '-'}")
        typer.echo(f"  payload: {', '.join(_fields(t.payload)) or '-'}")
    typer.echo(f"{len(found)} trigger type(s).")


def _fields(schema: Mapping[str, Any], *, required: bool = False) -> list[str]:
    """``name: type`` per top-level property; ``*`` marks the required ones."""
    props = schema.get("properties") or {}
    needed = set(schema.get("required") or ()) if required else set()
    out = []
    for name, spec in props.items():
        out.append(f"{name}{'*' if name in needed else ''}: {_kind(spec)}")
    return out


def _kind(spec: Any) -> str:
    """A property's type as people write it: ``string``, ``string|null`` (pydantic's
    ``anyOf`` for an optional field, which most Composio payloads are), else ``any``."""
    if not isinstance(spec, Mapping):
        return "any"
    kind = spec.get("type")
    if isinstance(kind, list):
        return "|".join(map(str, kind))
    if kind:
        return str(kind)
    branches = spec.get("anyOf") or spec.get("oneOf")
    if isinstance(branches, list) and branches:
        return "|".join(dict.fromkeys(_kind(b) for b in branches))
    ref = spec.get("$ref")
    return str(ref).rsplit("/", 1)[-1] if ref else "any"


def _json(t: TriggerType) -> dict[str, Any]:
    return {
        "slug": t.slug,
        "toolkit": t.toolkit,
        "type": t.kind,
        "name": t.name,
        "description": t.description,
        "config": dict(t.config),
        "payload": dict(t.payload),
    }
