"""``job-application-check``: report job postings that newly match the user's keywords.

Reads a postings file (JSON list; ``input.postings_file``, else ``PLANNER_POSTINGS_FILE``, else
``examples/postings.json``), matches each posting's title, company, location, tags and
description against ``input.keywords`` (case-insensitive, any keyword), and reports the matches
not reported before. What was reported is kept in ``<state_dir>/workflows/
job-application-check.json``, recorded with the run key that first reported it, so a retried run
(same key) reports the same postings again instead of nothing: the run is idempotent.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from planner_operator.core import variables
from planner_operator.errors import PermanentError

DEFAULT_FILE = Path("examples") / "postings.json"
_FIELDS = ("title", "company", "location", "description")


def run(input: Mapping[str, Any], context: Mapping[str, Any]) -> dict[str, Any]:
    keywords = _keywords(input.get("keywords"))
    path = _postings_file(input)
    postings = _read_postings(path)
    state_dir = Path(str(context.get("state_dir") or ".planner"))
    run_key = str(context.get("run_key") or "")
    matched = [(p, _matched(p, keywords)) for p in postings]
    matched = [(p, hits) for p, hits in matched if hits]
    with _seen(state_dir / "workflows" / "job-application-check.json") as seen:
        new = []
        for posting, hits in matched:
            pid = str(posting["id"])
            first = seen.setdefault(pid, run_key)
            if first == run_key:
                new.append(_report(posting, hits))
    lines = [
        f"- {n['title']} at {n['company']} ({', '.join(n['matched'])}) {n['url']}" for n in new
    ]
    summary = f"{len(new)} new matching posting(s) of {len(matched)} match(es)"
    return {
        "checked": len(postings),
        "matched": len(matched),
        "new_matches": new,
        "report": summary + (":\n" + "\n".join(lines) if lines else "."),
        "keywords": keywords,
        "source": str(path),
        "checked_on": input.get("checked_on"),
    }


def _keywords(value: Any) -> list[str]:
    if isinstance(value, str):
        value = value.replace(";", ",").split(",")
    if not isinstance(value, list) or not any(isinstance(v, str) and v.strip() for v in value):
        raise PermanentError(
            "job-application-check needs `keywords` (a list of words) in its input",
            backend="workflow",
        )
    return [v.strip() for v in value if isinstance(v, str) and v.strip()]


def _postings_file(input: Mapping[str, Any]) -> Path:
    given = input.get("postings_file") or variables.POSTINGS_FILE.read(variables.environ())
    if given:
        return Path(str(given))
    here = Path(__file__).resolve().parents[3] / DEFAULT_FILE  # a source checkout
    return DEFAULT_FILE if DEFAULT_FILE.exists() else here


def _read_postings(path: Path) -> list[dict[str, Any]]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise PermanentError(f"postings file {path} does not exist", backend="workflow") from None
    except (OSError, ValueError) as exc:
        raise PermanentError(
            f"cannot read postings file {path}: {exc}", backend="workflow"
        ) from exc
    items = data.get("postings") if isinstance(data, dict) else data
    if not isinstance(items, list):
        raise PermanentError(f"{path}: expected a list of postings", backend="workflow")
    return [p for p in items if isinstance(p, dict) and "id" in p]


def _matched(posting: Mapping[str, Any], keywords: list[str]) -> list[str]:
    text = " ".join(str(posting.get(f, "")) for f in _FIELDS)
    tags = posting.get("tags") or []
    text += " " + " ".join(str(t) for t in tags if isinstance(tags, list))
    folded = text.casefold()
    return [k for k in keywords if k.casefold() in folded]


def _report(posting: Mapping[str, Any], hits: list[str]) -> dict[str, Any]:
    return {
        "id": str(posting["id"]),
        "title": str(posting.get("title", "")),
        "company": str(posting.get("company", "")),
        "location": str(posting.get("location", "")),
        "url": str(posting.get("url", "")),
        "matched": hits,
    }


@contextlib.contextmanager
def _seen(path: Path) -> Iterator[dict[str, str]]:
    """The reported-postings map, locked and written back atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_suffix(".lock"), "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            seen: dict[str, str] = {}
            if path.exists():
                with contextlib.suppress(ValueError, OSError):
                    loaded = json.loads(path.read_text(encoding="utf-8"))
                    if isinstance(loaded, dict):
                        seen = {str(k): str(v) for k, v in loaded.get("seen", {}).items()}
            yield seen
            tmp = path.with_suffix(".tmp")
            tmp.write_text(json.dumps({"seen": seen}, indent=1, sort_keys=True), encoding="utf-8")
            os.replace(tmp, path)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
