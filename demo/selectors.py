"""What the pages read of the demo."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth import get_user_model

from .organisations import DEMO_LOGINS, DemoLogin


def demo_logins_shown() -> list[DemoLogin]:
    """The demo logins to list on the home page: those whose users exist, and none at all in
    production, where a user named like a demo login is a real person, not a demo."""
    if settings.PRODUCTION:
        return []
    existing = set(
        get_user_model().objects.filter(username__in=[d.username for d in DEMO_LOGINS])
        .values_list("username", flat=True)
    )
    return [d for d in DEMO_LOGINS if d.username in existing]
