"""MQTT plumbing shared by the gateway, the relay publisher and the simulated meters: topics,
the broker address from ``MQTT_URL`` and client construction (paho-mqtt 2.x, MQTT 5)."""

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


class _BufferedSocket:
    """A socket that reads 64 KB at a time. paho reads a packet with three or more ``recv``
    calls (type byte, length bytes one by one, body) and one ``select`` per packet; under a
    fleet's load that was most of the gateway's network thread. ``pending()`` is paho's own
    hook for bytes it must consume without waiting in ``select`` (it uses it for TLS)."""

    def __init__(self, sock):
        self._sock = sock
        self._buffer = bytearray()

    def recv(self, bufsize: int) -> bytes:
        if not self._buffer:
            data = self._sock.recv(max(bufsize, 65536))  # raises BlockingIOError when empty, as paho expects
            if len(data) <= bufsize:
                return data
            self._buffer += data
        out = bytes(self._buffer[:bufsize])
        del self._buffer[:bufsize]
        return out

    def pending(self) -> int:
        inner = getattr(self._sock, "pending", None)
        return len(self._buffer) + (inner() if inner else 0)

    def __getattr__(self, name: str):  # send, close, fileno, setblocking, ...
        return getattr(self._sock, name)


class BufferedClient(mqtt.Client):
    """paho's client on a read-buffered socket (the gateway's high-volume subscriber)."""

    def _create_socket(self):
        return _BufferedSocket(super()._create_socket())


def make_client(url: str, *, client_id: str | None = None, manual_ack: bool = False,
                buffered: bool = False) -> mqtt.Client:
    host, port, username, password, tls = broker(url)
    cls = BufferedClient if buffered else mqtt.Client
    client = cls(CallbackAPIVersion.VERSION2, client_id=client_id or f"gridcoin-{uuid.uuid4().hex[:12]}",
                 protocol=mqtt.MQTTv5, manual_ack=manual_ack)
    if username:
        client.username_pw_set(username, password)
    if tls:
        client.tls_set()
    client.max_inflight_messages_set(1000)  # outgoing QoS 1 (relay commands, simulated readings)
    client.max_queued_messages_set(0)
    client._gridcoin_address = (host, port)  # type: ignore[attr-defined]
    return client


def connect_properties(*, session_expiry: int = 0, receive_maximum: int | None = None) -> Properties:
    props = Properties(PacketTypes.CONNECT)
    if session_expiry:
        props.SessionExpiryInterval = session_expiry
    if receive_maximum:
        props.ReceiveMaximum = receive_maximum
    return props


def address(client: mqtt.Client) -> tuple[str, int]:
    return client._gridcoin_address  # type: ignore[attr-defined]
