"""One sender for typed websocket events about the ledger."""

from __future__ import annotations

import logging
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

logger = logging.getLogger(__name__)

LEDGER_GROUP = "ledger"


def send_ledger_event(event: str, payload: dict[str, Any]) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        async_to_sync(layer.group_send)(LEDGER_GROUP, {"type": "ledger.event", "event": event, "payload": payload})
    except Exception:  # a push is best effort; the ledger is the source of truth
        logger.warning("could not push %s to websocket listeners", event, exc_info=True)
