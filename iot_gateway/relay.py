"""Relay commands from processes other than the gateway (the web process after a funding, the
scheduler after a window settles): a lazily connected MQTT client publishing retained
``gridcoin/v1/meters/<id>/relay`` messages, registered with ``meters.live`` at start-up when
``MQTT_URL`` is set."""

from __future__ import annotations

import logging
import threading
import time

import paho.mqtt.client as mqtt

from .mqtt import address, make_client, meter_topic

logger = logging.getLogger(__name__)


class MqttRelayPublisher:
    def __init__(self, url: str):
        self.url = url
        self._client: mqtt.Client | None = None
        self._lock = threading.Lock()
        self._published = 0  # commands handed to paho
        self._acknowledged = 0  # ... and acknowledged by the broker (paho's on_publish)

    def _connected(self) -> mqtt.Client:
        with self._lock:
            if self._client is None:
                client = make_client(self.url)
                client.on_publish = self._on_publish
                host, port = address(client)
                client.connect_async(host, port, keepalive=60)
                client.loop_start()  # publishes queue until the connection is up
                self._client = client
            return self._client

    def _on_publish(self, client, userdata, mid, reason_code, properties) -> None:
        self._acknowledged += 1  # paho's network thread only

    def __call__(self, public_id: str, relay: str) -> None:
        client = self._connected()
        with self._lock:
            self._published += 1
        client.publish(meter_topic(public_id, "relay"), relay, qos=1, retain=True)

    def close(self, timeout: float = 10.0) -> None:
        """Disconnect once every command so far reached the broker (or ``timeout`` passed):
        paho holds publications beyond its in-flight window back, and a DISCONNECT drops
        those."""
        with self._lock:
            client, self._client = self._client, None
        if client is None:
            return
        deadline = time.monotonic() + timeout
        while self._acknowledged < self._published:
            if time.monotonic() > deadline:
                logger.warning("relay publisher closed with %d commands unacknowledged",
                               self._published - self._acknowledged)
                break
            time.sleep(0.005)
        client.disconnect()
        client.loop_stop()


_default: MqttRelayPublisher | None = None


def default_publisher(url: str) -> MqttRelayPublisher:
    global _default
    if _default is None:
        _default = MqttRelayPublisher(url)
    return _default


def default_publisher_if_any() -> MqttRelayPublisher | None:
    return _default
