"""The demo's staff sign in with a second factor like any staff: each gets an authenticator
device at seed time, and the home page (outside production only) shows its key and current
code next to the login, so a visitor can get through without an authenticator app."""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth import get_user_model
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts import second_factor
from accounts.selectors import is_staff

from .organisations import DEMO_LOGINS

DEVICE_NAME = "Demo authenticator"


@dataclass(frozen=True)
class DemoCode:
    secret: str
    code: str


def second_factors_seed() -> list[str]:
    created = []
    for user in get_user_model().objects.filter(username__in=[d.username for d in DEMO_LOGINS]).order_by("id"):
        if is_staff(user) and not TOTPDevice.objects.filter(user=user, name=DEVICE_NAME).exists():
            second_factor.totp_device_create(user=user, name=DEVICE_NAME)
            created.append(f"authenticator for {user.username}")
    return created


def demo_codes_shown() -> dict[str, DemoCode]:
    """Username → key and current code of the demo staff's authenticators; none in production."""
    if settings.PRODUCTION:
        return {}
    usernames = {d.username for d in DEMO_LOGINS}
    devices = TOTPDevice.objects.filter(name=DEVICE_NAME, confirmed=True).select_related("user")
    return {d.user.username: DemoCode(second_factor.totp_secret(d), second_factor.totp_code_now(d))
            for d in devices if d.user.username in usernames}
