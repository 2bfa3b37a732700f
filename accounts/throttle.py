"""Attempts counted per client address in the cache, over a fixed window.

For sign-ups, password-reset requests and failed API token authentications (failed logins are
django-axes'). The window is the login cool-off, so a limit and its message read the same
everywhere. The counter's expiry is kept beside it, so a refusal can say when to come back.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache


@dataclass(frozen=True)
class Limit:
    action: str
    limit: int

    @property
    def window(self) -> int:
        return settings.GRIDCOIN_LOGIN_COOLOFF_MINUTES * 60


def _key(action: str, address: str) -> str:
    return f"throttle:{action}:{address}"


def retry_after(limit: Limit, address: str) -> int:
    """Seconds until ``address`` may try ``limit.action`` again; 0 if it may now."""
    entry = cache.get(_key(limit.action, address))
    if not entry or entry[0] < limit.limit:
        return 0
    return max(1, math.ceil(entry[1] - time.time()))


def record(limit: Limit, address: str) -> None:
    """Count one attempt; the window starts at the first."""
    key = _key(limit.action, address)
    now = time.time()
    entry = cache.get(key)
    if not entry or entry[1] <= now:
        entry = (0, now + limit.window)
    entry = (entry[0] + 1, entry[1])
    cache.set(key, entry, timeout=max(1, math.ceil(entry[1] - now)))


def minutes(seconds: int) -> int:
    return max(1, math.ceil(seconds / 60))


def signup_limit() -> Limit:
    return Limit("signup", settings.GRIDCOIN_SIGNUP_LIMIT)


def password_reset_limit() -> Limit:
    return Limit("password-reset", settings.GRIDCOIN_PASSWORD_RESET_LIMIT)


def api_auth_limit() -> Limit:
    return Limit("api-auth", settings.GRIDCOIN_API_AUTH_FAILURE_LIMIT)
