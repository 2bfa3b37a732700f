"""Shared test harness.

Tests marked ``postgres``, ``redis``, ``mqtt`` or ``browser`` use the real service when it is
configured and are skipped with the reason otherwise; with GRIDCOIN_REQUIRE_SERVICES=1 (CI)
a missing service fails the test instead of skipping it.
"""

from __future__ import annotations

import os
import shutil

import pytest

REQUIRE_SERVICES = os.environ.get("GRIDCOIN_REQUIRE_SERVICES") == "1"
CHROMIUM = os.environ.get("GRIDCOIN_CHROMIUM", "/usr/bin/chromium")


def _service_missing(marker: str) -> str | None:
    if marker == "postgres":
        url = os.environ.get("DATABASE_URL", "")
        return None if url.startswith(("postgres://", "postgresql://")) else "DATABASE_URL does not point at PostgreSQL"
    if marker == "redis":
        return None if os.environ.get("REDIS_URL") else "REDIS_URL is not set"
    if marker == "mqtt":
        return None if os.environ.get("MQTT_URL") else "MQTT_URL is not set"
    if marker == "browser":
        if not (os.path.exists(CHROMIUM) or shutil.which(CHROMIUM)):
            return f"Chromium not found at {CHROMIUM}"
        try:
            import playwright  # noqa: F401
        except ImportError:
            return "playwright is not installed"
        return None
    return None


def pytest_runtest_setup(item: pytest.Item) -> None:
    for marker in ("postgres", "redis", "mqtt", "browser"):
        if item.get_closest_marker(marker) is None:
            continue
        missing = _service_missing(marker)
        if missing is None:
            continue
        if REQUIRE_SERVICES:
            pytest.fail(f"GRIDCOIN_REQUIRE_SERVICES=1 but {missing}")
        pytest.skip(missing)


@pytest.fixture
def network(db):
    """A small network: utility, two households, energy asset k and fiat INR."""
    from tests.ledger_helpers import Network

    return Network.create()


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    """Every test hashes passwords with MD5: PBKDF2's 1,000,000 rounds cost a second a login."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
