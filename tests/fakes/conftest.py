"""Fixtures for tests that talk to the fake Inngest server.

Other test folders can reuse them with ``from tests.fakes.conftest import fake_inngest`` in their
own conftest. The SDK reads ``INNGEST_*`` variables (dev mode, URLs, keys: inngest/_internal/
const.py ``EnvKey``), so every test here runs with them cleared.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.fakes.inngest_server import TEST_SIGNING_KEY, FakeInngest


@pytest.fixture(autouse=True)
def _no_inngest_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("INNGEST_"):
            monkeypatch.delenv(name)


@pytest.fixture
def fake_inngest() -> Iterator[FakeInngest]:
    """A dev-mode fake (no auth, unsigned executor calls), started on a random port."""
    with FakeInngest() as fake:
        yield fake


@pytest.fixture
def fake_inngest_prod() -> Iterator[FakeInngest]:
    """A production-mode fake: bearer auth, event key, signed executor calls."""
    with FakeInngest(signing_key=TEST_SIGNING_KEY) as fake:
        yield fake
