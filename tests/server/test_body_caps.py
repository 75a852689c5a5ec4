"""Every route's body is capped (issue 17 item 9): 413 before reading, memory stays flat."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from planner_operator.core.settings import Settings
from planner_operator.server import bodylimit
from planner_operator.server.operator import build
from tests.support import floods
from tests.support.webhook_env import (
    ENV,
    wait_settled,
)

TOKEN = floods.TOKEN
BEARER = {"Authorization": f"Bearer {TOKEN}"}
TEST_ROUTE = floods.TEST_ROUTE


def concrete(path: str) -> str:
    if path == "/webhooks/{agent}/{trigger}":
        return "/webhooks/engineering-agent/deploy-hook"
    return path.replace("{agent}", "job-application-agent").replace("{trigger}", "recruiter-email")


def write_operations(client: TestClient) -> list[tuple[str, str, int]]:
    """(method, path template, cap) for every write operation in the document; each one's 413
    answer is documented, with the number of bytes (the receivers name their variable)."""
    out = []
    for path, operations in client.get("/openapi.json").json()["paths"].items():
        for method, operation in operations.items():
            if method.upper() in ("POST", "PUT", "PATCH", "DELETE"):
                cap = bodylimit.cap(ENV, path)
                text = operation["responses"]["413"]["description"]
                assert f"over {cap} bytes" in text or "PLANNER_WEBHOOK_MAX_BODY" in text, text
                out.append((method.upper(), path, cap))
    return out


def test_every_write_operation_documents_and_enforces_its_cap(settings: Settings) -> None:
    app = build(settings, {**ENV, "PLANNER_API_TOKEN": TOKEN})
    with TestClient(app, raise_server_exceptions=False, headers=BEARER) as client:
        operations = write_operations(client)
        assert len(operations) >= 10
        caps = {path: cap for _, path, cap in operations}
        assert caps["/api/triggers/{agent}/{trigger}/test"] == 1024 * 1024
        assert caps["/hooks/git"] == bodylimit.GIT_HOOK
        assert caps["/api/jobs/{agent}/{job}/run"] == bodylimit.DEFAULT
        for method, path, cap in operations:
            over = b"[" + b" " * cap + b"]"  # valid JSON of cap + 2 bytes
            headers = {"content-type": "application/json"}
            answer = client.request(method, concrete(path), content=over, headers=headers)
            assert answer.status_code == 413, (method, path, answer.status_code)
            chunks = (over[i : i + 65536] for i in range(0, len(over), 65536))
            cut = client.request(method, concrete(path), content=chunks, headers=headers)
            # a route that reads its body is cut off at the cap; one that never reads it
            # (run-now, the 409s) answers as usual, and the unread body is never buffered
            # (here also the git hook: it answers 404 unread without `run --repo`)
            reads = path in bodylimit.caps(ENV) and path != "/hooks/git"
            assert cut.status_code == 413 if reads else cut.status_code < 500, (path, cut)
        under = json.dumps({"subject": "s" * 100_000, "sender": "x"}).encode()
        ok = client.post(TEST_ROUTE, content=under, headers={"content-type": "application/json"})
        assert ok.status_code in (200, 202), ok.text
    counts = wait_settled(settings)
    assert sum(counts.values()) == 1, counts  # only the test event under the cap was stored


def check_flood(tmp_path: Path, *, senders: int, size: int) -> dict[str, Any]:
    growth, statuses, disk = floods.big_bodies(tmp_path, senders=senders, size=size)
    assert set(statuses) == {413}, statuses
    assert growth < 50 * 1024, f"RSS grew {growth} KiB"
    assert disk < 1024 * 1024, f"the inbox grew {disk} bytes"
    return {"rss_growth_kib": growth, "inbox_growth": disk}


def test_twenty_concurrent_5_mb_test_bodies_leave_memory_flat(tmp_path: Path) -> None:
    print(check_flood(tmp_path, senders=20, size=5 * 1024 * 1024))


@pytest.mark.slow
def test_twenty_concurrent_50_mb_test_bodies_leave_memory_flat(tmp_path: Path) -> None:
    print(check_flood(tmp_path, senders=20, size=50 * 1024 * 1024))
