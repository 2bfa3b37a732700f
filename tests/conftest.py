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


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """`make test` runs the suite in parallel workers (pytest-xdist, ``--dist loadgroup``). The
    broker's meter topics are the same for every process on the machine, so the tests that talk
    to it share one worker and run one after another, as they would alone."""
    for item in items:
        if item.get_closest_marker("mqtt") is not None:
            item.add_marker(pytest.mark.xdist_group("mqtt-broker"))


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


@pytest.fixture(autouse=True)
def _staff_force_login_passes_the_second_factor(monkeypatch):
    from django.test.client import Client

    from tests.second_factor import force_login

    monkeypatch.setattr(Client, "force_login", force_login)


_DB_FIXTURES = {"db", "transactional_db", "live_server", "django_db_reset_sequences", "django_db_serialized_rollback"}


@pytest.fixture(autouse=True)
def _fresh_cache(request, django_db_blocker):
    """Login lockouts and rate limits count in the cache, which outlives a test (Redis, or a
    database table that transactional tests' flush leaves alone): each test that touches the
    database starts and ends with it empty."""
    uses_db = request.node.get_closest_marker("django_db") is not None or _DB_FIXTURES & set(request.fixturenames)
    if not uses_db:
        yield
        return
    from tests.cache import clear_cache

    request.getfixturevalue("django_db_setup")
    with django_db_blocker.unblock():
        clear_cache()
    yield
    with django_db_blocker.unblock():
        clear_cache()



@pytest.fixture
def celery_eager(settings):
    """Tasks sent with ``delay`` run in this process, as a worker would run them. The Celery app
    has read Django's CELERY_ settings once already, so its own configuration is changed too (and
    put back): setting ``CELERY_TASK_ALWAYS_EAGER`` alone would send the task to the broker once
    another test has configured the app."""
    from gridcoin.celery import app

    before = app.conf.task_always_eager, app.conf.task_eager_propagates
    settings.CELERY_TASK_ALWAYS_EAGER = True
    app.conf.update(CELERY_TASK_ALWAYS_EAGER=True)
    yield
    app.conf.update(CELERY_TASK_ALWAYS_EAGER=before[0], CELERY_TASK_EAGER_PROPAGATES=before[1])
