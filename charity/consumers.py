"""``/ws/campaigns/<slug>/``: a campaign's live progress. Public, as the campaign page is:
anyone listening hears ``campaign.progress`` (raised, goal, percent, donors, pool). The current
figures are sent on connect, so a reconnecting page resyncs; later events come from
``charity.live``, the one sender."""

from __future__ import annotations

from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from . import live

EVENTS = frozenset({live.PROGRESS_EVENT})
CLOSE_UNKNOWN_CAMPAIGN = 4404


class CampaignConsumer(AsyncJsonWebsocketConsumer):
    group: str | None = None

    async def connect(self) -> None:
        slug = self.scope["url_route"]["kwargs"]["slug"]
        snapshot = await self._snapshot(slug)
        if snapshot is None:
            await self.close(code=CLOSE_UNKNOWN_CAMPAIGN)
            return
        self.group = live.campaign_group(slug)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()
        await self.send_json({"event": live.PROGRESS_EVENT, "payload": snapshot})

    async def disconnect(self, code: int) -> None:
        if self.group is not None:
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def receive_json(self, content: Any, **kwargs) -> None:
        """Listeners only listen."""

    async def campaign_event(self, message: dict[str, Any]) -> None:
        if message.get("event") in EVENTS:
            await self.send_json({"event": message["event"], "payload": message["payload"]})

    @database_sync_to_async
    def _snapshot(self, slug: str) -> dict[str, Any] | None:
        from .selectors import progress_for_slug

        return progress_for_slug(slug)
