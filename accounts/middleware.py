"""Staff sign in with a second factor: until their session is verified (``django_otp``), a
staff user reaches only the pages that set one up or check one, and signing out."""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.http import urlencode
from django.utils.translation import gettext as _

from . import selectors

# Paths an unverified staff session may still use (the second-factor pages, signing out,
# static files); matched as prefixes.
OPEN_PREFIXES = ("/accounts/two-factor/", "/accounts/logout/", "/accounts/login/", "/static/")


class SecondFactorRequiredMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest):
        user = getattr(request, "user", None)
        if (user is not None and user.is_authenticated and not user.is_verified()
                and not request.path.startswith(OPEN_PREFIXES) and selectors.is_staff(user)):
            if request.path.startswith("/api/"):
                return JsonResponse({"detail": _("Staff must sign in with a second factor: see "
                                                 "/accounts/two-factor/.")}, status=403)
            return redirect(f"{reverse('accounts:two-factor')}?{urlencode({'next': request.get_full_path()})}")
        return self.get_response(request)
