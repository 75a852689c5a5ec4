"""`serve` on the embedded default must not load what it does not use.

The Composio SDK alone is about 161 MB resident, psycopg opens nothing without a database URL and
matplotlib is a bench-only extra: imported by a serving process with no cloud configured, they
would cost most of the 150 MB budget (issue 20 item 4, issue 22 item 5) for nothing. A fresh
interpreter is used, so what other tests imported does not hide or fake an import.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = """
import json, sys
from pathlib import Path
from starlette.testclient import TestClient
from planner_operator.core.settings import Settings
from planner_operator.server.app import create_app

settings = Settings.resolve(state_dir=Path(sys.argv[1]), env={})
with TestClient(create_app(settings, {}), base_url="http://localhost") as client:
    statuses = [client.get(path).status_code for path in ("/healthz", "/planner/", "/api/jobs",
                                                          "/api/triggers", "/metrics")]
loaded = sorted({name.split(".")[0] for name in sys.modules})
print(json.dumps({"statuses": statuses, "loaded": loaded}))
"""

NOT_ON_THE_DEFAULT = ("composio", "psycopg", "psycopg_pool", "matplotlib")


def test_serving_on_the_embedded_default_never_imports_the_cloud_sdks(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path / "state")],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    answer = json.loads(done.stdout.strip().splitlines()[-1])
    assert answer["statuses"] == [200, 200, 200, 200, 200], answer["statuses"]
    assert "planner_operator" in answer["loaded"] and "fastapi" in answer["loaded"]
    assert [m for m in NOT_ON_THE_DEFAULT if m in answer["loaded"]] == []
