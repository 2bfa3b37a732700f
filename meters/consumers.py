"""``/ws/devices/<public_id>/``: live state of one device.

Anyone may listen to an existing device's public state ("device.state": relay, balances); the
consumption figures of its readings ("device.consumption") go only to members of the owner
organisation and utility staff, and that is re-checked for every event (a member removed or a
user deactivated while connected hears no more). Events come from ``meters.live``, the one
sender; a listener gets the current state on connect, so a reconnecting page resyncs."""

from __future__ import annotations

from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.contrib.auth import get_user_model
from django.db.models import Q

from accounts.models import Membership
from ledger.models import OrgType

from . import live
from .selectors import device_by_public_id, device_state

PUBLIC_EVENTS = frozenset({"device.state"})
PRIVATE_EVENTS = frozenset({"device.consumption"})

CLOSE_UNKNOWN_DEVICE = 4404


def may_see_consumption(user, device) -> bool:
    """Readings are private to the device's owner organisation and the utility."""
    if user is None or not user.is_authenticated:
        return False
    return Membership.objects.filter(user_id=user.pk, user__is_active=True).filter(
        Q(organisation_id=device.organisation_id) | Q(organisation__org_type=OrgType.UTILITY)).exists()


class DeviceConsumer(AsyncJsonWebsocketConsumer):
    group: str | None = None

    async def connect(self) -> None:
        public_id = self.scope["url_route"]["kwargs"]["public_id"]
        snapshot = await self._snapshot(public_id)
        if snapshot is None:
            await self.close(code=CLOSE_UNKNOWN_DEVICE)
            return
        self.public_id = public_id
        self.group = live.device_group(public_id)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()
        await self.send_json({"event": "device.state", "payload": snapshot})

    async def disconnect(self, code: int) -> None:
        if self.group is not None:
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def device_event(self, message: dict[str, Any]) -> None:
        event = message.get("event")
        if event in PUBLIC_EVENTS or event in PRIVATE_EVENTS and await self._entitled():
            await self.send_json({"event": event, "payload": message["payload"]})
        # anything else (or a private event for a stranger) is dropped silently

    @database_sync_to_async
    def _snapshot(self, public_id: str) -> dict[str, Any] | None:
        device = device_by_public_id(public_id)
        if device is None:
            return None
        self.device_pk = device.pk
        state = device_state(device)
        return {"public_id": public_id, "relay": state.relay, "balance_wh": state.balance,
                "reserved_wh": state.reserved, "spendable_wh": state.spendable}

    @database_sync_to_async
    def _entitled(self) -> bool:
        # Per event, from the database: the session's user object may be stale.
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            return False
        device = device_by_public_id(self.public_id)
        if device is None:
            return False
        fresh = get_user_model().objects.filter(pk=user.pk, is_active=True).first()
        return fresh is not None and may_see_consumption(fresh, device)
