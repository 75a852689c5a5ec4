"""Inngest configuration and naming: pure parts of the SDK glue."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from planner_operator.backends.inngest.sdk import (
    MAX_FN_ID,
    InngestConfig,
    cron_of,
    function_id,
    hash_signing_key,
    parse_cron,
)
from planner_operator.errors import AuthError, SourceError
from tests.support import canaries

KEY = "signkey-prod-" + "ab" * 32


def test_production_without_signing_key_refuses_with_clear_message() -> None:
    with pytest.raises(AuthError, match="INNGEST_SIGNING_KEY"):
        InngestConfig.from_env({"INNGEST_BASE_URL": "http://127.0.0.1:1"})


def test_dev_mode_defaults_and_url() -> None:
    config = InngestConfig.from_env({"INNGEST_DEV": "http://127.0.0.1:9999"})
    assert not config.production
    assert config.api_base_url == "http://127.0.0.1:9999"
    assert config.event_api_base_url == "http://127.0.0.1:9999"
    assert config.app_id == "planner-operator"
    assert config.serve_path == "/api/inngest"
    assert InngestConfig.from_env({"INNGEST_DEV": "1"}).api_base_url == "http://127.0.0.1:8288"


def test_explicit_urls_and_app_id() -> None:
    config = InngestConfig.from_env(
        {
            "INNGEST_SIGNING_KEY": KEY,
            "INNGEST_API_BASE_URL": "http://api.local/",
            "INNGEST_EVENT_API_BASE_URL": "http://events.local",
            "INNGEST_SERVE_ORIGIN": "https://ops.example.com",
            "PLANNER_INNGEST_APP_ID": "acme",
            "PLANNER_INNGEST_RETRIES": "7",
        }
    )
    assert config.production and config.api_base_url == "http://api.local"
    assert (config.app_id, config.retries, config.serve_origin) == (
        "acme",
        7,
        "https://ops.example.com",
    )
    assert config.bearer() == {"authorization": f"Bearer {hash_signing_key(KEY)}"}
    with pytest.raises(SourceError, match="PLANNER_INNGEST_RETRIES"):
        InngestConfig.from_env({"INNGEST_DEV": "1", "PLANNER_INNGEST_RETRIES": "many"})


def test_bearer_is_sha256_of_hex_decoded_key_without_prefix() -> None:
    import hashlib

    expected = hashlib.sha256(bytes.fromhex("ab" * 32)).hexdigest()
    assert hash_signing_key(KEY) == expected
    assert hash_signing_key("ab" * 32) == expected
    with pytest.raises(AuthError, match="not a valid signing key"):
        hash_signing_key("signkey-prod-not-hex")


def test_function_ids_are_stable_slugs_with_hash_suffix_when_long() -> None:
    assert function_id("job-application-agent/jobs/morning-job-check") == (
        "job-application-agent--morning-job-check"
    )
    long_key = "a" * 40 + "/jobs/" + "b" * 40
    fid = function_id(long_key)
    assert len(fid) <= MAX_FN_ID and fid == function_id(long_key)
    assert fid != function_id("a" * 40 + "/jobs/" + "b" * 39 + "c")
    # injective where a naive slug would collide
    assert function_id("a--b/jobs/c") != function_id("a/jobs/b--c")


def test_cron_round_trip() -> None:
    spec = {"schedule": "0 9 * * 1", "timezone": "Europe/Berlin"}
    assert cron_of(spec) == "TZ=Europe/Berlin 0 9 * * 1"
    assert parse_cron(cron_of(spec)) == spec
    assert parse_cron("*/5 * * * *") == {"schedule": "*/5 * * * *", "timezone": "UTC"}


def test_repr_never_shows_the_keys() -> None:
    """A config in a log line or a failure report must not carry the signing or event key."""
    config = InngestConfig.from_env(
        {"INNGEST_SIGNING_KEY": canaries.INNGEST_SIGNING_KEY, "INNGEST_EVENT_KEY": "evt-canary"}
    )
    assert config.signing_key == canaries.INNGEST_SIGNING_KEY
    assert canaries.INNGEST_SIGNING_KEY not in repr(config)
    assert "evt-canary" not in repr(config)


def test_dev_flag_words_and_bad_values() -> None:
    assert not InngestConfig.from_env({"INNGEST_DEV": "true"}).production
    assert InngestConfig.from_env({"INNGEST_DEV": "off", "INNGEST_SIGNING_KEY": KEY}).production
    with pytest.raises(SourceError, match=r"INNGEST_SERVE_ORIGIN='ops\.example\.com' is not a URL"):
        InngestConfig.from_env({"INNGEST_DEV": "1", "INNGEST_SERVE_ORIGIN": "ops.example.com"})


NOT_HEX = "signkey-prod-" + "zz" * 32


def test_a_non_hex_signing_key_is_refused_at_configuration_naming_the_variable() -> None:
    with pytest.raises(AuthError) as raised:
        InngestConfig.from_env({"INNGEST_SIGNING_KEY": NOT_HEX, "INNGEST_BASE_URL": "http://x"})
    message = str(raised.value)
    assert "INNGEST_SIGNING_KEY" in message and "signkey-<env>-<hex>" in message
    assert "zz" not in message


def test_serve_with_a_non_hex_signing_key_says_so_without_a_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """It died in the lifespan with ``ValueError: non-hexadecimal number`` mid-sync."""
    from typer.testing import CliRunner

    from planner_operator.cli.main import app

    for name in list(os.environ):
        if name.startswith(("INNGEST_", "COMPOSIO_", "PLANNER_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("INNGEST_SIGNING_KEY", NOT_HEX)
    monkeypatch.setenv("INNGEST_BASE_URL", "http://127.0.0.1:9")
    result = CliRunner().invoke(app, ["serve", "--port", "18150", "--state-dir", str(tmp_path)])
    assert result.exit_code == 1
    assert isinstance(result.exception, SystemExit)  # not a ValueError from the SDK
    assert "INNGEST_SIGNING_KEY is not a valid signing key" in result.stderr
    assert "Traceback" not in result.output and NOT_HEX[13:] not in result.output
