"""Webhook signature checks: Composio, Standard Webhooks and GitHub, on the raw body bytes.

Why a module of our own rather than a library: Composio signs like Standard Webhooks on the wire
(``webhook-id``/``-timestamp``/``-signature``, ``v1,<base64>``) but uses the secret *string*
(``whsec_`` prefix kept, not base64-decoded) as the HMAC key, so Standard Webhooks libraries
reject every real Composio delivery (ComposioHQ/composio#995). And generic verifiers raise
``ValueError``/``UnicodeDecodeError`` on garbage, which a careless caller turns into a 500 that
the sender retries forever. Here every malformed input raises :class:`MalformedHeaders` (HTTP
400) and every failed check :class:`BadSignature` (HTTP 401): nothing else escapes, whatever the
input.

Rules (docs reference/reliability.md): verify the bytes as received, before any parsing; integer
timestamps only, within ±300 s either way; several space-separated signatures may be present
(key rotation) and any ``v1`` match passes, unknown versions and malformed entries are skipped
(a header with no well-formed entry at all is malformed); compare in constant time.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from planner_operator.core import webhook_secrets

if TYPE_CHECKING:
    from planner_operator.core.settings import Settings
    from planner_operator.runtime import events

TOLERANCE = 300
MAX_ID_LENGTH = 255

_ID = re.compile(rf"[\x21-\x7e]{{1,{MAX_ID_LENGTH}}}")  # visible ASCII: ids go in logs, keys
_TIMESTAMP = re.compile(r"[0-9]{1,12}")  # [0-9], not \d: \d also matches other scripts' digits
_GITHUB = re.compile(r"sha256=([0-9a-fA-F]{64})")
_ENTRY = re.compile(r"([A-Za-z0-9]{1,16}),([A-Za-z0-9+/=_-]{1,512})")
STANDARD_PREFIX = webhook_secrets.STANDARD_PREFIX


class SignatureError(Exception):
    """A delivery that failed verification; ``status`` is the HTTP answer it deserves."""

    status = 401


class MalformedHeaders(SignatureError):
    """A header is missing or not in the expected form (400: the sender has a bug)."""

    status = 400


class BadSignature(SignatureError):
    """Well-formed, but no signature matches, or the timestamp is outside the window (401)."""

    status = 401


# -- keys ------------------------------------------------------------------------------------


def composio_key(secret: str) -> bytes:
    """Composio's key: the secret string's UTF-8 bytes, ``whsec_`` prefix included."""
    return secret.encode("utf-8")


def standard_key(secret: str) -> bytes:
    """Standard Webhooks' key: base64 after the optional ``whsec_`` prefix (``ValueError`` for
    one that does not decode; ``core.webhook_secrets`` tells the trigger's state why)."""
    return webhook_secrets.standard_key(secret)


# -- secrets (configuration) -------------------------------------------------------------------


def composio_secrets(settings: Settings, env: Mapping[str, str]) -> tuple[str, ...]:
    """The secrets a Composio delivery may be signed with now; empty when none is configured.

    ``COMPOSIO_WEBHOOK_SECRET``, else the one in the operator's state (``state.secrets``, where
    reconcile stores it when it creates the subscription) and, for a grace window after
    ``composio rotate-secret``, the one it replaced. The server re-reads this every few seconds,
    so a rotation needs no restart.
    """
    from planner_operator.backends.composio import subscription as composio_webhooks

    return composio_webhooks.accepted_secrets(settings, env)


def secret_problems(
    routes: Iterable[events.Route], settings: Settings, env: Mapping[str, str]
) -> dict[str, str]:
    """Per applied trigger key, why its deliveries cannot be verified here (logged at startup).

    Each is that trigger's problem only: its deliveries are answered 503 (the sender retries),
    the read model shows it in error, everything else serves. The Composio secret covers every
    Composio trigger, so each of them carries its absence.
    """
    owned = list(routes)
    problems: dict[str, str] = {}
    if any(r.backend == "composio" and r.webhook is None for r in owned) and not composio_secrets(
        settings, env
    ):
        missing = webhook_secrets.COMPOSIO_MISSING
        problems.update(
            {r.key: missing for r in owned if r.backend == "composio" and r.webhook is None}
        )
    for route in owned:
        if route.webhook is not None:
            found = webhook_secrets.problem(route.webhook, env)
            if found is not None:
                problems[route.key] = found
    return problems


# -- signing (tests, the bench, the demo sender) ----------------------------------------------


def sign_v1(key: bytes, msg_id: str, timestamp: int | str, body: bytes) -> str:
    """One ``v1,<base64>`` signature over ``{id}.{timestamp}.{body}``."""
    digest = hmac.new(key, _signed_content(msg_id, str(timestamp), body), hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


def sign_composio(secret: str, msg_id: str, timestamp: int | str, body: bytes) -> str:
    return sign_v1(composio_key(secret), msg_id, timestamp, body)


def sign_standard(secret: str, msg_id: str, timestamp: int | str, body: bytes) -> str:
    return sign_v1(standard_key(secret), msg_id, timestamp, body)


def sign_github(secret: str, body: bytes) -> str:
    """``X-Hub-Signature-256`` value: ``sha256=<hex HMAC of the body>``."""
    return "sha256=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


# -- verification -----------------------------------------------------------------------------


def check_id(msg_id: str | None, header: str = "webhook-id") -> str:
    """The delivery id, which becomes the inbox key and the executor's idempotency key."""
    if not msg_id:
        raise MalformedHeaders(f"missing {header} header")
    if not _ID.fullmatch(msg_id):
        raise MalformedHeaders(f"{header} must be 1-{MAX_ID_LENGTH} visible ASCII characters")
    return msg_id


def check_id_ok(value: str) -> bool:
    """Whether a header value is a well-formed id (safe to show in a log line)."""
    return _ID.fullmatch(value) is not None


def check_timestamp(value: str | None, *, now: float, tolerance: int = TOLERANCE) -> str:
    """``now`` is Unix time from the receiver's clock (``core.clock``)."""
    if not value:
        raise MalformedHeaders("missing webhook-timestamp header")
    if not _TIMESTAMP.fullmatch(value):
        raise MalformedHeaders("webhook-timestamp must be integer seconds")
    if abs(now - int(value)) > tolerance:
        raise BadSignature(f"webhook-timestamp is more than {tolerance} s away from now")
    return value


def verify_v1(
    key: bytes | Sequence[bytes],
    *,
    msg_id: str | None,
    timestamp: str | None,
    signature: str | None,
    body: bytes,
    now: float,
    tolerance: int = TOLERANCE,
) -> str:
    """Check a ``webhook-signature`` list against ``key``; returns the delivery id.

    ``key`` is already derived (:func:`composio_key` or :func:`standard_key`), which is the only
    difference between the two schemes. Several keys (a rotation's grace window) pass if any
    signature matches any of them.
    """
    msg_id = check_id(msg_id)
    ts = check_timestamp(timestamp, now=now, tolerance=tolerance)
    candidates = _v1_signatures(signature)
    keys = [key] if isinstance(key, bytes) else list(key)
    matched = False
    for expected in (sign_v1(k, msg_id, ts, body)[3:] for k in keys):
        for candidate in candidates:  # no early exit: timing does not reveal which matched
            matched |= hmac.compare_digest(expected, candidate)
    if not matched:
        raise BadSignature("no signature matches")
    return msg_id


def verify_composio(
    secret: str | Sequence[str],
    *,
    msg_id: str | None,
    timestamp: str | None,
    signature: str | None,
    body: bytes,
    now: float,
    tolerance: int = TOLERANCE,
) -> str:
    secrets = [secret] if isinstance(secret, str) else list(secret)
    return verify_v1(
        [composio_key(s) for s in secrets],
        msg_id=msg_id,
        timestamp=timestamp,
        signature=signature,
        body=body,
        now=now,
        tolerance=tolerance,
    )


def verify_standard(
    secret: str,
    *,
    msg_id: str | None,
    timestamp: str | None,
    signature: str | None,
    body: bytes,
    now: float,
    tolerance: int = TOLERANCE,
) -> str:
    try:
        key = standard_key(secret)
    except ValueError as exc:  # startup refuses such secrets; fail closed all the same
        raise BadSignature("the configured secret is unusable") from exc
    return verify_v1(
        key,
        msg_id=msg_id,
        timestamp=timestamp,
        signature=signature,
        body=body,
        now=now,
        tolerance=tolerance,
    )


def verify_github(secret: str, *, signature: str | None, body: bytes) -> str:
    """GitHub-style ``X-Hub-Signature-256``; returns the verified digest (lowercase hex).

    GitHub signs neither a timestamp nor ``X-GitHub-Delivery``, so nothing here bounds a
    replay; the receiver dedupes on the returned digest instead (docs/webhooks.md)."""
    if not signature:
        raise MalformedHeaders("missing X-Hub-Signature-256 header")
    match = _GITHUB.fullmatch(signature.strip())
    if match is None:
        raise MalformedHeaders("X-Hub-Signature-256 must be sha256=<64 hex digits>")
    expected = sign_github(secret, body)[len("sha256=") :]
    presented = match.group(1).lower()
    if not hmac.compare_digest(expected, presented):
        raise BadSignature("signature does not match")
    return presented


@dataclass(frozen=True)
class Verifier:
    """The checks the receiver applies, as one object so a test can swap it.

    Production always uses the defaults. The OpenAPI property suite (schemathesis) swaps in
    checks that trust the headers, because generated requests cannot carry valid signatures and
    must still reach the parsing, routing and inbox code behind the check.
    """

    composio: Callable[..., str] = verify_composio
    standard: Callable[..., str] = verify_standard
    github: Callable[..., str] = verify_github


def _signed_content(msg_id: str, timestamp: str, body: bytes) -> bytes:
    # Bytes throughout: the body is never decoded, so no body can raise UnicodeDecodeError.
    return msg_id.encode("ascii") + b"." + timestamp.encode("ascii") + b"." + body


def _v1_signatures(header: str | None) -> list[str]:
    """The base64 values of every well-formed ``v1,`` entry; other versions are skipped."""
    if not header or not header.strip():
        raise MalformedHeaders("missing webhook-signature header")
    entries = header.split()
    if len(entries) > 16:
        raise MalformedHeaders("too many entries in webhook-signature")
    matches = [m for m in map(_ENTRY.fullmatch, entries) if m is not None]
    if not matches:  # nothing to check at all: the sender has a bug
        raise MalformedHeaders("webhook-signature entries must look like v1,<base64>")
    # Malformed entries next to well-formed ones are skipped, as the Composio SDK's verifier does
    # (composio 0.29 ``Triggers._verify_signature``): one odd entry must not hide a valid one.
    return [m.group(2) for m in matches if m.group(1) == "v1"]
