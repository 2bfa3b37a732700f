"""HTTP basic authentication that refuses a NUL byte in the credentials.

DRF passes the decoded user id straight to Django's ``authenticate``, whose user lookup then
fails inside PostgreSQL (text cannot hold 0x00): a crafted header was a 500. No user name or
password here can contain NUL, so such credentials are simply wrong.
"""

from __future__ import annotations

from drf_spectacular.authentication import BasicScheme
from rest_framework.authentication import BasicAuthentication
from rest_framework.exceptions import AuthenticationFailed


class NulSafeBasicAuthentication(BasicAuthentication):
    def authenticate_credentials(self, userid, password, request=None):
        if "\x00" in userid or "\x00" in password:
            raise AuthenticationFailed("Invalid username/password.")
        return super().authenticate_credentials(userid, password, request)


class NulSafeBasicScheme(BasicScheme):
    """Documents the class above as the ``basicAuth`` scheme it is (drf-spectacular registers
    extensions when they are defined, and this module is loaded with the authentication classes)."""

    target_class = NulSafeBasicAuthentication
