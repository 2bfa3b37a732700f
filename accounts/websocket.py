"""Websockets follow the pages' rule: a staff session that has not passed its second factor
connects as anonymous (what a consumer then shows is what anyone may see)."""

from __future__ import annotations

from channels.db import database_sync_to_async
from django.contrib.auth.models import AnonymousUser
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.models import Device

from . import selectors


def _second_factor_missing(user, session) -> bool:
    if not getattr(user, "is_authenticated", False) or not selectors.is_staff(user):
        return False
    persistent_id = session.get(DEVICE_ID_SESSION_KEY) if session is not None else None
    device = Device.from_persistent_id(persistent_id) if persistent_id else None
    return device is None or device.user_id != user.pk or not device.confirmed


class SecondFactorWebsocketMiddleware:
    """Inside channels' AuthMiddlewareStack, around the URL router."""

    def __init__(self, inner):
        self.inner = inner

    async def __call__(self, scope, receive, send):
        user = scope.get("user")
        if user is not None and await database_sync_to_async(_second_factor_missing)(user, scope.get("session")):
            scope = {**scope, "user": AnonymousUser()}
        return await self.inner(scope, receive, send)
