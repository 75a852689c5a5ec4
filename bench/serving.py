"""Waiting for a benchmark's server process to answer, shared by every bench that starts one."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable

import httpx


def wait_healthy(
    proc: subprocess.Popen[bytes],
    url: str,
    *,
    what: str,
    within: float,
    any_answer: bool = False,
    output: Callable[[], str] = lambda: "",
) -> None:
    """Poll ``url``/healthz until it answers 200 (any answer with ``any_answer``: a bare
    endpoint has no health route); fail naming ``what`` if the process exits or the time runs
    out, with ``output()`` (e.g. its log tail) appended."""
    deadline = time.monotonic() + within
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}{output()}")
        try:
            status = httpx.get(url + "/healthz", timeout=2).status_code
            if any_answer or status == 200:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not start in {within:.0f} s")
        time.sleep(0.2)
