"""``post-deploy-checks``: check a deployment notification and list what needs a human.

Runs on the payload a CD system posts to the generic webhook. It checks what the payload itself
can prove (the deploy succeeded, it names a service, a version and an environment, production
deploys name who approved them) and returns a checklist; it does not probe the deployed service
(no network access from the embedded default), and says so.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def run(input: Mapping[str, Any], context: Mapping[str, Any]) -> dict[str, Any]:
    data = input.get("data") if isinstance(input.get("data"), Mapping) else input
    assert isinstance(data, Mapping)
    service = _first(data, "service", "app", "repository", "name")
    version = _first(data, "version", "sha", "commit", "ref", "tag")
    environment = _first(data, "environment", "env", "stage")
    status = str(_first(data, "status", "state", "conclusion") or "").lower()
    checks = [
        ("names the service", bool(service)),
        ("names the version", bool(version)),
        ("names the environment", bool(environment)),
        ("reports success", status in ("success", "succeeded", "ok", "completed", "deployed")),
    ]
    if str(environment or "").lower() in ("prod", "production"):
        checks.append(
            ("production deploy names its approver", bool(_first(data, "approver", "approved_by")))
        )
    failed = [name for name, ok in checks if not ok]
    return {
        "service": service,
        "version": version,
        "environment": environment,
        "checks": [{"check": name, "ok": ok} for name, ok in checks],
        "status": "attention" if failed else "passed",
        "attention": failed,
        "note": "payload checks only: the service itself was not probed",
    }


def _first(data: Mapping[str, Any], *names: str) -> Any:
    for name in names:
        value = data.get(name)
        if value not in (None, ""):
            return value
    return None
