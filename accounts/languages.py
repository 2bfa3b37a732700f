"""The language a signed-in user chose, applied wherever they sign in.

Anonymous visitors get Django's own order (the language cookie the switcher sets, then the
browser's Accept-Language). A signed-in user's choice is on their profile and wins over both, on
every request, so choosing हिन्दी on one phone is what they see after signing in on another.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.signals import user_logged_in
from django.http import HttpRequest, HttpResponse
from django.utils import translation

from .models import Profile


def stored_language(user) -> str:
    """The language on ``user``'s profile, or "" when they never chose one."""
    if user is None or not user.is_authenticated:
        return ""
    language = Profile.objects.filter(user_id=user.pk).values_list("language", flat=True).first() or ""
    return language if language in dict(settings.LANGUAGES) else ""


def set_language_cookie(response: HttpResponse, language: str) -> None:
    response.set_cookie(
        settings.LANGUAGE_COOKIE_NAME, language,
        max_age=settings.LANGUAGE_COOKIE_AGE, path=settings.LANGUAGE_COOKIE_PATH,
        domain=settings.LANGUAGE_COOKIE_DOMAIN, secure=settings.LANGUAGE_COOKIE_SECURE,
        httponly=settings.LANGUAGE_COOKIE_HTTPONLY, samesite=settings.LANGUAGE_COOKIE_SAMESITE,
    )


class UserLanguageMiddleware:
    """After ``LocaleMiddleware`` and authentication: a signed-in user's stored language replaces
    whatever the request asked for, and the language cookie is brought in line with it, so it
    still applies after they sign out."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = getattr(request, "user", None)
        user_id = user.pk if user is not None and user.is_authenticated else None
        language = stored_language(user) if user_id is not None else ""
        if language:
            translation.activate(language)
            request.LANGUAGE_CODE = translation.get_language()
        response = self.get_response(request)
        if settings.LANGUAGE_COOKIE_NAME in response.cookies:  # the switcher has just set it
            return response
        after = getattr(request, "user", None)
        if after is not None and after.is_authenticated and after.pk != user_id:  # signed in just now
            language = stored_language(after)
        elif after is None or not after.is_authenticated:
            language = ""
        if language and request.COOKIES.get(settings.LANGUAGE_COOKIE_NAME) != language:
            set_language_cookie(response, language)
        return response


def adopt_language_at_login(sender, request: HttpRequest | None, user, **kwargs) -> None:
    """A user who picked a language before signing in (or signing up) keeps it: it becomes
    their stored choice unless they already have one."""
    from . import services

    if request is None or stored_language(user):
        return
    chosen = request.COOKIES.get(settings.LANGUAGE_COOKIE_NAME, "")
    if chosen in dict(settings.LANGUAGES):
        services.profile_language_set(user=user, language=chosen)


def connect_signals() -> None:
    user_logged_in.connect(adopt_language_at_login, dispatch_uid="accounts.adopt_language_at_login")
