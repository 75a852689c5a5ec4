"""``planner-operator serve`` as a real process for tests: its own port, log file and state.

Crash, connection-flood and memory tests need the server as operators run it (the CLI's
uvicorn settings, logging and limits), killable with SIGKILL and restartable on the same state.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

import httpx

from tests.support.webhook_env import SECRET

ROOT = Path(__file__).resolve().parents[2]


class Server:
    """``python -m planner_operator serve`` on a free port, killable and restartable."""

    def __init__(
        self,
        state: Path,
        log: Path,
        env: Mapping[str, str] | None = None,
        *,
        open_files: int | None = None,
    ) -> None:
        """``env`` adds to the defaults below; ``open_files`` starts the process with that soft
        RLIMIT_NOFILE (what a shell's ``ulimit -n`` leaves it)."""
        self.state, self.log = state, log
        self.open_files = open_files
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None
        self.env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("INNGEST_", "PLANNER_", "COMPOSIO_"))
        }
        self.env.update(
            PYTHONPATH=str(ROOT),
            COMPOSIO_WEBHOOK_SECRET=SECRET,
            PLANNER_INBOX_LEASE="2",
            PLANNER_WORKER_POLL="0.1",
            PLANNER_WORKER_CONCURRENCY="8",
            PLANNER_GC_TUNE="1",
        )
        self.env.update(env or {})

    def command(self) -> list[str]:
        serve = [sys.executable, "-m", "planner_operator", "serve"]
        serve += ["--port", str(self.port), "--state-dir", str(self.state)]
        if self.open_files is None:
            return serve
        # exec keeps the pid: the limit is the process's own from its first instruction
        return ["sh", "-c", f'ulimit -Sn {self.open_files} && exec "$@"', "sh", *serve]

    def start(self) -> None:
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                self.command(),
                cwd=ROOT,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.log.read_text()[-3000:]
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.05)
        raise AssertionError("server did not start")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(30)

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid
