"""schemathesis against the OpenAPI document at /api/schema/, in-process through the WSGI app,
as an anonymous caller, a household member and utility staff.

Every generated request (schema-valid ones and deliberately invalid ones) is checked for: no
server error, a documented status code, a documented content type, a body that matches the
documented schema, schema-valid data accepted, schema-invalid data refused, and the declared
authentication enforced. The run is derandomized and small, so it finds the same thing on
every machine and never flakes.
"""

from __future__ import annotations

import base64
import os
from datetime import UTC, datetime

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, settings

from ledger import services as ledger
from ledger.models import OrgType
from meters.models import DeviceKind
from meters.services import device_register_simulated
from tests.meters_world import build_meter_world
from wallet.services import price_set

pytestmark = pytest.mark.django_db

# Small and fixed for CI; GRIDCOIN_FUZZ_EXAMPLES / GRIDCOIN_FUZZ_SEED explore further by hand.
MAX_EXAMPLES = int(os.environ.get("GRIDCOIN_FUZZ_EXAMPLES", "8"))
SEED = int(os.environ.get("GRIDCOIN_FUZZ_SEED", "11"))
USERS = {"household": ("alice", "alice-password-1"), "utility": ("uma", "uma-password-1")}


def _schema_as(username: str | None = None, password: str = ""):
    """The schema as served at /api/schema/, set to send HTTP basic credentials of ``username``
    (one of the API's two declared schemes; the session cookie needs a CSRF token for writes).

    WSGI, not ASGI: under ASGI Django runs sync views in a worker thread with its own database
    connection, outside the test's transaction, so the test's world would not be there."""
    loaded = schemathesis.openapi.from_wsgi("/api/schema/?format=json", get_wsgi_application())
    if username is not None:
        loaded.config.update(basic_auth=(username, password))
    loaded.config.generation.update(max_examples=MAX_EXAMPLES, deterministic=True, database="none")
    loaded.config.seed = SEED
    return loaded


as_anonymous = _schema_as()
as_household = _schema_as(*USERS["household"])
as_utility = _schema_as(*USERS["utility"])
HYPOTHESIS = settings(deadline=None, suppress_health_check=list(HealthCheck))


@pytest.fixture
def fuzz_world(settings):
    world = build_meter_world(settings)
    price_set(user=world.uma.user, kind="retail", currency="INR", price=800,
              effective_from=datetime(2026, 1, 1, tzinfo=UTC), idempotency_key="fuzz-price")
    producer = ledger.organisation_create(msp_id="sunfarm", name="SunFarm", org_type=OrgType.PRODUCER)
    device_register_simulated(organisation=producer, kind=DeviceKind.PRODUCER_METER, name="SunFarm array",
                              public_id="PM-SUN1")
    return world


@pytest.fixture
def in_test_transaction():
    """Keep the test's database connection across the in-process requests, as Django's test
    client does: the WSGI handler would otherwise close it at the end of each request, inside
    the test's transaction."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@as_anonymous.parametrize()
@HYPOTHESIS
def test_api_as_anonymous(case, fuzz_world, in_test_transaction):
    case.call_and_validate()


@as_household.parametrize()
@HYPOTHESIS
def test_api_as_household(case, fuzz_world, in_test_transaction):
    case.call_and_validate()


@as_utility.parametrize()
@HYPOTHESIS
def test_api_as_utility(case, fuzz_world, in_test_transaction):
    case.call_and_validate()


@pytest.mark.parametrize("user, path", [("household", "/api/v1/wallet/"), ("utility", "/api/v1/payments/events/")])
def test_the_fuzzed_users_credentials_are_accepted(client, fuzz_world, user, path):
    # Without this a broken login would turn every fuzzed request into a documented 403 and the
    # runs above would pass having tested nothing but the refusal.
    username, password = USERS[user]
    token = base64.b64encode(f"{username}:{password}".encode()).decode()
    assert client.get(path, HTTP_AUTHORIZATION=f"Basic {token}").status_code == 200


def test_every_api_operation_is_fuzzed():
    operations = {result.ok().label for result in as_anonymous.get_all_operations()}
    assert len(operations) == 16 and "POST /api/v1/meters/{meter_id}/readings" in operations
