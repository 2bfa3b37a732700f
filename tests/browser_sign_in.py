"""Signing in through the login page in browser tests, second factor included.

Staff need an authenticator code after their password: the helper gives the user a confirmed
TOTP device when they have none (as enrolling would) and types the code the device would show.
A code is accepted once, so a second sign-in within the same 30 s uses the next step's code,
which the server accepts within its one step of drift.
"""

from __future__ import annotations

import re
from urllib.parse import quote


def totp_code_for(user) -> str:
    from django_otp.oath import TOTP

    from tests.second_factor import confirmed_device

    device = confirmed_device(user)
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    if device.last_t is not None and totp.t() <= device.last_t:
        totp.time = totp.time + device.step
    return f"{totp.token():0{device.digits}d}"


def sign_in(page, base: str, username: str, password: str, *, next_path: str | None = None) -> None:
    """Sign in on the login page and wait until the browser has left the sign-in pages."""
    from django.contrib.auth import get_user_model

    from accounts.selectors import is_staff

    user = get_user_model().objects.get(username=username)
    code = totp_code_for(user) if is_staff(user) else None
    page.goto(f"{base}/accounts/login/" + (f"?next={quote(next_path)}" if next_path else ""))
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("main button[type=submit]")
    if code is not None:
        page.wait_for_url(re.compile(r".*/accounts/login/verify/.*"))
        page.fill("#id_code", code)
        page.click("main button[type=submit]")
    page.wait_for_url(lambda url: "/accounts/login" not in url)
