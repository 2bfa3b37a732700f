"""One place that announces a device's new state after anything changed it (funding, a burn,
a window settling): typed websocket events to ``/ws/devices/<public_id>/`` listeners and the
relay command to the meter. Call ``device_state_changed`` after the change has committed
(``transaction.on_commit``)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

logger = logging.getLogger(__name__)

RelayPublisher = Callable[[str, str], None]  # (public id, "on" | "off")
_relay_publishers: list[RelayPublisher] = []


def device_group(public_id: str) -> str:
    return f"device.{public_id}"


def relay_publisher_register(publisher: RelayPublisher) -> None:
    """The gateway registers how relay commands reach meters (MQTT, retained); the embedded
    fleet registers its in-process meters."""
    if publisher not in _relay_publishers:
        _relay_publishers.append(publisher)


def relay_publisher_unregister(publisher: RelayPublisher) -> None:
    if publisher in _relay_publishers:
        _relay_publishers.remove(publisher)


def send_device_event(public_id: str, event: str, payload: dict[str, Any]) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        async_to_sync(layer.group_send)(device_group(public_id),
                                        {"type": "device.event", "event": event, "payload": payload})
    except Exception:  # best effort: the ledger is the truth, pages resync on reconnect
        logger.warning("could not push %s for %s", event, public_id, exc_info=True)


def device_state_changed(public_id: str, *, consumption: dict[str, Any] | None = None) -> dict[str, Any] | None:
    """Read the device's state from the ledger, push it to listeners and command its relay.
    ``consumption`` (the latest reading's figures) goes only to listeners entitled to it."""
    from .selectors import device_by_public_id, device_state

    device = device_by_public_id(public_id)
    if device is None:
        return None
    state = device_state(device)
    payload = {"public_id": public_id, "relay": state.relay, "balance_wh": state.balance, "reserved_wh": state.reserved,
               "spendable_wh": state.spendable}
    send_device_event(public_id, "device.state", payload)
    if consumption is not None:
        send_device_event(public_id, "device.consumption", {"public_id": public_id, **consumption})
    for publish in list(_relay_publishers):
        try:
            publish(public_id, state.relay)
        except Exception:
            logger.warning("relay command for %s failed", public_id, exc_info=True)
    return payload
