"""Where every value of an agent file came from: the map from data paths to positions.

Pydantic reports errors by path (``('planner', 'jobs', 0, 'schedule')``); users need
``agents/x.yaml:12:17``. ``config.nodes`` converts YAML to plain data and fills a ``Positions``
with the key and value position of every path; the loader looks errors up here.
"""

from __future__ import annotations

from collections.abc import Callable

Path = tuple[str | int, ...]

MAX_NODES = 100_000
MAX_DEPTH = 64


class ConversionError(Exception):
    """Raised inside conversion with the path where it happened; the loader adds the file.

    ``position`` is the 1-based (line, col) of the offending node.
    """

    def __init__(
        self,
        message: str,
        path: Path,
        *,
        hint: str | None = None,
        position: tuple[int, int] | None = None,
    ) -> None:
        self.path = path
        self.hint = hint
        self.position = position
        super().__init__(message)


class Positions:
    """1-based (line, col) of each path's key and value.

    ``deferred`` builds both tables on first use instead: a file taken from the parse cache
    (``config.cached``) that loaded cleanly is planned from its kept resources and rarely asks
    for a position, and rebuilding ~200 paths per file was most of a cached load.
    """

    __slots__ = ("_deferred", "_keys", "_values")

    def __init__(
        self,
        keys: dict[Path, tuple[int, int]] | None = None,
        values: dict[Path, tuple[int, int]] | None = None,
        *,
        deferred: Callable[[], Positions] | None = None,
    ) -> None:
        self._keys = {} if keys is None else keys
        self._values = {} if values is None else values
        self._deferred = deferred

    def _built(self) -> None:
        if self._deferred is not None:
            built = self._deferred()
            self._keys, self._values, self._deferred = built.keys, built.values, None

    @property
    def keys(self) -> dict[Path, tuple[int, int]]:
        self._built()
        return self._keys

    @property
    def values(self) -> dict[Path, tuple[int, int]]:
        self._built()
        return self._values

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Positions):
            return NotImplemented
        return (self.keys, self.values) == (other.keys, other.values)

    __hash__ = None  # type: ignore[assignment]  # mutable, like the dataclass it was

    def __repr__(self) -> str:
        return f"Positions(keys={self.keys!r}, values={self.values!r})"

    def key(self, path: Path) -> tuple[int, int]:
        """Where the key of ``path`` is written (for unknown keys), falling back to the value."""
        return self.keys.get(path) or self.value(path)

    def value(self, path: Path) -> tuple[int, int]:
        """Where the value at ``path`` is, or the nearest enclosing thing that has a position."""
        probe = path
        values, keys = self.values, self.keys
        while probe:
            if probe in values:
                return values[probe]
            if probe in keys:
                return keys[probe]
            probe = probe[:-1]
        return values.get((), (1, 1))


def dotted(path: Path) -> str:
    """A path as users write it: ``planner.jobs[0].schedule``."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out
