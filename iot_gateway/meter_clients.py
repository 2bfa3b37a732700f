"""Simulated meters on the wire: each ``SimulatedMeter`` gets its own MQTT connection with a
last will ("offline" on its status topic, retained), announces "online", publishes signed
readings (QoS 1) and obeys relay commands from its relay topic; or posts its readings to the
HTTP path."""

from __future__ import annotations

import json
import logging
import socket
import threading
import urllib.error
import urllib.request
from datetime import datetime

import paho.mqtt.client as mqtt

from .mqtt import OFFLINE, ONLINE, address, make_client, meter_topic
from .simulator import SimulatedMeter, reading_publication

logger = logging.getLogger(__name__)


class MqttMeter:
    def __init__(self, meter: SimulatedMeter, *, url: str, client_id: str | None = None):
        self.meter = meter
        self.connected = threading.Event()
        self.client: mqtt.Client = make_client(url, client_id=client_id or f"meter-{meter.public_id}")
        self.client.will_set(meter_topic(meter.public_id, "status"), OFFLINE, qos=1, retain=True)
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message

    def start(self, timeout: float = 10.0) -> MqttMeter:
        host, port = address(self.client)
        self.client.connect(host, port, keepalive=30)
        self.client.loop_start()
        if not self.connected.wait(timeout):
            raise ConnectionError(f"meter {self.meter.public_id} could not connect")
        return self

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            return
        client.subscribe(meter_topic(self.meter.public_id, "relay"), qos=1)
        client.publish(meter_topic(self.meter.public_id, "status"), ONLINE, qos=1, retain=True)
        self.connected.set()

    def _on_message(self, client, userdata, message: mqtt.MQTTMessage) -> None:
        if not self.meter.relay_command(message.payload):
            logger.info("meter %s ignored relay payload %r", self.meter.public_id, message.payload[:40])

    def publish_reading(self, now: datetime) -> mqtt.MQTTMessageInfo:
        topic, payload = reading_publication(self.meter.next_reading(now))
        return self.client.publish(topic, payload, qos=1)

    def stop(self, *, clean: bool = True) -> None:
        """A clean stop says "offline" itself; an unclean one leaves it to the last will."""
        if clean:
            self.client.publish(meter_topic(self.meter.public_id, "status"), OFFLINE, qos=1, retain=True).wait_for_publish(5)
            self.client.disconnect()
            self.client.loop_stop()
            return
        # Unclean: the network thread stops first (it would reconnect), then the TCP connection
        # is dropped without a DISCONNECT, so the broker publishes the will.
        self.client.loop_stop()
        sock = self.client.socket()
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:  # already gone
                pass
            sock.close()


def post_reading(base_url: str, meter: SimulatedMeter, now: datetime, timeout: float = 10.0) -> dict:
    """POST the meter's next reading to ``/api/v1/meters/<id>/readings``."""
    body = json.dumps(meter.next_reading(now)).encode()
    request = urllib.request.Request(f"{base_url.rstrip('/')}/api/v1/meters/{meter.public_id}/readings", data=body,
                                     headers={"Content-Type": "application/json"}, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return {"detail": exc.read().decode(errors="replace"), "status": exc.code}
