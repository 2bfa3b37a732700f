"""API authentication by scoped token: ``Authorization: Bearer gct_...`` (or ``Token gct_...``).

A missing, malformed, unknown, expired or revoked token is a 401 with a ``Bearer`` challenge;
HTTP basic credentials are refused the same way, not tried. Failed attempts are counted per
client address, and past the limit every token attempt from that address is a 429 with
Retry-After until the window ends. Session-authenticated browser users are not affected:
``TokenHasScope`` only looks at requests authenticated by a token.
"""

from __future__ import annotations

from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import exceptions, status
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.permissions import BasePermission

from . import selectors, services, throttle
from .client_ip import client_ip
from .models import ApiToken
from .scopes import required_scope

CHALLENGE = 'Bearer realm="api"'
KEYWORDS = {b"bearer", b"token"}


class TokenRefused(exceptions.APIException):
    """401 with a challenge. Not an ``AuthenticationFailed``: DRF turns those into 403 when the
    first authentication class (the session's) sends no challenge."""

    status_code = status.HTTP_401_UNAUTHORIZED
    default_detail = gettext_lazy("Invalid, expired or revoked API token.")
    default_code = "authentication_failed"

    def __init__(self, detail=None):
        super().__init__(detail)
        self.auth_header = CHALLENGE


class ApiTokenAuthentication(BaseAuthentication):
    def authenticate(self, request):
        header = get_authorization_header(request).split()
        if not header:
            return None
        keyword = header[0].lower()
        if keyword == b"basic":
            raise TokenRefused(_("HTTP basic authentication is not accepted; send an API token as "
                                 "'Authorization: Bearer gct_...'."))
        if keyword not in KEYWORDS:
            return None
        address = client_ip(request._request)
        limit = throttle.api_auth_limit()
        wait = throttle.retry_after(limit, address)
        if wait:
            raise exceptions.Throttled(wait=wait, detail=_("Too many failed API authentications from this "
                                                           "address."))
        token = None
        if len(header) == 2:
            try:
                token = selectors.api_token_active(header[1].decode("ascii"))
            except UnicodeDecodeError:
                token = None
        if token is None:
            throttle.record(limit, address)
            raise TokenRefused()
        services.api_token_mark_used(token=token)
        return (token.user, token)

    def authenticate_header(self, request):
        return CHALLENGE


class TokenHasScope(BasePermission):
    """A token-authenticated request reaches a view only with the scope the view names for its
    method; a view naming none refuses tokens."""

    message = gettext_lazy("This API token does not have the scope this endpoint needs.")

    def has_permission(self, request, view) -> bool:
        if not isinstance(request.auth, ApiToken):
            return True
        scope = required_scope(view, request.method)
        if scope is None:
            self.message = _("This endpoint does not accept API tokens.")
            return False
        if scope not in request.auth.scopes:
            self.message = _("This API token lacks the %(scope)s scope.") % {"scope": scope}
            return False
        return True


class ApiTokenScheme(OpenApiAuthenticationExtension):
    target_class = "accounts.api_auth.ApiTokenAuthentication"
    name = "tokenAuth"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "gct_...",
            "description": "A scoped API token (created on /accounts/tokens/ or with "
                           "`manage.py api_token create`); it acts as its owner within its scopes.",
        }
