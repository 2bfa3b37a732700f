"""Relay commands from processes other than the gateway (the web process after a funding, the
scheduler after a window settles): a lazily connected MQTT client publishing retained
``gridcoin/v1/meters/<id>/relay`` messages, registered with ``meters.live`` at start-up when
``MQTT_URL`` is set."""

from __future__ import annotations

import logging
import threading

import paho.mqtt.client as mqtt

from .mqtt import address, make_client, meter_topic

logger = logging.getLogger(__name__)


class MqttRelayPublisher:
    def __init__(self, url: str):
        self.url = url
        self._client: mqtt.Client | None = None
        self._lock = threading.Lock()

    def _connected(self) -> mqtt.Client:
        with self._lock:
            if self._client is None:
                client = make_client(self.url)
                host, port = address(client)
                client.connect_async(host, port, keepalive=60)
                client.loop_start()  # publishes queue until the connection is up
                self._client = client
            return self._client

    def __call__(self, public_id: str, relay: str) -> None:
        self._connected().publish(meter_topic(public_id, "relay"), relay, qos=1, retain=True)

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.disconnect()
                self._client.loop_stop()
                self._client = None


_default: MqttRelayPublisher | None = None


def default_publisher(url: str) -> MqttRelayPublisher:
    global _default
    if _default is None:
        _default = MqttRelayPublisher(url)
    return _default


def default_publisher_if_any() -> MqttRelayPublisher | None:
    return _default
