"""The gateway's MQTT client: paho-mqtt's ``Client`` with shortcuts through paho's private
internals, all of them in this module.

The gateway's throughput is CPU-bound, and paho's per-message path (a ``Properties`` table, a
message object with its own condition variable and a topic-filter match per PUBLISH, one
``select`` and three ``recv`` calls per packet, a wake-up of the network thread per queued
packet) was a large share of it. No public paho API offers a cheaper path, so this module
overrides paho's packet handlers and reads its session state. paho gives no stability promise
for any of that: importing this module refuses a paho release it was not written for
(``SUPPORTED_PAHO``), and ``tests/iot_gateway/test_gateway_paho_fast.py`` checks that every
private name listed below (``PAHO_PRIVATE_METHODS`` and the rest) still exists with the shape
used here. To support a new paho release: read those names in its ``client.py``, run
that test and the gateway tests, then add the release series to ``SUPPORTED_PAHO``.

Where paho has a public API that is as cheap (``protocol``, ``socket()``), it is used instead.
"""

from __future__ import annotations

import struct
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager

import paho.mqtt
import paho.mqtt.client as mqtt

from gridcoin.library_versions import require_version

SUPPORTED_PAHO = ("2.1",)

# Every private paho method this module overrides or calls, with its parameter names in paho.
PAHO_PRIVATE_METHODS: dict[str, tuple[str, ...]] = {
    "_handle_publish": ("self",),
    "_handle_pubackcomp": ("self", "cmd"),
    "_packet_queue": ("self", "command", "packet", "mid", "qos", "info"),
    "_create_socket": ("self",),
    "_send_puback": ("self", "mid"),
    "_update_inflight": ("self",),
    "_easy_log": ("self", "level", "fmt", "args"),
    "_call_socket_register_write": ("self",),
}
# ... of paho's MQTTMessageInfo (the handle ``publish`` returns), and paho's module-level names.
PAHO_PRIVATE_MESSAGE_INFO_METHODS: dict[str, tuple[str, ...]] = {"_set_as_published": ("self",)}
PAHO_MODULE_NAMES = ("sockpair_data",)
# Every private attribute of a paho client this module reads or writes.
PAHO_PRIVATE_ATTRIBUTES = (
    "_in_packet", "_in_callback_mutex", "_out_packet", "_out_messages", "_out_message_mutex",
    "_inflight_messages", "_max_inflight_messages", "_sockpairW", "_thread",
)
# The fields of paho's packet records used here: the packet being read, one queued for writing.
PAHO_IN_PACKET_KEYS = ("command", "packet", "remaining_length")
PAHO_OUT_PACKET_KEYS = ("command", "mid", "qos", "pos", "to_process", "packet", "info")



def check_paho_version() -> None:
    """Refuse a paho-mqtt release this module was not written for (run at import)."""
    require_version("paho-mqtt", paho.mqtt.__version__, SUPPORTED_PAHO, module=__name__,
                    relies_on=", ".join([*PAHO_PRIVATE_METHODS, *PAHO_PRIVATE_ATTRIBUTES,
                                         *(f"MQTTMessageInfo.{name}" for name in PAHO_PRIVATE_MESSAGE_INFO_METHODS)]),
                    test="tests/iot_gateway/test_gateway_paho_fast.py")


check_paho_version()


class BufferedSocket:
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

    - a read-buffered socket (see ``BufferedSocket``), whose buffered packets are handled in
      one go rather than one per ``select``;
    - ``on_publish_fast``: a PUBLISH of QoS 0 or 1 without MQTT 5 properties (what meters
      send) goes straight to this handler, without paho's ``Properties`` table, message object
      and topic-filter match. Anything else (properties present, QoS 2, no handler set) takes
      paho's own path to ``on_message``;
    - ``ack_many``: one write for a whole batch's acknowledgements instead of a wake-up of
      the network thread and a ``send`` for each;
    - ``writes_held()``: packets queued by the calling thread inside it (a batch's relay
      commands) wake the network thread once, at the end, instead of once each;
    - a PUBACK of one of our QoS 1 publications (a relay command) without properties is
      settled without paho's ``ReasonCode`` and ``Properties`` objects, unless an
      ``on_publish`` callback wants them.

    Its own attributes start with ``_fast_`` so that they cannot collide with paho's.
    """

    on_publish_fast: FastHandler | None = None
    READ_BURST = 1_000  # packets handled per wake-up at most, so writes (acks) are not starved

    def __init__(self, *args, manual_ack: bool = False, **kwargs):
        super().__init__(*args, manual_ack=manual_ack, **kwargs)
        self._fast_manual_ack = manual_ack  # paho has no public reader for it
        self._fast_mqtt5 = self.protocol == mqtt.MQTTv5
        self._fast_holding: int | None = None  # the thread whose queued packets wait for one wake-up
        self._fast_held = False  # a packet was queued without waking the network thread

    @contextmanager
    def writes_held(self) -> Iterator[None]:
        """Queue the calling thread's packets without waking the network thread for each;
        one wake-up when the block ends. Nested use is part of the outer block."""
        if self._fast_holding == threading.get_ident():
            yield
            return
        self._fast_holding = threading.get_ident()
        try:
            yield
        finally:
            self._fast_holding = None
            if self._fast_held:
                self._fast_held = False
                self._fast_wake()

    def _fast_wake(self) -> None:
        """What paho's ``_packet_queue`` does after queueing, in threaded mode."""
        if self._sockpairW is not None:
            try:
                self._sockpairW.send(mqtt.sockpair_data)
            except BlockingIOError:
                pass
        self._call_socket_register_write()

    def _packet_queue(self, command, packet, mid, qos, info=None):
        if self._fast_holding != threading.get_ident() or self._thread is None:
            return super()._packet_queue(command, packet, mid, qos, info)
        self._out_packet.append({"command": command, "mid": mid, "qos": qos, "pos": 0, "to_process": len(packet),
                                 "packet": packet, "info": info})
        self._fast_held = True
        return mqtt.MQTTErrorCode.MQTT_ERR_SUCCESS

    def _handle_pubackcomp(self, cmd):
        length = self._in_packet["remaining_length"]
        if cmd != "PUBACK" or self.on_publish is not None or not self._fast_mqtt5 or length not in (2, 3):
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
        return BufferedSocket(super()._create_socket())

    def loop_read(self, max_packets: int = 1):
        """paho handles one packet per ``select`` (plus its keepalive bookkeeping); packets
        already in the read buffer are handled here in one go."""
        rc = super().loop_read(max_packets)
        for _ in range(self.READ_BURST):
            sock = self.socket()
            if rc != mqtt.MQTTErrorCode.MQTT_ERR_SUCCESS or sock is None or not sock.pending():
                break
            rc = super().loop_read(max_packets)
        return rc

    def _handle_publish(self):
        handler = self.on_publish_fast
        header = self._in_packet["command"]
        qos = (header & 0x06) >> 1
        packet = self._in_packet["packet"]
        if handler is None or qos == 2 or not self._fast_mqtt5 or len(packet) < 2:
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
        if qos == 1 and not self._fast_manual_ack:
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
        if mids and self._fast_manual_ack:
            self._packet_queue(mqtt.PUBACK, b"".join(_PUBACK.pack(mqtt.PUBACK, 2, mid) for mid in mids), 0, 0)
