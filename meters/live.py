"""One place that announces a device's new state after anything changed it (funding, a burn,
a window settling): typed websocket events to ``/ws/devices/<public_id>/`` listeners and the
relay command to the meter, and ``signals.devices_observed`` for other apps (notifications).
Call ``device_state_changed`` after the change has committed (``transaction.on_commit``)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

from ledger.events import push_outage

from .channel_groups import listened_groups
from .signals import DeviceObservation, devices_observed

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
    except Exception as exc:  # best effort: the ledger is the truth, pages resync on reconnect
        push_outage.failed(f"{event} for {public_id}", exc)
    else:
        push_outage.delivered()


def devices_state_changed(consumption_by_id: dict[str, dict[str, Any] | None]) -> int:
    """``device_state_changed`` for many devices at once (a gateway batch): their states in
    one query and every websocket event through one trip into the channel layer.
    Returns how many devices were announced."""
    from .selectors import live_states

    states = live_states(list(consumption_by_id))
    if not states:
        return 0
    messages: list[tuple[str, str, dict[str, Any]]] = []
    relays: list[tuple[str, str]] = []
    for state in states:
        public_id = state.public_id
        messages.append((public_id, "device.state", _state_payload(public_id, state)))
        consumption = consumption_by_id.get(public_id)
        if consumption is not None:
            messages.append((public_id, "device.consumption", {"public_id": public_id, **consumption}))
        relays.append((public_id, state.relay))
    _send_many(messages)
    _observed([DeviceObservation(s.public_id, s.spendable, s.relay, *_register(consumption_by_id.get(s.public_id)))
               for s in states])
    for public_id, relay in relays:
        for publish in list(_relay_publishers):
            try:
                publish(public_id, relay)
            except Exception:
                logger.warning("relay command for %s failed", public_id, exc_info=True)
    return len(states)


def _register(consumption: dict[str, Any] | None) -> tuple[int | None, datetime | None]:
    """The import register and its time, when the change came with a reading."""
    if not consumption or not isinstance(consumption.get("import_wh"), int):
        return None, None
    try:
        return consumption["import_wh"], datetime.fromisoformat(consumption["timestamp"])
    except (KeyError, TypeError, ValueError):
        return None, None


def _observed(observations: list[DeviceObservation]) -> None:
    for receiver, result in devices_observed.send_robust(sender=DeviceObservation, observations=observations):
        if isinstance(result, Exception):  # best effort: the next observation of the device catches up
            logger.warning("%s failed on %d device observations", receiver, len(observations), exc_info=result)


def _state_payload(public_id: str, state) -> dict[str, Any]:
    return {"public_id": public_id, "relay": state.relay, "balance_wh": state.balance,
            "reserved_wh": state.reserved, "spendable_wh": state.spendable}


def _send_many(messages: list[tuple[str, str, dict[str, Any]]]) -> None:
    layer = get_channel_layer()
    if layer is None or not messages:
        return
    # Only groups someone listens to: a gateway batch touches thousands of devices, and a
    # group_send costs Redis round trips even for an empty group.
    listened = listened_groups(layer, {device_group(public_id) for public_id, _, _ in messages})
    if listened is not None:
        messages = [m for m in messages if device_group(m[0]) in listened]
        if not messages:
            return

    async def send_all() -> None:
        for public_id, event, payload in messages:
            await layer.group_send(device_group(public_id), {"type": "device.event", "event": event,
                                                             "payload": payload})

    try:
        async_to_sync(send_all)()
    except Exception as exc:  # best effort: the ledger is the truth, pages resync on reconnect
        push_outage.failed(f"{len(messages)} device events", exc)
    else:
        push_outage.delivered()


def device_state_changed(public_id: str, *, consumption: dict[str, Any] | None = None) -> dict[str, Any] | None:
    """Read the device's state from the ledger, push it to listeners and command its relay.
    ``consumption`` (the latest reading's figures) goes only to listeners entitled to it."""
    from .selectors import device_by_public_id, device_state

    device = device_by_public_id(public_id)
    if device is None:
        return None
    state = device_state(device)
    payload = _state_payload(public_id, state)
    send_device_event(public_id, "device.state", payload)
    _observed([DeviceObservation(public_id, state.spendable, state.relay, *_register(consumption))])
    if consumption is not None:
        send_device_event(public_id, "device.consumption", {"public_id": public_id, **consumption})
    for publish in list(_relay_publishers):
        try:
            publish(public_id, state.relay)
        except Exception:
            logger.warning("relay command for %s failed", public_id, exc_info=True)
    return payload
