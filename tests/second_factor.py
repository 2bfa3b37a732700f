"""Signing in test clients as staff, who need a second factor.

``client.force_login(user)`` in the tests stands for a completed sign-in, so for staff it also
verifies the session with a confirmed authenticator device (made for the user if they have
none), as signing in with a code would (tests/conftest.py applies this to every test).
``force_login_password_only`` is the sign-in that stops after the password.
"""

from __future__ import annotations

from django.test.client import Client
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.plugins.otp_totp.models import TOTPDevice

force_login_password_only = Client.force_login


def confirmed_device(user) -> TOTPDevice:
    """The user's first confirmed authenticator, made for them (as enrolling would) if none."""
    device = TOTPDevice.objects.filter(user=user, confirmed=True).order_by("id").first()
    if device is None:
        device = TOTPDevice.objects.create(user=user, name="Test authenticator", confirmed=True)
    return device


def verify_second_factor(client: Client, user) -> TOTPDevice:
    device = confirmed_device(user)
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = device.persistent_id
    session.save()
    return device


def force_login(client: Client, user, backend=None) -> None:
    from accounts.selectors import is_staff

    force_login_password_only(client, user, backend)
    if is_staff(user):
        verify_second_factor(client, user)
