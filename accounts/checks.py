"""A deployment check: in production, behind a reverse proxy, per-address limits need the
proxy's client-address header, or every client shares the proxy's address."""

from django.conf import settings
from django.core import checks


@checks.register(checks.Tags.security, deploy=True)
def client_address_header(app_configs, **kwargs):
    if settings.PRODUCTION and not settings.GRIDCOIN_CLIENT_IP_HEADER:
        return [checks.Warning(
            "GRIDCOIN_CLIENT_IP_HEADER is not set: login lockouts and rate limits count per REMOTE_ADDR.",
            hint="Behind a reverse proxy every client has the proxy's address, so one guesser locks everyone "
                 "out: set GRIDCOIN_CLIENT_IP_HEADER=X-Forwarded-For (see docs/operations.md).",
            id="gridcoin.W001",
        )]
    return []
