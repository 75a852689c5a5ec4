"""A stand-in agent platform that writes down every call: the executor end of the fault tests.

Run as its own process (``python -m tests.support.sink PORT JOURNAL``) so that killing ``serve``
replicas never kills the record of what they executed. Every ``POST`` appends its
``Idempotency-Key`` to the journal (flushed before the answer, so an answered call is on
disk), and is answered as the platform would: the first call with a key starts a thread, a
repeat returns the same thread (``HttpExecutor`` sends the delivery id as the key).

``Sink`` starts it for a test and reads the journal back: raw calls per key, so a test can count
executions, losses and repeats itself instead of trusting the dedupe it is checking.
"""

from __future__ import annotations

import collections
import json
import os
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]


class Sink:
    """The sink process: ``url`` for ``PLANNER_CHAT_URL``, :meth:`calls` for the journal."""

    def __init__(self, journal: Path) -> None:
        self.journal = journal
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}/chat/{{agentId}}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.support.sink", str(self.port), str(self.journal)],
            cwd=ROOT,
            env=env,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, "the sink exited"
            try:
                httpx.get(f"http://127.0.0.1:{self.port}/", timeout=1)
                return
            except httpx.HTTPError:
                time.sleep(0.05)
        raise AssertionError("the sink did not start")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)

    def calls(self) -> collections.Counter[str]:
        """How many times each idempotency key was called (the journal, read back)."""
        if not self.journal.exists():
            return collections.Counter()
        return collections.Counter(self.journal.read_text().split())


def serve(port: int, journal: Path) -> None:
    lock = threading.Lock()
    threads: dict[str, str] = {}
    out = open(journal, "a", encoding="utf-8")  # noqa: SIM115 - open for the server's life

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:  # readiness probe
            self._answer(200, {"ok": True})

        def do_POST(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            self.rfile.read(length)
            key = self.headers.get("idempotency-key") or "-"
            with lock:
                out.write(key + "\n")
                out.flush()
                thread = threads.setdefault(key, f"thr_{len(threads)}")
            self._answer(200, {"thread_id": thread})

        def _answer(self, status: int, body: object) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: object) -> None:
            return  # quiet: thousands of calls

    class Server(ThreadingHTTPServer):
        daemon_threads = True

        def handle_error(self, request: object, client_address: object) -> None:
            return  # a replica killed mid-call resets its connection: expected here

    Server(("127.0.0.1", port), Handler).serve_forever()


if __name__ == "__main__":
    serve(int(sys.argv[1]), Path(sys.argv[2]))
