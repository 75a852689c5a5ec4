"""Regenerate ``planner_operator/config/trigger_types.json`` (the offline trigger-type catalog).

Input: a snapshot of Composio trigger types as ``GET /api/v3/triggers_types`` items, e.g.
ComposioHQ/composio ``ts/packages/cli/test/__mocks__/trigger-types.json`` (a copy of the CLI's
cache of real API answers). Each kept type carries its slug, toolkit, name, poll/webhook kind and
its ``config`` and ``payload`` JSON Schemas verbatim; the snapshot has no toolkit field, so the
toolkit is the slug's prefix (``ONE_DRIVE_...`` is ``one_drive``, Composio's toolkit slug).

    python scripts/trigger_catalog.py SNAPSHOT.json --from "ComposioHQ/composio@3e989ec1d ..."
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

OUT = Path(__file__).resolve().parents[1] / "planner_operator" / "config" / "trigger_types.json"
TWO_WORD_TOOLKITS = ("ONE_DRIVE_",)


def toolkit_of(slug: str) -> str:
    for prefix in TWO_WORD_TOOLKITS:
        if slug.startswith(prefix):
            return prefix.rstrip("_").lower()
    return slug.split("_", 1)[0].lower()


def entry(item: dict[str, Any]) -> dict[str, Any]:
    return {
        "toolkit": toolkit_of(item["slug"]),
        "name": item.get("name") or "",
        "type": item.get("type") or "",
        "config": item.get("config") or {},
        "payload": item.get("payload") or {},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("snapshot", type=Path)
    parser.add_argument("--from", dest="origin", required=True, help="where the snapshot is from")
    args = parser.parse_args()
    items = json.loads(args.snapshot.read_text(encoding="utf-8"))
    types = {item["slug"]: entry(item) for item in sorted(items, key=lambda i: i["slug"])}
    toolkits = sorted({t["toolkit"] for t in types.values()})
    document = {
        "_source": (
            f"Composio trigger types for offline checks: {len(types)} types of {len(toolkits)} "
            f"toolkits, from {args.origin}. Verbatim per type: slug, name, type, config and "
            "payload (JSON Schemas); toolkit = the slug's prefix (the snapshot has none). "
            "Regenerate with scripts/trigger_catalog.py. Composio adds and renames types "
            "over time: with COMPOSIO_API_KEY set the live trigger types are checked instead."
        ),
        "toolkits": toolkits,
        "trigger_types": types,
    }
    OUT.write_text(json.dumps(document, indent=1, sort_keys=True, ensure_ascii=False) + "\n")
    print(f"{OUT}: {len(types)} trigger types, toolkits {', '.join(toolkits)}")


if __name__ == "__main__":
    main()
