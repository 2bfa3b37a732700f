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
from tests.iot_gateway.test_gateway_ingest import T0, balance, fleet  # noqa: F401  (fixture)

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


class Recorder:
    """Every message on some topics, in arrival order (retained ones included)."""

    def __init__(self, *topics: str, qos: int = 1):
        self.messages: list[tuple[str, bytes]] = []
        self.client = make_client(settings.MQTT_URL)
        subscribed = threading.Event()
        self.client.on_message = lambda c, u, m: self.messages.append((m.topic, m.payload))
        self.client.on_subscribe = lambda *a: subscribed.set()
        self.client.on_connect = lambda c, u, f, rc, p: c.subscribe([(t, qos) for t in topics])
        self.client.connect(*address(self.client))
        self.client.loop_start()
        assert subscribed.wait(5)

    def payloads(self, topic: str) -> list[bytes]:
        return [payload for t, payload in self.messages if t == topic]

    def wait_for(self, topic: str, count: int, timeout: float = 5.0) -> list[bytes]:
        deadline = time.monotonic() + timeout
        while len(self.payloads(topic)) < count:
            assert time.monotonic() < deadline, self.payloads(topic)
            time.sleep(0.02)
        return self.payloads(topic)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def publish(topic: str, payload: str | bytes, *, qos: int = 1, retain: bool = False, properties=None) -> None:
    client = make_client(settings.MQTT_URL)
    client.connect(*address(client))
    client.loop_start()
    try:
        client.publish(topic, payload, qos=qos, retain=retain, properties=properties).wait_for_publish(5)
    finally:
        client.disconnect()
        client.loop_stop()


def test_relay_commands_are_published_when_they_differ_from_the_last_one(fleet, gateway):  # noqa: F811
    """Steady readings publish nothing; a change does; a stale command from another publisher is
    corrected at the next reading (the gateway watches the relay topics)."""
    light, meter = fleet["light"], fleet["light_meter"]
    topic = meter_topic(light.public_id, "relay")
    recorder = Recorder(topic)

    def reading(n: int) -> None:
        publish(meter_topic(light.public_id, "readings"), json.dumps(
            meter.reading(counter=n, import_wh=1_000 * n, export_wh=0, timestamp=T0 + timedelta(minutes=n))))
        step_until(gateway, lambda: MeterReading.objects.filter(device=light, counter=n).exists())

    try:
        reading(1)  # 4 kWh left; nothing retained yet: the gateway tells the meter
        assert recorder.wait_for(topic, 1) == [b"on"]
        publish(topic, "off", retain=True)  # someone else's stale command
        deadline = time.monotonic() + 5
        while gateway.relay_known.get(light.public_id) != "off":
            assert time.monotonic() < deadline, "the gateway did not see the other publisher's command"
            time.sleep(0.02)
        reading(2)  # 3 kWh left: the stale "off" is corrected
        reading(3)  # 2 kWh left: the broker already holds "on", nothing to publish
        reading(5)  # 0 kWh: off
        # one publisher's messages on a topic arrive in order: a redundant "on" after reading 3
        # would come before the final "off"
        assert recorder.wait_for(topic, 4) == [b"on", b"off", b"on", b"off"]
        assert retained(topic) == b"off"
    finally:
        recorder.close()


def test_a_connecting_gateway_is_not_sent_the_retained_backlog(fleet):  # noqa: F811
    """Retained commands from before it connected are not replayed to the gateway (a fleet's
    backlog at once overran the broker's queue and cost readings): it tells the meter again
    at its next reading."""
    light, meter = fleet["light"], fleet["light_meter"]
    topic = meter_topic(light.public_id, "relay")
    publish(topic, "on", retain=True)  # from before the gateway connected
    loop = GatewayLoop(url=settings.MQTT_URL, client_id=f"gw-test-{uuid.uuid4().hex[:10]}", batch_size=50,
                       batch_timeout=0.05, idle_wait=0.1, meters=[light.public_id]).start()
    recorder = Recorder(topic)
    try:
        assert recorder.wait_for(topic, 1) == [b"on"]  # the recorder's own retained copy
        time.sleep(0.3)
        assert light.public_id not in loop.relay_known
        publish(meter_topic(light.public_id, "readings"), json.dumps(
            meter.reading(counter=1, import_wh=100, export_wh=0, timestamp=T0)))
        step_until(loop, lambda: MeterReading.objects.filter(device=light).exists())
        assert recorder.wait_for(topic, 2) == [b"on", b"on"]
    finally:
        recorder.close()
        loop.close(end_session=True)


def test_readings_with_mqtt5_properties_or_at_qos_0_are_ingested(fleet, gateway):  # noqa: F811
    """A message with properties takes paho's own path, a QoS 0 one needs no acknowledgement:
    both are applied like any reading."""
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties

    light, meter = fleet["light"], fleet["light_meter"]
    props = Properties(PacketTypes.PUBLISH)
    props.MessageExpiryInterval = 3600
    props.UserProperty = ("firmware", "1.2")
    publish(meter_topic(light.public_id, "readings"), json.dumps(
        meter.reading(counter=1, import_wh=100, export_wh=0, timestamp=T0)), properties=props)
    publish(meter_topic(light.public_id, "readings"), json.dumps(
        meter.reading(counter=2, import_wh=300, export_wh=0, timestamp=T0 + timedelta(minutes=1))), qos=0)
    step_until(gateway, lambda: MeterReading.objects.filter(device=light, status="applied").count() == 2)
    assert balance(light.account_key) == 5_000 - 300


def test_an_acknowledged_batch_is_not_delivered_again_to_the_next_session(fleet):  # noqa: F811
    light, meter = fleet["light"], fleet["light_meter"]
    client_id = f"gw-test-{uuid.uuid4().hex[:10]}"

    def start() -> GatewayLoop:
        return GatewayLoop(url=settings.MQTT_URL, client_id=client_id, batch_size=50, batch_timeout=0.05,
                           idle_wait=0.1, meters=[light.public_id]).start()

    first = start()
    try:
        for n in range(1, 4):
            publish(meter_topic(light.public_id, "readings"), json.dumps(
                meter.reading(counter=n, import_wh=100 * n, export_wh=0, timestamp=T0 + timedelta(minutes=n))))
        step_until(first, lambda: MeterReading.objects.filter(device=light).count() == 3)
    finally:
        first.close()  # the session (and anything unacknowledged in it) stays with the broker
    second = start()
    try:
        for _ in range(10):
            second.step()
        assert MeterReading.objects.filter(device=light).count() == 3  # no delivery came back
        assert set(MeterReading.objects.filter(device=light).values_list("status", flat=True)) == {"applied"}
    finally:
        second.close(end_session=True)



def test_the_relay_publisher_sends_every_command_before_it_disconnects():
    """More commands than paho keeps in flight on a live connection: closing waits for the
    held-back ones instead of dropping them."""
    from iot_gateway.relay import MqttRelayPublisher

    prefix = f"RP-{uuid.uuid4().hex[:6]}"
    ids = [f"{prefix}-{n}" for n in range(5_000)]
    publisher = MqttRelayPublisher(settings.MQTT_URL)
    publisher(ids[0], "on")
    assert retained(meter_topic(ids[0], "relay")) == b"on"  # connected
    for public_id in ids[1:]:
        publisher(public_id, "on")
    publisher.close()
    recorder = Recorder(meter_topic("+", "relay"), qos=0)  # QoS 1 beyond the broker's queue would be dropped
    try:
        deadline = time.monotonic() + 10
        while len({t for t, _ in recorder.messages if t.split("/")[3].startswith(prefix)}) < len(ids):
            assert time.monotonic() < deadline, "some relay commands never reached the broker"
            time.sleep(0.05)
    finally:
        recorder.close()
        for public_id in ids:
            publisher(public_id, "")  # an empty retained message clears the topic
        publisher.close()


def test_the_buffered_socket_hands_out_the_stream_in_order():
    from iot_gateway.paho_fast import BufferedSocket

    class Chunks:
        def __init__(self, *chunks: bytes):
            self.chunks = list(chunks)

        def recv(self, size: int) -> bytes:
            if not self.chunks:
                raise BlockingIOError
            return self.chunks.pop(0)[:size]

    stream = bytes(range(256)) * 600  # 153,600 bytes: three chunks of at most 64 KB
    sock = BufferedSocket(Chunks(stream[:65536], stream[65536:131072], stream[131072:]))
    out, sizes = bytearray(), [1, 1, 2, 300, 7, 65536, 5000]
    while True:
        try:
            data = sock.recv(sizes[len(out) % len(sizes)])
        except BlockingIOError:
            break
        assert sock.pending() >= 0
        out += data
    assert bytes(out) == stream and sock.pending() == 0


@pytest.fixture
def buffered_client():
    """The gateway's kind of MQTT client, connected, its network thread running."""
    from iot_gateway.paho_fast import BufferedClient

    client = make_client(settings.MQTT_URL, client_class=BufferedClient)
    connected = threading.Event()
    client.on_connect = lambda *a: connected.set()
    client.connect(*address(client))
    client.loop_start()
    try:
        assert connected.wait(5)
        yield client
    finally:
        client.disconnect()
        client.loop_stop()


def test_held_writes_wake_the_network_thread_once_and_every_packet_arrives(buffered_client):
    """A batch's relay commands leave in one wake-up of the network thread, not one each, and
    the broker gets every one of them."""
    prefix = f"HW-{uuid.uuid4().hex[:6]}"
    topics = [meter_topic(f"{prefix}-{n}", "relay") for n in range(50)]
    recorder = Recorder(*topics)
    client = buffered_client
    try:
        wakes = []

        class CountingPair:  # the socket paho writes a byte to, to wake its network thread
            def __init__(self, sock):
                self.sock = sock

            def send(self, data):
                wakes.append(data)
                return self.sock.send(data)

            def __getattr__(self, name):
                return getattr(self.sock, name)

        client._sockpairW = CountingPair(client._sockpairW)
        with client.writes_held():
            infos = [client.publish(topic, "on", qos=1) for topic in topics]
            with client.writes_held():  # nested: part of the outer block
                infos.append(client.publish(topics[0], "off", qos=1))
            assert wakes == []
        assert len(wakes) == 1
        for info in infos:
            info.wait_for_publish(5)
        recorder.wait_for(topics[-1], 1)
        assert {t for t, _ in recorder.messages} == set(topics)
        assert recorder.payloads(topics[0]) == [b"on", b"off"]
    finally:
        recorder.close()


def test_pubacks_of_relay_commands_are_settled_without_paho_objects(buffered_client, monkeypatch):
    """Our QoS 1 publications are settled on their PUBACK (nothing left in flight) without
    building a ReasonCode and a Properties table per acknowledgement."""
    import paho.mqtt.client as paho_client

    client = buffered_client
    built = []
    real_reason = paho_client.ReasonCode

    def counting_reason(*args, **kwargs):
        built.append(args)
        return real_reason(*args, **kwargs)

    monkeypatch.setattr(paho_client, "ReasonCode", counting_reason)
    topic = meter_topic(f"PA-{uuid.uuid4().hex[:6]}", "relay")
    infos = [client.publish(topic, str(n), qos=1) for n in range(20)]
    for info in infos:
        info.wait_for_publish(5)
        assert info.is_published()
    assert client._inflight_messages == 0 and not client._out_messages
    assert built == []
