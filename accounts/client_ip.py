"""The client's address, for limits kept per address.

REMOTE_ADDR, unless the site is configured to sit behind a proxy: then (and only then) the
header that proxy sets (``GRIDCOIN_CLIENT_IP_HEADER``, e.g. ``X-Forwarded-For``), read from its
right end, where the trusted proxies appended what they saw. Trusting the header without a
proxy in front would let every caller pick a fresh address per guess.
"""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest


def client_ip(request: HttpRequest) -> str:
    remote = request.META.get("REMOTE_ADDR") or "unknown"
    header = settings.GRIDCOIN_CLIENT_IP_HEADER
    if not header:
        return remote
    value = request.META.get("HTTP_" + header.upper().replace("-", "_"), "")
    hops = [hop.strip() for hop in value.split(",") if hop.strip()]
    count = max(settings.GRIDCOIN_TRUSTED_PROXY_COUNT, 1)
    # The n-th address from the right was added by the outermost trusted proxy; anything left of
    # it came from the client and may be forged.
    if len(hops) >= count:
        return hops[-count]
    return remote
