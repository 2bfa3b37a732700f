"""Redis unreachable: the web process's channel layer points at a port where nothing listens.
A bank webhook, a funding and a meter's readings over HTTP still commit (the ledger is the
truth; a live push is best effort), the outage is said once in the log rather than once per
push, and when Redis answers again a listener hears the next push: after a restart too, which
forgets every group (pages subscribe again when they reconnect)."""

from __future__ import annotations

import logging

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from channels.testing import WebsocketCommunicator
from django.test import override_settings
from rest_framework.test import APIClient

from gridcoin.asgi import application
from iot_gateway.models import MeterReading
from ledger.events import push_outage
from meters.models import DeviceKind
from meters.services import device_register_simulated
from payments.testing import balance, build_market
from tests.iot_gateway.test_gateway_ingest import T0, meter_for
from tests.ledger.test_ledger_websocket import HEADERS
from tests.system.faults import RedisServer, free_port, port_answers

pytestmark = [pytest.mark.redis, pytest.mark.django_db(transaction=True)]

TIMEOUT = 5
SKIPPED = "live push skipped"
RESUMED = "live pushes resumed"


@pytest.fixture
def redis_server():
    server = RedisServer(free_port())
    yield server
    server.stop()


@pytest.fixture
def market():
    market = build_market()
    light = device_register_simulated(organisation=market.utility, kind=DeviceKind.STREET_LIGHT,
                                      name="Harbour light", public_id="SL-FAULT")
    return market, light


def redis_layer(url: str) -> dict:
    return {"default": {"BACKEND": "channels_redis.core.RedisChannelLayer", "CONFIG": {"hosts": [url]}}}


def said(caplog, text: str) -> int:
    """How many times the log said ``text`` (at INFO or above: the quiet repeats are DEBUG)."""
    return sum(1 for r in caplog.records
               if r.name == "ledger.events" and r.levelno >= logging.INFO and text in r.getMessage())


def fund(client: APIClient, public_id: str, amount_wh: int, key: str):
    return client.post(f"/api/v1/devices/{public_id}/fund/", {"amount_wh": amount_wh}, format="json",
                       headers={"Idempotency-Key": key})


def post_reading(meter, counter: int, import_wh: int):
    from datetime import timedelta

    reading = meter.reading(counter=counter, import_wh=import_wh, export_wh=0,
                            timestamp=T0 + timedelta(minutes=counter))
    return APIClient().post(f"/api/v1/meters/{meter.public_id}/readings", reading, format="json")


def funding_is_heard(client: APIClient, public_id: str, amount_wh: int, key: str) -> dict:
    """A page that (re)connects to the device's websocket, then a funding: the push it hears."""

    async def scenario() -> dict:
        communicator = WebsocketCommunicator(application, f"/ws/devices/{public_id}/", headers=HEADERS)
        connected, code = await communicator.connect(timeout=TIMEOUT)
        assert connected, code
        try:
            assert (await communicator.receive_json_from(timeout=TIMEOUT))["event"] == "device.state"  # snapshot
            response = await sync_to_async(fund)(client, public_id, amount_wh, key)
            assert response.status_code == 201, response.content
            message = await communicator.receive_json_from(timeout=TIMEOUT)
            assert message["event"] == "device.state", message
            return message["payload"]
        finally:
            await communicator.disconnect()

    return async_to_sync(scenario)()


def test_the_ledger_commits_without_redis_and_pushes_resume_when_it_returns(market, redis_server, caplog,
                                                                           monkeypatch):
    monkeypatch.setattr(push_outage, "skipped", 0)  # no outage left over from another test
    caplog.set_level(logging.INFO, logger="ledger.events")
    market, light = market
    meter = meter_for(light)
    resident = APIClient()
    resident.force_login(market.resident)
    assert not port_answers(redis_server.port)

    with override_settings(CHANNEL_LAYERS=redis_layer(redis_server.url)):
        # Redis is away from the start: money in, coins to the device, consumption out.
        response = market.deliver(market.notification(amount=4_000))  # 40.00 INR at 8.00 a kWh
        assert response.status_code == 200, response.content
        assert market.household_balance() == 5_000
        response = fund(resident, light.public_id, 1_000, "fund-1")
        assert response.status_code == 201, response.content
        for counter in (1, 2, 3):
            response = post_reading(meter, counter, 100 * counter)
            assert response.status_code == 200 and response.json()["applied"] == 1, response.content
        assert balance(light.account_key) == 700
        assert MeterReading.objects.filter(device=light, status="applied").count() == 3
        assert said(caplog, SKIPPED) == 1, "the outage is said once, not once per push"
        assert said(caplog, RESUMED) == 0

        redis_server.start()
        assert funding_is_heard(resident, light.public_id, 500, "fund-2")["balance_wh"] == 1_200
        assert said(caplog, RESUMED) == 1

        # Redis goes away again (and comes back empty): the same once more.
        redis_server.stop()
        response = fund(resident, light.public_id, 300, "fund-3")
        assert response.status_code == 201, response.content
        assert post_reading(meter, 4, 500).json()["applied"] == 1
        assert balance(light.account_key) == 1_300
        assert said(caplog, SKIPPED) == 2

        redis_server.start()
        assert funding_is_heard(resident, light.public_id, 200, "fund-4")["balance_wh"] == 1_500
        assert said(caplog, RESUMED) == 2

    assert market.household_balance() == 5_000 - 1_000 - 500 - 300 - 200
