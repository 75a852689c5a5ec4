"""Suite-wide: Starlette's TestClient calls the app ``localhost`` instead of ``testserver``.

The server answers only the host names it is configured for (``server/hosts.py``: loopback
names by default, the DNS-rebinding defence), so a request for ``testserver`` is answered 421,
as a browser's request for an attacker's name would be. Tests exercise the app as a local client
does; tests of the host check itself set the ``Host`` header explicitly.
"""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient

LOCAL_URL = "http://localhost"


def pytest_configure(config: pytest.Config) -> None:
    defaults = TestClient.__init__.__defaults__
    assert defaults is not None and defaults[0] in ("http://testserver", LOCAL_URL), defaults
    TestClient.__init__.__defaults__ = (LOCAL_URL, *defaults[1:])
