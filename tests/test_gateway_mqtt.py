"""The MQTT gateway against the real broker: readings in batches, relay commands out
(retained), offline from a meter's last will, malformed payloads kept with the reason."""

from __future__ import annotations

import json
import threading
import time
import uuid
from datetime import timedelta

import paho.mqtt.client as mqtt
import pytest
from django.conf import settings
from django.utils import timezone

from iot_gateway.gateway import GatewayLoop, Received, decode_batch
from iot_gateway.meter_clients import MqttMeter
from iot_gateway.models import MeterReading, MeterStatus
from iot_gateway.mqtt import address, make_client, meter_topic
from meters import live
from tests.test_gateway_ingest import T0, balance, fleet  # noqa: F401  (fixture)

pytestmark = [pytest.mark.mqtt, pytest.mark.django_db(transaction=True)]


def step_until(gateway: GatewayLoop, done, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, "the gateway did not get there in time"
        gateway.step()


@pytest.fixture
def gateway(fleet):  # noqa: F811
    meters = [fleet["light"].public_id, fleet["panel"].public_id]
    loop = GatewayLoop(url=settings.MQTT_URL, client_id=f"gw-test-{uuid.uuid4().hex[:10]}", batch_size=50,
                       batch_timeout=0.05, idle_wait=0.1, meters=meters).start()
    yield loop
    loop.close(end_session=True)


def retained(topic: str, timeout: float = 5.0) -> bytes | None:
    """Subscribe and return the retained (or first) message on ``topic``."""
    got: list[bytes] = []
    arrived = threading.Event()
    client = make_client(settings.MQTT_URL)

    def on_message(c, u, message):
        got.append(message.payload)
        arrived.set()

    client.on_message = on_message
    client.on_connect = lambda c, u, f, rc, p: c.subscribe(topic, qos=1)
    client.connect(*address(client))
    client.loop_start()
    try:
        arrived.wait(timeout)
    finally:
        client.disconnect()
        client.loop_stop()
    return got[0] if got else None


def test_readings_over_mqtt_burn_and_mint_and_the_relay_goes_off_retained(fleet, gateway):  # noqa: F811
    light, panel = fleet["light"], fleet["panel"]
    light_client = MqttMeter(fleet["light_meter"], url=settings.MQTT_URL).start()
    panel_client = MqttMeter(fleet["panel_meter"], url=settings.MQTT_URL).start()
    try:
        for n in range(1, 6):  # 5 kWh in five readings: the light's 5 kWh are gone
            light_client.client.publish(meter_topic(light.public_id, "readings"), json.dumps(
                fleet["light_meter"].reading(counter=n, import_wh=1_000 * n, export_wh=0,
                                             timestamp=T0 + timedelta(minutes=n))), qos=1)
            panel_client.client.publish(meter_topic(panel.public_id, "readings"), json.dumps(
                fleet["panel_meter"].reading(counter=n, import_wh=0, export_wh=300 * n,
                                             timestamp=T0 + timedelta(minutes=n))), qos=1)
        step_until(gateway, lambda: MeterReading.objects.filter(status="applied").count() == 10)
        assert balance(light.account_key) == 0
        assert balance(f"producer:{fleet['producer'].organisation.msp_id}") == 1_500
        assert retained(meter_topic(light.public_id, "relay")) == b"off"
        # the meter obeys: its relay is off, so its import register stops growing
        deadline = time.monotonic() + 5
        while fleet["light_meter"].relay != "off":
            assert time.monotonic() < deadline
            time.sleep(0.02)
        before = fleet["light_meter"].import_wh
        fleet["light_meter"].advance(timezone.now())
        fleet["light_meter"].advance(timezone.now() + timedelta(hours=1))
        assert fleet["light_meter"].import_wh == before
    finally:
        light_client.stop()
        panel_client.stop()


def test_a_funding_publishes_relay_on_retained(fleet, gateway):  # noqa: F811
    light = fleet["light"]
    fleet["utility"].invoke("token", "mint", {"to": light.account_key, "asset": "k", "amount": 1})
    live.device_state_changed(light.public_id)  # what the funding path announces after commit
    assert retained(meter_topic(light.public_id, "relay")) == b"on"


def test_a_dead_meter_goes_offline_from_its_last_will(fleet, gateway):  # noqa: F811
    light = fleet["light"]
    meter = MqttMeter(fleet["light_meter"], url=settings.MQTT_URL).start()
    step_until(gateway, lambda: MeterStatus.objects.filter(device=light, online=True).exists())
    meter.stop(clean=False)  # the TCP connection drops without DISCONNECT: the broker sends the will
    step_until(gateway, lambda: MeterStatus.objects.filter(device=light, online=False).exists())
    assert retained(meter_topic(light.public_id, "status")) == b"offline"


def test_undecodable_and_misaddressed_payloads_are_kept_with_the_reason(fleet, gateway):  # noqa: F811
    light, panel = fleet["light"], fleet["panel"]
    client = make_client(settings.MQTT_URL)
    client.connect(*address(client))
    client.loop_start()
    try:
        client.publish(meter_topic(light.public_id, "readings"), b"\xff not json", qos=1).wait_for_publish(5)
        other = fleet["panel_meter"].reading(counter=1, import_wh=0, export_wh=5, timestamp=T0)
        client.publish(meter_topic(light.public_id, "readings"), json.dumps(other), qos=1).wait_for_publish(5)
    finally:
        client.disconnect()
        client.loop_stop()
    step_until(gateway, lambda: MeterReading.objects.count() == 2)
    reasons = sorted(MeterReading.objects.values_list("status", "reason"))
    assert all(status == "rejected" for status, _ in reasons)
    assert "not JSON" in reasons[1][1] or "not JSON" in reasons[0][1]
    assert any(panel.public_id in reason for _, reason in reasons)
    assert MeterReading.objects.filter(device=light).count() == 2


def test_decode_batch_takes_the_meter_from_the_topic_and_the_last_status():
    batch = [Received(1, 1, meter_topic("M-1", "readings"), b'{"counter": 1}'),
             Received(2, 1, meter_topic("M-1", "status"), b"online"),
             Received(3, 1, meter_topic("M-1", "status"), b'{"status": "offline"}'),
             Received(4, 1, "somewhere/else", b"x")]
    readings, undecodable, statuses = decode_batch(batch)
    assert readings == [{"counter": 1, "meter": "M-1"}] and undecodable == [] and statuses == {"M-1": False}


def test_mqtt_client_protocol_is_v5():
    assert make_client("mqtt://127.0.0.1:1883")._protocol == mqtt.MQTTv5
