"""Where every value of an agent file came from: the map from data paths to positions.

Pydantic reports errors by path (``('planner', 'jobs', 0, 'schedule')``); users need
``agents/x.yaml:12:17``. ``config.nodes`` converts YAML to plain data and fills a ``Positions``
with the key and value position of every path; the loader looks errors up here.
"""

from __future__ import annotations

from dataclasses import dataclass, field

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


@dataclass
class Positions:
    """1-based (line, col) of each path's key and value."""

    keys: dict[Path, tuple[int, int]] = field(default_factory=dict)
    values: dict[Path, tuple[int, int]] = field(default_factory=dict)

    def key(self, path: Path) -> tuple[int, int]:
        """Where the key of ``path`` is written (for unknown keys), falling back to the value."""
        return self.keys.get(path) or self.value(path)

    def value(self, path: Path) -> tuple[int, int]:
        """Where the value at ``path`` is, or the nearest enclosing thing that has a position."""
        probe = path
        while probe:
            if probe in self.values:
                return self.values[probe]
            if probe in self.keys:
                return self.keys[probe]
            probe = probe[:-1]
        return self.values.get((), (1, 1))


def dotted(path: Path) -> str:
    """A path as users write it: ``planner.jobs[0].schedule``."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out
