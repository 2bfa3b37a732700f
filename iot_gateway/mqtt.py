"""MQTT plumbing shared by the gateway, the relay publisher and the simulated meters: topics,
the broker address from ``MQTT_URL`` and client construction (paho-mqtt 2.x, MQTT 5)."""

from __future__ import annotations

import struct
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
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


class _BufferedSocket:
    """A socket that reads 64 KB at a time. paho reads a packet with three or more ``recv``
    calls (type byte, length bytes one by one, body) and one ``select`` per packet; under a
    fleet's load that was most of the gateway's network thread. ``pending()`` is paho's own
    hook for bytes it must consume without waiting in ``select`` (it uses it for TLS)."""

    def __init__(self, sock):
        self._sock = sock
        self._data = b""  # the last chunk read, consumed from ``_pos`` on (no copying of the rest)
        self._pos = 0

    def recv(self, bufsize: int) -> bytes:
        pos = self._pos
        if pos >= len(self._data):
            data = self._sock.recv(max(bufsize, 65536))  # raises BlockingIOError when empty, as paho expects
            if len(data) <= bufsize:
                self._data, self._pos = b"", 0
                return data
            self._data, pos = data, 0
        out = self._data[pos:pos + bufsize]
        self._pos = pos + len(out)
        return out

    def pending(self) -> int:
        inner = getattr(self._sock, "pending", None)
        return len(self._data) - self._pos + (inner() if inner else 0)

    def __getattr__(self, name: str):  # send, close, fileno, setblocking, ...
        return getattr(self._sock, name)


# (mid, qos, retain, topic, payload) of one received PUBLISH
FastHandler = Callable[[int, int, bool, str, bytes], None]
_PUBACK = struct.Struct("!BBH")


class BufferedClient(mqtt.Client):
    """paho's client for the gateway's high-volume subscription, with shortcuts that keep
    paho's connection, session and keepalive handling but not its per-message cost:

    - a read-buffered socket (see ``_BufferedSocket``), whose buffered packets are handled in
      one go rather than one per ``select``;
    - ``on_publish_fast``: a PUBLISH of QoS 0 or 1 without MQTT 5 properties (what meters
      send) goes straight to this handler. paho builds a ``Properties`` table, a message
      object with its own condition variable and a topic-filter match for every message;
      at thousands of readings a second that was a third of the gateway's CPU. Anything else
      (properties present, QoS 2, no handler set) takes paho's own path to ``on_message``;
    - ``ack_many``: one write for a whole batch's acknowledgements instead of a wake-up of
      the network thread and a ``send`` for each;
    - ``writes_held()``: packets queued by the calling thread inside it (a batch's relay
      commands) wake the network thread once, at the end, instead of once each;
    - a PUBACK of one of our QoS 1 publications (a relay command) without properties is
      settled without paho's ``ReasonCode`` and ``Properties`` objects, unless an
      ``on_publish`` callback wants them.
    """

    on_publish_fast: FastHandler | None = None
    READ_BURST = 1_000  # packets handled per wake-up at most, so writes (acks) are not starved

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._holding: int | None = None  # the thread whose queued packets wait for one wake-up
        self._held = False  # a packet was queued without waking the network thread

    @contextmanager
    def writes_held(self) -> Iterator[None]:
        """Queue the calling thread's packets without waking the network thread for each;
        one wake-up when the block ends. Nested use is part of the outer block."""
        if self._holding == threading.get_ident():
            yield
            return
        self._holding = threading.get_ident()
        try:
            yield
        finally:
            self._holding = None
            if self._held:
                self._held = False
                self._wake()

    def _wake(self) -> None:
        if self._sockpairW is not None:
            try:
                self._sockpairW.send(mqtt.sockpair_data)
            except BlockingIOError:
                pass
        self._call_socket_register_write()

    def _packet_queue(self, command, packet, mid, qos, info=None):
        if self._holding != threading.get_ident() or self._thread is None:
            return super()._packet_queue(command, packet, mid, qos, info)
        self._out_packet.append({"command": command, "mid": mid, "qos": qos, "pos": 0, "to_process": len(packet),
                                 "packet": packet, "info": info})
        self._held = True
        return mqtt.MQTTErrorCode.MQTT_ERR_SUCCESS

    def _handle_pubackcomp(self, cmd):
        length = self._in_packet["remaining_length"]
        if cmd != "PUBACK" or self.on_publish is not None or self._protocol != mqtt.MQTTv5 or length not in (2, 3):
            return super()._handle_pubackcomp(cmd)
        packet = self._in_packet["packet"]
        mid = int.from_bytes(packet[:2], "big")
        if length == 3 and packet[2] >= 0x80:
            self._easy_log(mqtt.MQTT_LOG_WARNING, "PUBACK (Mid: %d) refused with reason code %d", mid, packet[2])
        with self._out_message_mutex:
            message = self._out_messages.pop(mid, None)
            if message is None:
                return mqtt.MQTTErrorCode.MQTT_ERR_SUCCESS
            message.info._set_as_published()
            if message.qos > 0:
                self._inflight_messages -= 1
                if self._max_inflight_messages > 0:
                    return self._update_inflight()
        return mqtt.MQTTErrorCode.MQTT_ERR_SUCCESS

    def _create_socket(self):
        return _BufferedSocket(super()._create_socket())

    def loop_read(self, max_packets: int = 1):
        """paho handles one packet per ``select`` (plus its keepalive bookkeeping); packets
        already in the read buffer are handled here in one go."""
        rc = super().loop_read(max_packets)
        for _ in range(self.READ_BURST):
            sock = self._sock
            if rc != mqtt.MQTTErrorCode.MQTT_ERR_SUCCESS or sock is None or not sock.pending():
                break
            rc = super().loop_read(max_packets)
        return rc

    def _handle_publish(self):
        handler = self.on_publish_fast
        header = self._in_packet["command"]
        qos = (header & 0x06) >> 1
        packet = self._in_packet["packet"]
        if handler is None or qos == 2 or self._protocol != mqtt.MQTTv5 or len(packet) < 2:
            return super()._handle_publish()
        end = 2 + int.from_bytes(packet[:2], "big")
        mid = 0
        if qos:
            mid = int.from_bytes(packet[end:end + 2], "big")
            end += 2
        if len(packet) <= end or packet[end] != 0:  # malformed, or properties present: paho's path
            return super()._handle_publish()
        try:
            topic = packet[2:end - 2 if qos else end].decode()
        except UnicodeDecodeError:
            return super()._handle_publish()
        with self._in_callback_mutex:
            try:
                handler(mid, qos, bool(header & 0x01), topic, bytes(packet[end + 1:]))
            except Exception as err:
                self._easy_log(mqtt.MQTT_LOG_ERR, "Caught exception in on_publish_fast: %s", err)
                if not self.suppress_exceptions:
                    raise
        if qos == 1 and not self._manual_ack:
            return self._send_puback(mid)
        return mqtt.MQTTErrorCode.MQTT_ERR_SUCCESS

    def ack_many(self, acks: Iterable[tuple[int, int]]) -> None:
        """Acknowledge (mid, qos) pairs of manually acknowledged messages: every QoS 1 PUBACK
        in one queued write (QoS 0 needs none; QoS 2 goes through paho one by one)."""
        mids = []
        for mid, qos in acks:
            if qos == 1:
                mids.append(mid)
            elif qos == 2:
                self.ack(mid, qos)
        if mids and self._manual_ack:
            self._packet_queue(mqtt.PUBACK, b"".join(_PUBACK.pack(mqtt.PUBACK, 2, mid) for mid in mids), 0, 0)


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
    return client._gridcoin_address  # type: ignore[attr-defined]
