"""Suite-wide plugins: secret canaries (tests/support/canary_guard.py), pytester, and a local
host name for TestClient (tests/support/local_testclient.py).

Every secret the product reads is set to a canary value for the whole run, and a test fails if
one appears in its captured output or failure report. Tests that configure a cloud backend use
the values in ``tests/support/canaries.py`` instead of literal secrets.
"""

pytest_plugins = [
    "pytester",
    "tests.support.canary_guard",
    "tests.support.webhook_env",
    "tests.support.local_testclient",
    "tests.support.postgres",
    "tests.support.mastra",
]
