"""Drop a session cookie that no session could have, before the session middleware reads it.

Django unquotes cookie values, so ``sessionid="abc\\000..."`` (plain ASCII on the wire) reaches
the database session store as a key with a NUL byte, which PostgreSQL refuses with an error:
every request carrying it was a 500. Django makes keys from lowercase letters and digits only;
any other cookie names no session, and the request goes on as anonymous.
"""

from __future__ import annotations

import re

from django.conf import settings

SESSION_KEY = re.compile(r"[a-z0-9]{1,64}")


class SessionCookieGuard:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        key = request.COOKIES.get(settings.SESSION_COOKIE_NAME)
        if key is not None and not SESSION_KEY.fullmatch(key):
            del request.COOKIES[settings.SESSION_COOKIE_NAME]
        return self.get_response(request)
