"""``/ws/ledger/``: signed-in members get a typed event for every sealed block."""

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.contrib.auth import get_user_model

from .events import LEDGER_GROUP


class LedgerConsumer(AsyncJsonWebsocketConsumer):
    async def connect(self) -> None:
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=4401)
            return
        await self.channel_layer.group_add(LEDGER_GROUP, self.channel_name)
        await self.accept()

    async def disconnect(self, code: int) -> None:
        await self.channel_layer.group_discard(LEDGER_GROUP, self.channel_name)

    async def ledger_event(self, message: dict) -> None:
        # Permission is re-checked per event: a member deactivated while connected hears no more.
        if not await self._still_allowed():
            await self.close(code=4403)
            return
        await self.send_json({"event": message["event"], "payload": message["payload"]})

    @database_sync_to_async
    def _still_allowed(self) -> bool:
        user = self.scope.get("user")
        return user is not None and get_user_model().objects.filter(pk=user.pk, is_active=True).exists()
