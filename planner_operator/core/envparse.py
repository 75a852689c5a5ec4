"""One environment variable and one parser per type of value, for the table in ``variables``.

Before this module, 44 variables were read through about nine hand-written number and flag
parsers that disagreed (``PLANNER_GC_TUNE=true`` tuned the collector in one module and not in
the other; ``PLANNER_WORKER=maybe`` meant on; ``PLANNER_LOCK_TIMEOUT=-1`` was accepted). Every
variable now names one parser here, so a value means the same thing wherever it is read, and a
bad value is one ``SourceError`` that names the variable and the value (a secret's value is
never shown).

The rules every parser shares: a variable that is unset *or empty* takes its default (a shell's
``export X=`` is how people unset things), except where a variable says otherwise
(``empty_is_unset=False``: ``PLANNER_API_TOKEN=`` is a deploy mistake, not "no token"); values
are stripped of surrounding whitespace before parsing.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar

from planner_operator.errors import SourceError

T = TypeVar("T")

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


@dataclass(frozen=True)
class Var(Generic[T]):
    """One environment variable: its name, what it means, and how its text becomes a value.

    ``type`` and ``shown_default`` are what the README table says; ``component`` is which part
    of the operator reads it; ``flag`` is the command-line option that overrides it, if any.
    """

    name: str
    type: str
    default: T
    meaning: str
    component: str
    parse: Callable[[Var[Any], str], T] = field(repr=False, compare=False)
    secret: bool = False
    flag: str = ""
    shown_default: str = ""
    empty_is_unset: bool = True

    def read(self, env: Mapping[str, str]) -> T:
        """The typed value from ``env``: its default when unset (or empty), else parsed."""
        raw = env.get(self.name)
        if raw is None:
            return self.default
        text = raw.strip()
        if not text and self.empty_is_unset:
            return self.default
        return self.parse(self, text)

    def is_set(self, env: Mapping[str, str]) -> bool:
        """Set to something other than blanks (what "configured" means for auto-selection)."""
        return bool((env.get(self.name) or "").strip())

    def error(self, raw: str, problem: str) -> SourceError:
        """``NAME='value' problem``, with a secret's value replaced by ``<hidden>``."""
        shown = "<hidden>" if self.secret else repr(raw)
        return SourceError(f"{self.name}={shown} {problem}")

    @property
    def default_text(self) -> str:
        if self.shown_default:
            return self.shown_default
        if self.default is None or self.default in ("", ()):
            return "—"
        if isinstance(self.default, bool):
            return "`on`" if self.default else "`off`"
        if isinstance(self.default, float) and self.default.is_integer():
            return f"`{int(self.default)}`"
        return f"`{self.default}`"


# -- parsers: each takes (variable, stripped text) and returns the value or raises ----------


def text(var: Var[Any], raw: str) -> str:
    return raw


def path(var: Var[Any], raw: str) -> Path:
    return Path(raw).expanduser()


def flag(var: Var[Any], raw: str) -> bool:
    value = raw.lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise var.error(raw, "is not a flag: use 1, true, yes or on; 0, false, no or off")


def whole(minimum: int = 0, *, unit: str = "") -> Callable[[Var[Any], str], int]:
    """A whole number of at least ``minimum`` (``unit`` only words the error)."""

    def parse(var: Var[Any], raw: str) -> int:
        digits = raw.removeprefix("-")
        if not digits.isdigit():
            raise var.error(raw, f"is not a whole number{' of ' + unit if unit else ''}")
        value = int(raw)
        if value < minimum:
            raise var.error(raw, f"must be at least {minimum}{' ' + unit if unit else ''}")
        return value

    return parse


def seconds(*, positive: bool = False) -> Callable[[Var[Any], str], float]:
    """A finite number of seconds, at least 0 (more than 0 when ``positive``)."""

    def parse(var: Var[Any], raw: str) -> float:
        try:
            value = float(raw)
        except ValueError:
            raise var.error(raw, "is not a number of seconds") from None
        if not math.isfinite(value) or value < 0 or (positive and value == 0):
            need = "more than 0" if positive else "0 or more"
            raise var.error(raw, f"must be {need} seconds")
        return value

    return parse


def fraction(var: Var[Any], raw: str) -> float:
    """A share in (0, 1]."""
    try:
        value = float(raw)
    except ValueError:
        raise var.error(raw, "is not a number: use a share in (0, 1], e.g. 0.5") from None
    if not 0 < value <= 1:
        raise var.error(raw, "must be a share in (0, 1], e.g. 0.5")
    return value


def url(var: Var[Any], raw: str) -> str:
    """An http(s) URL, without a trailing slash (callers append paths)."""
    scheme, sep, rest = raw.partition("://")
    if not sep or scheme.lower() not in ("http", "https") or not rest.strip("/"):
        raise var.error(raw, "is not a URL: use http(s)://host[:port][/path]")
    return raw.rstrip("/")


def database_url(var: Var[Any], raw: str) -> str:
    """A PostgreSQL URL (``postgresql://user:password@host:port/dbname``, libpq's form)."""
    scheme, sep, rest = raw.partition("://")
    if not sep or scheme.lower() not in ("postgresql", "postgres") or not rest.strip("/"):
        raise var.error(
            raw,
            "is not a PostgreSQL URL: use postgresql://user:password@host[:port]/dbname "
            "(unset it to keep the state in SQLite files under the state directory)",
        )
    return raw


def url_path(var: Var[Any], raw: str) -> str:
    if not raw.startswith("/"):
        raise var.error(raw, "is not a URL path: it must start with /, e.g. /api/inngest")
    return raw


def choice(*options: str, upper: bool = False) -> Callable[[Var[Any], str], str]:
    """One of ``options``, case-insensitively (normalised to lower or upper case)."""

    def parse(var: Var[Any], raw: str) -> str:
        value = raw.upper() if upper else raw.lower()
        if value not in options:
            listed = " or ".join(f"`{o}`" for o in options)
            raise var.error(raw, f"is not a valid value: use {listed}")
        return value

    return parse


def items(var: Var[Any], raw: str) -> tuple[str, ...]:
    """A list separated by ``;`` or newlines; blank items are dropped."""
    return tuple(i.strip() for i in raw.replace("\n", ";").split(";") if i.strip())


def names(var: Var[Any], raw: str) -> tuple[str, ...]:
    """A list of names separated by commas, semicolons or white space (host names)."""
    return tuple(n for n in raw.replace(";", ",").replace(",", " ").split() if n)


def dev_server(default_url: str) -> Callable[[Var[Any], str], str | None]:
    """Inngest's ``INNGEST_DEV``: off (None, production) or a dev server's URL.

    As in the Inngest SDKs, ``1`` means the dev server at its usual address and a URL means
    that server.
    """

    def parse(var: Var[Any], raw: str) -> str | None:
        if raw.lower() in _FALSE:
            return None
        if raw.lower() in _TRUE:
            return default_url
        return url(var, raw)

    return parse
