"""schemathesis against the OpenAPI document at /api/schema/, in-process through the WSGI app,
as an anonymous caller, a household member and utility staff (each with an API token holding
every scope, so the views' own rules are what is exercised).

Every generated request (schema-valid ones and deliberately invalid ones) is checked for: no
server error, a documented status code, a documented content type, a body that matches the
documented schema, schema-valid data accepted, schema-invalid data refused, and the declared
authentication enforced. The run is derandomized and small, so it finds the same thing on
every machine and never flakes.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, settings

from accounts.scopes import SCOPES
from accounts.services import api_token_create
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
# The users' API tokens: known in advance so the schema's configuration can carry them (a token
# schemathesis is told about is one it does not also try to invent); the fixture makes them with
# these values through the real service.
TOKENS = {"household": "fuzz-household-token-0123456789abcdef", "utility": "fuzz-utility-token-0123456789abcdef"}


def _schema(user: str | None = None):
    """The schema as served at /api/schema/, set to send the API token of ``user`` (one of the
    API's two declared schemes; the session cookie needs a CSRF token for writes).

    WSGI, not ASGI: under ASGI Django runs sync views in a worker thread with its own database
    connection, outside the test's transaction, so the test's world would not be there."""
    loaded = schemathesis.openapi.from_wsgi("/api/schema/?format=json", get_wsgi_application())
    if user is not None:
        loaded.auth()(_token_provider(user))
    loaded.config.generation.update(max_examples=MAX_EXAMPLES, deterministic=True, database="none")
    loaded.config.seed = SEED
    return loaded


def _bearer(user: str) -> dict[str, str]:
    return {"Authorization": f"Bearer gct_{TOKENS[user]}"}


def _token_provider(user: str):
    """Tells schemathesis the token is the caller's own credential, not a generated one."""

    class TokenAuth:
        def get(self, case, context):
            return _bearer(user)["Authorization"]

        def set(self, case, data, context):
            case.headers = {**(case.headers or {}), "Authorization": data}

    return TokenAuth


as_anonymous = _schema()
as_household = _schema("household")
as_utility = _schema("utility")
HYPOTHESIS = settings(deadline=None, suppress_health_check=list(HealthCheck))


@pytest.fixture
def fuzz_world(settings, monkeypatch):
    world = build_meter_world(settings)
    price_set(user=world.uma.user, kind="retail", currency="INR", price=800,
              effective_from=datetime(2026, 1, 1, tzinfo=UTC), idempotency_key="fuzz-price")
    producer = ledger.organisation_create(msp_id="sunfarm", name="SunFarm", org_type=OrgType.PRODUCER)
    device_register_simulated(organisation=producer, kind=DeviceKind.PRODUCER_METER, name="SunFarm array",
                              public_id="PM-SUN1")
    for name, persona in (("household", world.alice), ("utility", world.uma)):
        monkeypatch.setattr("accounts.services.secrets.token_urlsafe", lambda nbytes, value=TOKENS[name]: value)
        _, raw = api_token_create(user=persona.user, organisation=persona.organisation, name=f"fuzz {name}",
                                  scopes=list(SCOPES))
        assert f"Bearer {raw}" == _bearer(name)["Authorization"]
    monkeypatch.undo()
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
    # Never a 401: the token went with every request and was accepted, so the run tested the
    # views and not only the refusal of a missing credential.
    assert case.call_and_validate().status_code != 401


@as_utility.parametrize()
@HYPOTHESIS
def test_api_as_utility(case, fuzz_world, in_test_transaction):
    # Never a 401: the token went with every request and was accepted, so the run tested the
    # views and not only the refusal of a missing credential.
    assert case.call_and_validate().status_code != 401


@pytest.mark.parametrize("user, path", [("household", "/api/v1/wallet/"), ("utility", "/api/v1/payments/events/")])
def test_the_fuzzed_users_credentials_are_accepted(client, fuzz_world, user, path):
    # Without this a broken login would turn every fuzzed request into a documented 403 and the
    # runs above would pass having tested nothing but the refusal.
    assert client.get(path, HTTP_AUTHORIZATION=_bearer(user)["Authorization"]).status_code == 200


def test_every_api_operation_is_fuzzed():
    operations = {result.ok().label for result in as_anonymous.get_all_operations()}
    assert len(operations) == 28 and "POST /api/v1/meters/{meter_id}/readings" in operations
    assert {"GET /api/v1/ledger/transactions/{tx_hash}/document/", "GET /api/v1/ledger/policies/",
            "GET /api/v1/ledger/snapshot/"} <= operations
