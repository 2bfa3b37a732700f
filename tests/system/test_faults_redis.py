"""Redis unreachable: the web process's channel layer points at a port where nothing listens.
A bank webhook, a funding and a meter's readings over HTTP still commit (the ledger is the
truth; a live push is best effort), the outage is said once in the log rather than once per
push, and when Redis answers again a listener hears the next push: after a restart too, which
forgets every group (pages subscribe again when they reconnect). Once in-process through the
ASGI application and a websocket, once with the real web process (daphne)."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import secrets
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from channels.testing import WebsocketCommunicator
from channels_redis.core import RedisChannelLayer
from django.conf import settings
from django.test import Client, override_settings
from rest_framework.test import APIClient

from gridcoin.asgi import application
from iot_gateway.models import MeterReading
from ledger.events import push_outage
from meters import live
from meters.models import DeviceKind
from meters.services import device_register_simulated
from payments.testing import balance, build_market
from tests.iot_gateway.test_gateway_crash import database_url_of_tests
from tests.iot_gateway.test_gateway_ingest import T0, meter_for
from tests.ledger.test_ledger_websocket import HEADERS
from tests.system.faults import RedisServer, free_port, port_answers, post, wait_until

pytestmark = [pytest.mark.redis, pytest.mark.django_db(transaction=True)]

ROOT = Path(__file__).resolve().parents[2]
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


@pytest.mark.postgres  # the web process reads the test database, so it must be a server's
def test_the_web_process_serves_without_redis_and_pushes_again_when_it_returns(market, redis_server, tmp_path):
    """The same with the real web process (daphne, as the Procfile runs it) started with
    REDIS_URL at the closed port, and a channel-layer consumer of the device's group in
    place of a page."""
    market, light = market
    meter = meter_for(light)
    browser = Client()
    browser.force_login(market.resident)
    csrf = secrets.token_hex(16)  # 32 characters: Django takes it as the unmasked secret
    resident = {"Cookie": f"sessionid={browser.cookies['sessionid'].value}; csrftoken={csrf}", "X-CSRFToken": csrf,
                "Content-Type": "application/json"}
    port = free_port(redis_server.port + 1)
    web = f"http://127.0.0.1:{port}"
    env = {**os.environ, "DATABASE_URL": database_url_of_tests(), "REDIS_URL": redis_server.url,
           "GRIDCOIN_DATA_DIR": str(settings.DATA_DIR), "GRIDCOIN_KEK": settings.GRIDCOIN_KEK,
           "GRIDCOIN_ORDERER_KEY": settings.GRIDCOIN_ORDERER_KEY, "GRIDCOIN_DB_POOL_MAX": "4",
           "GRIDCOIN_BACKGROUND_SEALER": "0", "PYTHONUNBUFFERED": "1"}
    env.pop("MQTT_URL", None)
    log = tmp_path / "web.log"
    process = subprocess.Popen([sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port),
                                "gridcoin.asgi:application"], cwd=ROOT, env=env, stdout=log.open("w"),
                               stderr=subprocess.STDOUT)

    def fund_over_http(amount_wh: int, key: str) -> None:
        status = post(f"{web}/api/v1/devices/{light.public_id}/fund/", json.dumps({"amount_wh": amount_wh}).encode(),
                      {**resident, "Idempotency-Key": key})
        assert status == 201, log.read_text()

    def read_over_http(counter: int) -> None:
        reading = meter.reading(counter=counter, import_wh=100 * counter, export_wh=0,
                                timestamp=T0 + timedelta(minutes=counter))
        status = post(f"{web}/api/v1/meters/{meter.public_id}/readings", json.dumps(reading).encode(),
                      {"Content-Type": "application/json"})
        assert status == 200, log.read_text()

    def logged(text: str) -> int:
        return log.read_text().count(text)

    def pushed_on_funding(amount_wh: int, key: str) -> dict:
        layer = RedisChannelLayer(hosts=[redis_server.url])

        async def scenario() -> dict:
            channel = await layer.new_channel()
            await layer.group_add(live.device_group(light.public_id), channel)
            await sync_to_async(fund_over_http)(amount_wh, key)
            message = await asyncio.wait_for(layer.receive(channel), TIMEOUT)
            await layer.close_pools()
            return message

        message = async_to_sync(scenario)()
        assert (message["type"], message["event"]) == ("device.event", "device.state"), message
        return message["payload"]

    try:
        wait_until(lambda: port_answers(port), 30, "the web process")
        raw = json.dumps(market.notification(amount=4_000)).encode()
        status = post(f"{web}/webhooks/bank/", raw, {"Content-Type": "application/json",
                                                      "GridCoin-Signature": market.signed(raw)[1]})
        assert status == 200, log.read_text()
        fund_over_http(1_000, "web-fund-1")
        for counter in (1, 2, 3):
            read_over_http(counter)
        assert (market.household_balance(), balance(light.account_key)) == (4_000, 700)
        assert logged(SKIPPED) == 1, log.read_text()

        redis_server.start()
        assert pushed_on_funding(500, "web-fund-2")["balance_wh"] == 1_200
        assert logged(RESUMED) == 1, log.read_text()

        redis_server.stop()
        fund_over_http(300, "web-fund-3")
        read_over_http(4)
        assert logged(SKIPPED) == 2, log.read_text()
        redis_server.start()
        assert pushed_on_funding(200, "web-fund-4")["balance_wh"] == 1_600
        assert logged(RESUMED) == 2, log.read_text()
        assert process.poll() is None, log.read_text()
    finally:
        process.terminate()
        process.wait(15)
