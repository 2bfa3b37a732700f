"""``/ws/ledger/``: signed-in members get a typed event for every sealed block."""

from channels.generic.websocket import AsyncJsonWebsocketConsumer

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
        user = self.scope.get("user")
        if user is None or not user.is_active:
            await self.close(code=4403)
            return
        await self.send_json({"event": message["event"], "payload": message["payload"]})
