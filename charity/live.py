"""Live progress of a campaign: after a donation, a disbursement or a refund has committed, the
campaign's page listeners (group ``campaign.<slug>``) are told to refresh its progress. Best
effort: the ledger is the truth and a page resyncs when it reconnects."""

from __future__ import annotations

import logging

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

logger = logging.getLogger(__name__)


def campaign_group(slug: str) -> str:
    return f"campaign.{slug}"


def _send(slug: str) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        async_to_sync(layer.group_send)(campaign_group(slug), {"type": "campaign.progress", "campaign": slug})
    except Exception:
        logger.warning("campaign %s: progress broadcast failed", slug, exc_info=True)


def progress_broadcast(slug: str) -> None:
    """Announce ``slug``'s new progress once the current transaction commits (at once outside one)."""
    transaction.on_commit(lambda: _send(slug))
