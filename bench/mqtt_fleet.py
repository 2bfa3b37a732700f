"""The benchmark's load generator: a fleet's QoS 1 MQTT publishes at little CPU cost.

Real meters are separate devices; in the benchmark the whole fleet runs in one process on the
same two cores as the gateway, PostgreSQL and the broker, so every microsecond it spends is
taken from the system under test. paho-mqtt spends far more Python per QoS 1 publish than the
gateway spends per reading's network handling (packet objects, in-flight bookkeeping, a network thread handling each PUBACK). This publisher
speaks the same MQTT 3.1.1 wire protocol with pre-encoded packets written in large chunks and
PUBACKs counted by a reader thread, so the broker and the gateway see exactly what a fleet of
paho clients would send. It is for benchmarks only.
"""

from __future__ import annotations

import socket
import struct
import threading
import time
import uuid
from collections.abc import Callable


def _remaining_length(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n % 128, n // 128
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _string(text: str) -> bytes:
    data = text.encode()
    return struct.pack("!H", len(data)) + data


def publish_packet(topic: str, payload: bytes, packet_id: int) -> bytes:
    """PUBLISH, QoS 1, not retained."""
    body = _string(topic) + struct.pack("!H", packet_id) + payload
    return b"\x32" + _remaining_length(len(body)) + body


def publish_all(host: str, port: int, messages: list[tuple[str, bytes]], *, chunk: int = 64 * 1024,
                timeout: float = 600.0, window: int = 0, consumed: Callable[[], int] | None = None) -> None:
    """Publish every (topic, payload) at QoS 1 on one connection and return once the broker
    acknowledged them all. With ``window`` and ``consumed`` (how many the subscribers have
    taken so far), at most ``window`` messages are ahead of them: a broker queues only so
    much for a subscriber (Mosquitto drops beyond about 14,000 unacknowledged readings of
    this size), as a real fleet, publishing at its pace, never asks it to."""
    sock = socket.create_connection((host, port), timeout=timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    connect = b"\x00\x04MQTT\x04\x02\x00\x3c" + _string(f"bench-fleet-{uuid.uuid4().hex[:12]}")
    sock.sendall(b"\x10" + _remaining_length(len(connect)) + connect)
    connack = _read_exactly(sock, 4)
    if connack[0] != 0x20 or connack[3] != 0:
        raise ConnectionError(f"the broker refused the fleet's connection: {connack!r}")
    acked = threading.Event()
    expected = len(messages)
    errors: list[BaseException] = []

    def read_acks() -> None:
        count, buffer = 0, b""
        try:
            while count < expected:
                data = sock.recv(65536)
                if not data:
                    raise ConnectionError("the broker closed the fleet's connection")
                buffer += data
                while len(buffer) >= 4:  # PUBACK: 0x40 0x02 <packet id>
                    if buffer[0] != 0x40:
                        raise ConnectionError(f"unexpected packet {buffer[:4]!r}")
                    count += 1
                    buffer = buffer[4:]
        except BaseException as exc:  # noqa: BLE001 - reported to the caller
            errors.append(exc)
        finally:
            acked.set()

    reader = threading.Thread(target=read_acks, daemon=True)
    reader.start()
    pending = bytearray()
    for n, (topic, payload) in enumerate(messages):
        pending += publish_packet(topic, payload, n % 65535 + 1)
        if len(pending) >= chunk:
            while window and consumed is not None and n - consumed() > window:
                time.sleep(0.005)
            sock.sendall(pending)
            pending.clear()
    if pending:
        sock.sendall(pending)
    acked.wait(timeout)
    try:
        sock.sendall(b"\xe0\x00")  # DISCONNECT
    finally:
        sock.close()
    if errors:
        raise errors[0]


def _read_exactly(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        more = sock.recv(n - len(data))
        if not more:
            raise ConnectionError("the broker closed the connection")
        data += more
    return data
