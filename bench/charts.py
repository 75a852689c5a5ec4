"""Small PNG charts for BENCHMARKS.md, drawn by the benchmarks from their own figures.

matplotlib (a dev extra) with the Agg backend: no display, no fonts fetched. Each function
writes one file under ``bench/charts/`` and returns its path relative to the repository, for
the Markdown image link. A chart is a picture of the table beside it, never a second source.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DIR = ROOT / "bench" / "charts"


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, name: str) -> str:
    DIR.mkdir(parents=True, exist_ok=True)
    path = DIR / name
    fig.savefig(path, dpi=90, bbox_inches="tight")
    _plt().close(fig)
    return str(path.relative_to(ROOT))


def bars(
    name: str,
    title: str,
    groups: Mapping[str, Mapping[str, float]],
    *,
    unit: str,
    stacked: bool = False,
    target: float | None = None,
    log: bool = False,
) -> str:
    """One bar (or stack) per group; ``groups[g][series]`` is a value."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.4, 3.0))
    labels = list(groups)
    series = list(dict.fromkeys(s for g in groups.values() for s in g))
    bottoms = [0.0] * len(labels)
    width = 0.8 if stacked else 0.8 / max(len(series), 1)
    for i, s in enumerate(series):
        values = [groups[g].get(s, 0.0) for g in labels]
        if stacked:
            ax.barh(labels, values, left=bottoms, label=s)
            bottoms = [b + v for b, v in zip(bottoms, values, strict=True)]
        else:
            offsets = [n + (i - (len(series) - 1) / 2) * width for n in range(len(labels))]
            ax.barh(offsets, values, height=width, label=s)
    if not stacked:
        ax.set_yticks(range(len(labels)), labels)
    if target is not None:
        ax.axvline(target, color="red", linestyle="--", linewidth=1, label="target")
    if log:
        ax.set_xscale("log")
    ax.invert_yaxis()
    ax.set_xlabel(unit)
    ax.set_title(title, fontsize=10)
    if len(series) > 1 or target is not None:
        ax.legend(fontsize=7, loc="best")
    return _save(fig, name)


def line(
    name: str,
    title: str,
    points: Sequence[tuple[float, float]],
    *,
    xlabel: str,
    ylabel: str,
    band: tuple[float, float] | None = None,
) -> str:
    """One line; ``band`` = (low, high) shades the allowed range."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.4, 3.0))
    ax.plot([p[0] for p in points], [p[1] for p in points], marker="o", markersize=3)
    if band is not None:
        ax.axhspan(*band, color="green", alpha=0.1, label="target")
        ax.legend(fontsize=7)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    return _save(fig, name)
