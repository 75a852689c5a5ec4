"""Serve an ASGI app (the SDK side of a test) with a real uvicorn in a background thread.

Tests drive the real ``inngest.fast_api.serve`` endpoint over real HTTP, as the fake Inngest
server would in production, so the app needs a live port: uvicorn on 127.0.0.1, a free port
picked by the OS, returning only once uvicorn reports it is serving.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Literal

import httpx
import uvicorn
from starlette.types import ASGIApp

SERVE_PATH = "/api/inngest"  # the SDK's default (inngest/_internal/const.py DEFAULT_SERVE_PATH)


def loopback() -> socket.socket:
    """A socket bound to a free loopback port: bind first when the app must know its own URL
    before it is built (``INNGEST_SERVE_ORIGIN``), then pass it to :func:`run_app`."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


def origin(sock: socket.socket) -> str:
    return f"http://127.0.0.1:{sock.getsockname()[1]}"


@contextmanager
def run_app(
    app: ASGIApp,
    *,
    startup_timeout: float = 10.0,
    lifespan: Literal["on", "off"] = "off",
    sock: socket.socket | None = None,
) -> Iterator[str]:
    """Run ``app`` until the block exits; yields its base URL, e.g. ``http://127.0.0.1:54321``.

    ``lifespan="on"`` runs the app's startup and shutdown as ``planner-operator serve`` does
    (the inbox worker, the Inngest mount); the SDK-side tests leave it off. ``sock``: a socket
    from :func:`loopback` (closed at the end), else a new one.
    """
    sock = sock or loopback()
    config = uvicorn.Config(
        app, lifespan=lifespan, log_level="warning", access_log=False, ws="none"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + startup_timeout
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.005)
        yield origin(sock)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


def put_sync(app_url: str, *, deploy_id: str | None = None) -> httpx.Response:
    """Ask the SDK endpoint to sync (R "Sync": ``PUT /api/inngest[?deployId=X]``)."""
    params = {"deployId": deploy_id} if deploy_id else None
    return httpx.put(f"{app_url}{SERVE_PATH}", params=params, timeout=30)
