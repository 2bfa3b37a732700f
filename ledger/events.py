"""One sender for typed websocket events about the ledger, and the one place that says when
live pushes (any app's) cannot reach the channel layer."""

from __future__ import annotations

import logging
import threading
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

logger = logging.getLogger(__name__)

LEDGER_GROUP = "ledger"


class _PushOutage:
    """A push is best effort: the ledger has committed and pages resync on reconnect. With the
    channel layer (Redis) away every funding, reading and block would log a traceback, so an
    outage is said once when it starts and once when pushes get through again."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.skipped = 0

    def failed(self, what: str, exc: BaseException) -> None:
        with self._lock:
            self.skipped += 1
            first = self.skipped == 1
        if first:
            logger.warning("live push skipped (%s): the channel layer is unreachable [%s: %s]. The ledger committed; "
                           "further pushes are skipped quietly until it answers.", what, type(exc).__name__, exc)
        else:
            logger.debug("live push skipped (%s)", what, exc_info=exc)

    def delivered(self) -> None:
        if not self.skipped:  # the common case: no lock, nothing to say
            return
        with self._lock:
            skipped, self.skipped = self.skipped, 0
        if skipped:
            logger.info("live pushes resumed: the channel layer answers again (%d skipped)", skipped)


push_outage = _PushOutage()


def send_ledger_event(event: str, payload: dict[str, Any]) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        async_to_sync(layer.group_send)(LEDGER_GROUP, {"type": "ledger.event", "event": event, "payload": payload})
    except Exception as exc:  # a push is best effort; the ledger is the source of truth
        push_outage.failed(event, exc)
    else:
        push_outage.delivered()
