"""The MQTT gateway: readings in, relay commands out, meters' online/offline states.

Exactly once, end to end: the gateway keeps a persistent MQTT 5 session (clean start off, a
session expiry) and acknowledges each message (manual PUBACK) only after the database
transaction of its batch committed. A gateway killed at any moment gets the unacknowledged
messages again on restart; the ledger's idempotency key ``reading:<counter>`` makes a reading
applied before the kill a replay. A lost message loses no energy either: registers are
cumulative, so the next reading covers it.

``GatewayLoop.step()`` does one batch and returns whether it did work (tests call it).

Several workers (``run_gateway --workers N``) share the load through an MQTT 5 shared
subscription (``$share/<group>/...``): the broker hands each message to one member, each
member keeps its own persistent session (``<client id>-<n>``), so the exactly-once argument
above holds per worker. Two readings of one meter may then be applied by different workers; the
ledger serialises them on the meter's registers, and one that arrives after a later counter is
refused as older (its energy is in the later cumulative reading, so none is lost).

Relay commands are published when they change what the meter was told. Each worker also
subscribes to the relay topics (not to its own publications, and not to the retained backlog),
so it knows every command published since it connected, whoever published it (another worker,
the web process after a funding, the scheduler), and publishes only where the device's state
differs from the last one: a meter's steady stream of readings costs no relay traffic, and a
command that went stale in a race between publishers is corrected at the device's next
reading. A device with no command since the worker connected gets one at its next reading.
The retained backlog is left out on purpose: one retained command per meter, replayed at
once to a connecting worker, overran the broker's queue for it (Mosquitto's default 1,000
messages) and the broker dropped the readings queued behind them.
"""

from __future__ import annotations

import contextlib
import json
import logging
import queue
import threading
import time
from dataclasses import dataclass

import paho.mqtt.client as mqtt
from django.db import close_old_connections
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

from ledger.db import pool_drop_dead_connections
from meters import live

from . import relay
from .mqtt import (
    OFFLINE,
    ONLINE,
    READINGS_FILTER,
    RELAY_FILTER,
    STATUS_FILTER,
    address,
    connect_properties,
    make_client,
    meter_of,
    meter_topic,
)
from .paho_fast import BufferedClient
from .services import meter_statuses_record, readings_ingest

logger = logging.getLogger(__name__)

SESSION_EXPIRY = 7 * 24 * 3600  # the broker keeps our subscriptions and unacked messages a week
RECEIVE_MAXIMUM = 65_535  # let the broker send whole batches before we acknowledge any


@dataclass(frozen=True)
class Received:
    mid: int
    qos: int
    topic: str
    payload: bytes


class GatewayLoop:
    def __init__(self, *, url: str, client_id: str = "gridcoin-gateway", batch_size: int = 1000,
                 batch_timeout: float = 0.05, idle_wait: float = 0.5, meters: list[str] | None = None,
                 share: str | None = None):
        self.url = url
        self.meters = meters  # serve only these meter ids (default: all)
        self.share = share  # a shared-subscription group: the broker spreads messages over its members
        self.client_id = client_id
        self.batch_size = batch_size
        self.batch_timeout = batch_timeout
        self.idle_wait = idle_wait
        self.inbox: queue.SimpleQueue[Received] = queue.SimpleQueue()
        self.pending: list[Received] = []  # a batch whose commit failed: retried by the next step
        self.subscribed = threading.Event()
        self.stopped = threading.Event()
        self.client: BufferedClient | None = None
        # public id → the last relay command published for it since we connected
        self.relay_known: dict[str, str] = {}
        self.ingested = 0  # readings committed (any outcome), for benchmarks and logs

    # --- connection -----------------------------------------------------------------------

    def start(self, timeout: float = 10.0) -> GatewayLoop:
        client: BufferedClient = make_client(self.url, client_id=self.client_id, manual_ack=True,
                                             client_class=BufferedClient)  # type: ignore[assignment]
        # No in-flight cap for its relay commands: with a cap paho rescans every unacknowledged
        # message on each PUBACK, quadratic in a batch's relay commands.
        client.max_inflight_messages_set(0)
        client.on_connect = self._on_connect
        client.on_message = self._on_message
        client.on_publish_fast = self._on_publish
        client.on_disconnect = self._on_disconnect
        host, port = address(client)
        client.connect(host, port, keepalive=30, clean_start=False,
                       properties=connect_properties(session_expiry=SESSION_EXPIRY, receive_maximum=RECEIVE_MAXIMUM))
        self.client = client
        client.loop_start()
        if not self.subscribed.wait(timeout):
            self.close()
            raise ConnectionError(f"no subscription at {host}:{port} within {timeout} s")
        if relay.default_publisher_if_any() is not None:  # one connection per process is enough
            live.relay_publisher_unregister(relay.default_publisher_if_any())
        live.relay_publisher_register(self.publish_relay)
        return self

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            logger.error("gateway could not connect: %s", reason_code)
            return
        logger.info("gateway connected (session present: %s)", flags.session_present)
        if self.meters:
            filters = [meter_topic(m, leaf) for m in self.meters for leaf in ("readings", "status")]
        else:
            filters = [READINGS_FILTER, STATUS_FILTER]
        if self.share:
            filters = [f"$share/{self.share}/{f}" for f in filters]
        # Every worker watches the relay commands others publish from now on (see above). A
        # new connection starts from nothing: a restarted broker may have lost its retained ones.
        self.relay_known.clear()
        relays = [meter_topic(m, "relay") for m in self.meters] if self.meters else [RELAY_FILTER]
        watch = SubscribeOptions(qos=0, noLocal=True, retainHandling=SubscribeOptions.RETAIN_DO_NOT_SEND)
        client.subscribe([(f, SubscribeOptions(qos=1)) for f in filters] + [(f, watch) for f in relays])
        self.subscribed.set()

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        if not self.stopped.is_set():
            logger.warning("gateway disconnected (%s); paho reconnects", reason_code)

    def _on_message(self, client, userdata, message: mqtt.MQTTMessage) -> None:
        self._on_publish(message.mid, message.qos, message.retain, message.topic, message.payload)

    def _on_publish(self, mid: int, qos: int, retain: bool, topic: str, payload: bytes) -> None:
        if topic.endswith("/relay"):
            where = meter_of(topic)
            if where is not None:
                command = payload.decode(errors="replace").strip().lower()
                if command:
                    self.relay_known[where[0]] = command
                else:  # an empty retained message clears the topic
                    self.relay_known.pop(where[0], None)
            return
        self.inbox.put(Received(mid, qos, topic, payload))

    def publish_relay(self, public_id: str, relay: str) -> None:
        """Relay command to the meter, retained so a meter that (re)connects learns it; not
        published when it is the last command the meter was given."""
        if self.client is not None and self.relay_known.get(public_id) != relay:
            self.relay_known[public_id] = relay
            self.client.publish(meter_topic(public_id, "relay"), relay, qos=1, retain=True)

    def close(self, *, end_session: bool = False) -> None:
        """Disconnect; the broker keeps the session (and queues readings for the next start)
        unless ``end_session``."""
        self.stopped.set()
        live.relay_publisher_unregister(self.publish_relay)
        if self.client is not None:
            props = None
            if end_session:
                props = Properties(PacketTypes.DISCONNECT)
                props.SessionExpiryInterval = 0
            self.client.disconnect(properties=props)
            self.client.loop_stop()

    # --- the loop -------------------------------------------------------------------------

    def _collect(self) -> list[Received]:
        try:
            first = self.inbox.get(timeout=self.idle_wait)
        except queue.Empty:
            return []
        batch = [first]
        deadline = time.monotonic() + self.batch_timeout
        while len(batch) < self.batch_size:
            try:
                batch.append(self.inbox.get_nowait())
                continue
            except queue.Empty:
                pass
            left = deadline - time.monotonic()
            if left <= 0:
                break
            try:
                batch.append(self.inbox.get(timeout=left))
            except queue.Empty:
                break
        return batch

    def step(self) -> bool:
        """Commit one batch of received messages, then acknowledge them. Returns whether
        there was anything to do. A database failure leaves the batch pending (unacked) for
        the next step."""
        batch = self.pending or self._collect()
        if not batch:
            return False
        self.pending = batch
        readings, undecodable, statuses = decode_batch(batch)
        close_old_connections()
        # The batch's relay commands (published after its commit) and its acknowledgements
        # leave in one wake-up of the network thread.
        with self._writes_held():
            if readings or undecodable:
                readings_ingest(readings, received_via="mqtt", undecodable=undecodable)
            if statuses:
                meter_statuses_record(statuses)
            self.pending = []
            self.ingested += len(readings) + len(undecodable)
            logger.info("%s committed %d readings", self.client_id, len(readings) + len(undecodable))
            if self.client is not None:
                self.client.ack_many((message.mid, message.qos) for message in batch)
        return True

    def _writes_held(self):
        return self.client.writes_held() if self.client is not None else contextlib.nullcontext()

    def run(self) -> None:
        while not self.stopped.is_set():
            try:
                self.step()
            except Exception as exc:
                logger.exception("gateway batch failed; retrying")
                close_old_connections()
                pool_drop_dead_connections(exc)  # a restarted database: the retry draws a live connection
                time.sleep(1.0)

    def stop(self) -> None:
        self.stopped.set()


def decode_batch(batch: list[Received]) -> tuple[list[dict], list[tuple[str, str]], dict[str, bool]]:
    """Split a batch into reading messages, undecodable readings (meter id, reason) and the
    latest status per meter. A reading's meter id comes from its topic."""
    readings: list[dict] = []
    undecodable: list[tuple[str, str]] = []
    statuses: dict[str, bool] = {}
    for message in batch:
        where = meter_of(message.topic)
        if where is None:
            continue
        meter, leaf = where
        if leaf == "status":
            text = message.payload.decode(errors="replace").strip().lower()
            if text.startswith("{"):
                try:
                    text = str(json.loads(text).get("status", "")).lower()
                except (ValueError, AttributeError):
                    text = ""
            if text in (ONLINE, OFFLINE):
                statuses[meter] = text == ONLINE
            continue
        if leaf != "readings":
            continue
        try:
            body = json.loads(message.payload)
        except (ValueError, UnicodeDecodeError) as exc:
            undecodable.append((meter, f"the payload is not JSON: {exc}"))
            continue
        if isinstance(body, dict):
            claimed = body.setdefault("meter", meter)
            if claimed != meter:
                undecodable.append((meter, f"a reading of meter {claimed!r} was published on {meter}'s topic"))
                continue
        readings.append(body)
    return readings, undecodable, statuses
