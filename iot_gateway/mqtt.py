"""MQTT plumbing shared by the gateway, the relay publisher and the simulated meters: topics,
the broker address from ``MQTT_URL`` and client construction (paho-mqtt 2.x, MQTT 5). Public
paho API only; the gateway's shortcuts through paho's internals are in ``paho_fast``."""

from __future__ import annotations

import uuid
from urllib.parse import unquote, urlparse

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

TOPIC_ROOT = "gridcoin/v1/meters"
READINGS_FILTER = f"{TOPIC_ROOT}/+/readings"
STATUS_FILTER = f"{TOPIC_ROOT}/+/status"
RELAY_FILTER = f"{TOPIC_ROOT}/+/relay"
ONLINE, OFFLINE = "online", "offline"


def meter_topic(meter_id: str, leaf: str) -> str:
    """``gridcoin/v1/meters/<meter_id>/<leaf>`` (leaf: readings, relay, status)."""
    return f"{TOPIC_ROOT}/{meter_id}/{leaf}"


def meter_of(topic: str) -> tuple[str, str] | None:
    """(meter id, leaf) of a meter topic, None for anything else."""
    parts = topic.split("/")
    if len(parts) != 5 or "/".join(parts[:3]) != TOPIC_ROOT or not parts[3]:
        return None
    return parts[3], parts[4]


def broker(url: str) -> tuple[str, int, str | None, str | None, bool]:
    """host, port, username, password, tls from ``mqtt://[user:pass@]host[:port]`` (or mqtts)."""
    parts = urlparse(url)
    if parts.scheme not in ("mqtt", "mqtts", "tcp", "ssl"):
        raise ValueError(f"MQTT_URL must be mqtt://host:port, not {url!r}")
    tls = parts.scheme in ("mqtts", "ssl")
    return (parts.hostname or "127.0.0.1", parts.port or (8883 if tls else 1883),
            unquote(parts.username) if parts.username else None,
            unquote(parts.password) if parts.password else None, tls)


def make_client(url: str, *, client_id: str | None = None, manual_ack: bool = False,
                client_class: type[mqtt.Client] = mqtt.Client) -> mqtt.Client:
    """A paho client (MQTT 5) for the broker at ``url``, not yet connected: ``address(client)``
    is where to connect. The gateway passes ``paho_fast.BufferedClient`` as ``client_class``."""
    host, port, username, password, tls = broker(url)
    client = client_class(CallbackAPIVersion.VERSION2, client_id=client_id or f"gridcoin-{uuid.uuid4().hex[:12]}",
                          protocol=mqtt.MQTTv5, manual_ack=manual_ack)
    if username:
        client.username_pw_set(username, password)
    if tls:
        client.tls_set()
    client.max_inflight_messages_set(1000)  # outgoing QoS 1 (relay commands, simulated readings)
    client.max_queued_messages_set(0)
    client.host, client.port = host, port  # paho's own record of the address, read by ``address``
    return client


def end_sessions(url: str, client_ids: list[str]) -> None:
    """End the broker's persistent sessions of these client ids (a clean start, then a
    disconnect): their subscriptions stop collecting messages for nobody."""
    for client_id in client_ids:
        client = make_client(url, client_id=client_id)
        client.connect(*address(client), clean_start=True)
        client.disconnect()


def connect_properties(*, session_expiry: int = 0, receive_maximum: int | None = None) -> Properties:
    props = Properties(PacketTypes.CONNECT)
    if session_expiry:
        props.SessionExpiryInterval = session_expiry
    if receive_maximum:
        props.ReceiveMaximum = receive_maximum
    return props


def address(client: mqtt.Client) -> tuple[str, int]:
    """The broker address ``make_client`` gave the client."""
    return client.host, client.port
