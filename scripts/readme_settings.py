"""Regenerate README.md's configuration table from the settings table (``make readme``).

``--check`` exits 1 when README.md is stale instead of writing it (tests/core/test_settings.py
checks the same).
"""

from __future__ import annotations

import sys
from pathlib import Path

from planner_operator.core import settings

README = Path(__file__).resolve().parents[1] / "README.md"


def main(argv: list[str]) -> int:
    text = README.read_text(encoding="utf-8")
    fresh = settings.readme_with_table(text, settings.markdown())
    if fresh == text:
        return 0
    if "--check" in argv:
        print("README.md's settings table is stale: run `make readme`", file=sys.stderr)
        return 1
    README.write_text(fresh, encoding="utf-8")
    print("README.md: settings table regenerated")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
