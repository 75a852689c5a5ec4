"""Signature checks against the references' check values, and fail-closed on any input."""

from __future__ import annotations

import functools
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from planner_operator.server import signatures as sig

# docs: shared/reference/composio.md, "Worked example" (verified with the SDK's verify_webhook)
COMPOSIO_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
COMPOSIO_ID = "msg_01JH0000000000000000000000"
COMPOSIO_TS = "1767268800"
NOW = float(COMPOSIO_TS)  # the receiver's clock in these tests
COMPOSIO_BODY = (
    b'{"id":"msg_01JH0000000000000000000000","timestamp":"2026-01-01T12:00:00.000Z",'
    b'"type":"composio.trigger.message","metadata":{"log_id":"log_abc123","trigger_slug":'
    b'"GMAIL_NEW_GMAIL_MESSAGE","trigger_id":"ti_Hx1kP0aB","connected_account_id":'
    b'"ca_5KdA-e2C4ZMd","auth_config_id":"ac_ZxnpxqOo1nAP","user_id":"user-1"},"data":'
    b'{"message_id":"19a0c0ffee","subject":"hello","sender":"alice@example.com"}}'
)
COMPOSIO_SIG = "v1,MNxDPwG+NQSQE7u5IFCgnxS9TSfljKIiHh/wKzU2JmE="

# The Standard Webhooks specification's example (same secret string, base64-decoded key)
STANDARD_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
STANDARD_TS = "1614265330"
STANDARD_BODY = b'{"test": 2432232314}'
STANDARD_SIG = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="

# docs: shared/reference/reliability.md, GitHub check value
GITHUB_SECRET = "It's a Secret to Everybody"
GITHUB_BODY = b"Hello, World!"
GITHUB_SIG = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"


def composio(
    signature: str = COMPOSIO_SIG,
    *,
    ts: str = COMPOSIO_TS,
    body: bytes = COMPOSIO_BODY,
    now: float = 1767268800.0,
    msg_id: str | None = COMPOSIO_ID,
) -> str:
    return sig.verify_composio(
        COMPOSIO_SECRET, msg_id=msg_id, timestamp=ts, signature=signature, body=body, now=now
    )


def test_composio_worked_example_passes() -> None:
    assert composio() == COMPOSIO_ID
    assert sig.sign_composio(COMPOSIO_SECRET, COMPOSIO_ID, COMPOSIO_TS, COMPOSIO_BODY) == (
        COMPOSIO_SIG
    )


def test_standard_webhooks_example_passes() -> None:
    got = sig.verify_standard(
        COMPOSIO_SECRET,
        msg_id=STANDARD_ID,
        timestamp=STANDARD_TS,
        signature=STANDARD_SIG,
        body=STANDARD_BODY,
        now=float(STANDARD_TS),
    )
    assert got == STANDARD_ID


def test_the_two_derivations_differ() -> None:
    """Why Composio needs its own check: a Standard Webhooks verifier rejects real deliveries."""
    with pytest.raises(sig.BadSignature):
        sig.verify_standard(
            COMPOSIO_SECRET,
            msg_id=COMPOSIO_ID,
            timestamp=COMPOSIO_TS,
            signature=COMPOSIO_SIG,
            body=COMPOSIO_BODY,
            now=float(COMPOSIO_TS),
        )
    with pytest.raises(sig.BadSignature):
        sig.verify_composio(
            COMPOSIO_SECRET,
            msg_id=STANDARD_ID,
            timestamp=STANDARD_TS,
            signature=STANDARD_SIG,
            body=STANDARD_BODY,
            now=float(STANDARD_TS),
        )


def test_github_check_value_passes() -> None:
    assert sig.sign_github(GITHUB_SECRET, GITHUB_BODY) == GITHUB_SIG
    sig.verify_github(GITHUB_SECRET, signature=GITHUB_SIG, body=GITHUB_BODY)
    sig.verify_github(
        GITHUB_SECRET, signature=GITHUB_SIG.upper().replace("SHA256", "sha256"), body=GITHUB_BODY
    )
    with pytest.raises(sig.BadSignature):
        sig.verify_github(GITHUB_SECRET, signature=GITHUB_SIG, body=GITHUB_BODY + b" ")
    with pytest.raises(sig.MalformedHeaders):
        sig.verify_github(GITHUB_SECRET, signature="sha1=abc", body=GITHUB_BODY)
    with pytest.raises(sig.MalformedHeaders):
        sig.verify_github(GITHUB_SECRET, signature=None, body=GITHUB_BODY)


def test_any_of_several_signatures_passes_and_unknown_versions_are_skipped() -> None:
    wrong = "v1,AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
    assert composio(f"v2,xyz {wrong} {COMPOSIO_SIG}") == COMPOSIO_ID
    with pytest.raises(sig.BadSignature):
        composio("v2,whatever")  # nothing we can check: not authenticated
    with pytest.raises(sig.BadSignature):
        composio(wrong)


@pytest.mark.parametrize("skew", [-300, 300])
def test_timestamp_window_is_inclusive_at_300_seconds(skew: int) -> None:
    assert composio(now=1767268800.0 + skew) == COMPOSIO_ID


@pytest.mark.parametrize("skew", [-301, 301, 86400])
def test_stale_or_future_timestamp_is_a_bad_signature(skew: int) -> None:
    with pytest.raises(sig.BadSignature) as caught:
        composio(now=1767268800.0 + skew)
    assert caught.value.status == 401


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("ts", "1767268800.0"),
        ("ts", "1.7e9"),
        ("ts", "-1767268800"),
        ("ts", " 1767268800"),
        ("ts", "١٧٦٧٢٦٨٨٠٠"),  # Arabic-Indic digits: int() would accept them
        ("ts", ""),
        ("signature", ""),
        ("signature", "MNxDPwG+NQSQE7u5IFCgnxS9TSfljKIiHh/wKzU2JmE="),
        ("signature", "v1"),
        ("signature", "v1,abc!"),
        ("signature", "v1,é"),
        ("msg_id", ""),
        ("msg_id", "has space"),
        ("msg_id", "ünïcode"),
        ("msg_id", None),
    ],
)
def test_malformed_headers_are_400(field: str, value: str | None) -> None:
    kwargs: dict[str, object] = {field: value}
    with pytest.raises(sig.MalformedHeaders) as caught:
        composio(**kwargs)  # type: ignore[arg-type]
    assert caught.value.status == 400


def test_a_changed_body_byte_fails() -> None:
    with pytest.raises(sig.BadSignature):
        composio(body=COMPOSIO_BODY.replace(b"hello", b"hellp"))


def test_standard_key_refuses_secrets_that_do_not_decode() -> None:
    with pytest.raises(ValueError, match="Standard Webhooks"):
        sig.standard_key("whsec_not*base64")
    with pytest.raises(ValueError, match="16 bytes"):
        sig.standard_key("whsec_YWJj")
    assert sig.standard_key(COMPOSIO_SECRET) == sig.standard_key(COMPOSIO_SECRET[6:])


header_text = st.one_of(
    st.none(), st.text(max_size=80), st.sampled_from(["v1,", "v1,==", "1" * 13])
)


@settings(max_examples=300, deadline=None)
@given(
    msg_id=header_text,
    ts=header_text,
    signature=header_text,
    body=st.binary(max_size=300),
    secret=st.text(max_size=40),
)
def test_verifiers_fail_closed_on_any_input(
    msg_id: str | None, ts: str | None, signature: str | None, body: bytes, secret: str
) -> None:
    """Only SignatureError (400/401) ever escapes: never ValueError, UnicodeError, TypeError."""
    for verify in (sig.verify_composio, sig.verify_standard):
        check = functools.partial(
            verify, secret, msg_id=msg_id, timestamp=ts, signature=signature, body=body, now=NOW
        )
        assert _status(check) in (None, 400, 401)
    assert _status(lambda: sig.verify_github(secret, signature=signature, body=body)) in (
        None,
        400,
        401,
    )


def _status(check: Callable[[], object]) -> int | None:
    try:
        check()
    except sig.SignatureError as exc:
        return exc.status
    return None


def test_a_malformed_entry_beside_a_valid_one_is_skipped_as_the_sdk_does() -> None:
    """composio 0.29 ``Triggers._verify_signature`` skips entries it cannot read."""
    assert composio(f"v1,abc! {COMPOSIO_SIG}") == COMPOSIO_ID
    assert composio(f"garbage v1 {COMPOSIO_SIG} v1,é") == COMPOSIO_ID
    with pytest.raises(sig.BadSignature):  # well-formed but wrong, beside a malformed one
        composio("v1,abc! v1,AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=")
    with pytest.raises(sig.MalformedHeaders):  # nothing readable at all
        composio("v1,abc! v1,é")


def test_any_of_several_secrets_verifies_during_a_rotation() -> None:
    other = "whsec_other_secret_value_abcdefgh"
    both = [other, COMPOSIO_SECRET]
    got = sig.verify_composio(
        both, msg_id=COMPOSIO_ID, timestamp=COMPOSIO_TS, signature=COMPOSIO_SIG,
        body=COMPOSIO_BODY, now=1767268800.0,
    )  # fmt: skip
    assert got == COMPOSIO_ID
    with pytest.raises(sig.BadSignature):
        sig.verify_composio(
            [other], msg_id=COMPOSIO_ID, timestamp=COMPOSIO_TS, signature=COMPOSIO_SIG,
            body=COMPOSIO_BODY, now=1767268800.0,
        )  # fmt: skip
