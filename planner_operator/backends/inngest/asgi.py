"""The served Inngest endpoint's own ASGI layers, in front of the SDK app (no SDK import).

``SwappableApp``: the SDK copies the function list when ``serve()`` is called, so every change
builds a fresh sub-app that is swapped in behind this stable entry point. ``FreshSignatures``:
the age check on signed requests that the Python SDK does not make.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs

from starlette.types import ASGIApp, Receive, Scope, Send

from planner_operator.core import clock as clock_mod

SIGNATURE_HEADER = b"x-inngest-signature"
SIGNATURE_MAX_AGE = 300.0  # seconds: inngestgo signature.go signatureTimeDeltaMax (5 min)


class FreshSignatures:
    """Refuse a signed request whose ``t=`` is more than five minutes old (or ahead).

    The Python SDK checks the HMAC but not its timestamp (0.5.19 ``net._validate_sig``), so a
    captured invocation could be replayed for ever. Inngest's Go SDK rejects ``time.Since(t) >
    5m`` (``signature.go`` ``validateRequestSignature``); a ``t`` as far in the future would
    stretch the window the same way, so it is refused too. This runs before the SDK, on the
    header alone: a missing, malformed or forged signature is still the SDK's to refuse.
    """

    def __init__(self, inner: ASGIApp, clock: clock_mod.Clock = clock_mod.SYSTEM) -> None:
        self.inner = inner
        self.clock = clock

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            header = next(
                (v for k, v in scope.get("headers") or () if k.lower() == SIGNATURE_HEADER), None
            )
            problem = None if header is None else self.problem(header)
            if problem is not None:
                await _json(send, 401, {"code": "signature_expired", "message": problem})
                return
        await self.inner(scope, receive, send)

    def problem(self, header: bytes) -> str | None:
        """Why a signature header is too old or too new, or None (fresh, or not ours to judge)."""
        values = parse_qs(header.decode("latin-1"))
        stamp = (values.get("t") or [""])[0]
        if not stamp.isdigit():
            return None  # malformed: the SDK refuses it with its own message
        age = clock_mod.epoch(self.clock) - int(stamp)
        if abs(age) <= SIGNATURE_MAX_AGE:
            return None
        when = f"is {age:.0f} s old" if age > 0 else f"is dated {-age:.0f} s ahead"
        return (
            f"{SIGNATURE_HEADER.decode()} {when}; signatures are accepted within "
            f"{SIGNATURE_MAX_AGE:.0f} s (a replayed request, or a clock that is off)"
        )


async def _json(send: Send, status: int, body: Mapping[str, Any]) -> None:
    data = json.dumps(body).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": data})


class SwappableApp:
    """A stable ASGI app whose inner app can be replaced while serving."""

    def __init__(self, inner: ASGIApp) -> None:
        self.inner = inner

    def swap(self, inner: ASGIApp) -> None:
        self.inner = inner

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.inner(scope, receive, send)
