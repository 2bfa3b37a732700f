"""The one sender of a campaign's live progress: ``/ws/campaigns/<slug>/`` listeners (the
campaign page's bar and figures) hear ``campaign.progress`` with the fresh figures from the
ledger. Services call ``progress_broadcast_on_commit`` inside their transaction, or
``progress_broadcast`` once the change has committed."""

from __future__ import annotations

import logging
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

from ledger.events import push_outage

logger = logging.getLogger(__name__)

PROGRESS_EVENT = "campaign.progress"


def campaign_group(slug: str) -> str:
    return f"campaign.{slug}"


def progress_broadcast(slug: str) -> dict[str, Any] | None:
    """Read the campaign's progress and send it to the page's listeners. Returns what was sent
    (None: no such campaign). Best effort: the ledger is the truth and pages resync on
    reconnect or by polling."""
    from .selectors import progress_for_slug

    payload = progress_for_slug(slug)
    if payload is None:
        return None
    layer = get_channel_layer()
    if layer is None:
        return payload
    try:
        async_to_sync(layer.group_send)(campaign_group(slug),
                                        {"type": "campaign.event", "event": PROGRESS_EVENT, "payload": payload})
    except Exception as exc:
        push_outage.failed(f"{PROGRESS_EVENT} for {slug}", exc)
    else:
        push_outage.delivered()
    return payload


def progress_broadcast_on_commit(slug: str) -> None:
    """Broadcast after the current transaction commits (never figures a rollback undid)."""
    transaction.on_commit(lambda: progress_broadcast(slug))
