"""A lean request path for machine-to-machine endpoints (the bank and Stripe webhooks).

A webhook has no browser behind it: static files, sessions, CSRF, authentication, messages and
htmx have nothing to do on its request, yet together they cost a delivery more CPU than its
HMAC check. ``LeanPathMiddleware`` comes first in ``settings.MIDDLEWARE``; a request under
``settings.LEAN_PATH_PREFIXES`` whose path resolves to a view marked with ``lean_request`` is
answered by a second middleware chain built from ``settings.LEAN_MIDDLEWARE`` (security,
common, clickjacking: the same response headers as any other page); every other request goes
on through the full stack, untouched.

Only views that are ``csrf_exempt`` may be marked (``lean_request`` refuses others), so leaving
the CSRF middleware out can never drop a check. A path that does not resolve (a 404, a missing
slash) takes the full stack, so its answer (APPEND_SLASH redirect, 404 page) is unchanged.

The second chain is built with Django's documented middleware protocol (a factory called with
the next ``get_response``; ``MiddlewareNotUsed``), and its innermost step calls the resolved view
as Django does (``resolver_match`` set, async views through asgiref, deferred rendering). It
runs no ``process_view``, ``process_exception`` or ``process_template_response`` hooks and no
``ATOMIC_REQUESTS`` transaction: middleware with such hooks and databases with that setting are
refused when it starts. Under ASGI the whole chain runs in one hop to the sync thread instead of
one per middleware method. The one undocumented Django function it uses is
``convert_exception_to_response``, the wrapper Django puts around every middleware so that an
exception becomes the same 404, 403 or 500 response (security headers included) as on the full
stack; importing this module therefore refuses a Django release it was not written for, and
``tests/payments/test_payments_lean_path.py`` checks that function's behaviour.
"""

from __future__ import annotations

from collections.abc import Callable

import django
from asgiref.sync import async_to_sync, iscoroutinefunction, markcoroutinefunction, sync_to_async
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured, MiddlewareNotUsed
from django.core.handlers.exception import convert_exception_to_response
from django.http import HttpRequest, HttpResponseBase
from django.urls import Resolver404, resolve
from django.utils.module_loading import import_string

from gridcoin.library_versions import require_version

SUPPORTED_DJANGO = ("5.2",)
LEAN_ATTRIBUTE = "lean_request"
HOOKS = ("process_view", "process_exception", "process_template_response")


def check_django_version() -> None:
    """Refuse a Django release this module was not written for (run at import)."""
    require_version("Django", django.__version__, SUPPORTED_DJANGO, module=__name__,
                    relies_on="django.core.handlers.exception.convert_exception_to_response",
                    test="tests/payments/test_payments_lean_path.py")


check_django_version()


def lean_request(view: Callable) -> Callable:
    """Serve ``view`` through settings.LEAN_MIDDLEWARE only (see module docstring)."""
    if not getattr(view, "csrf_exempt", False):
        raise ImproperlyConfigured(f"{view.__qualname__} must be csrf_exempt to skip the CSRF middleware")
    setattr(view, LEAN_ATTRIBUTE, True)
    return view


def _call_view(request: HttpRequest) -> HttpResponseBase:
    """The innermost step: the view already resolved into ``request.resolver_match``."""
    match = request.resolver_match
    assert match is not None  # set by LeanPathMiddleware before the chain runs
    view = match.func
    if iscoroutinefunction(view):
        view = async_to_sync(view)
    response = view(request, *match.args, **match.kwargs)
    if response is None:
        raise ValueError(f"The view {match.func.__module__}.{match.func.__qualname__} didn't return an "
                         f"HttpResponse object. It returned None instead.")
    render = getattr(response, "render", None)
    if callable(render):  # a TemplateResponse renders now, as the full stack does
        response = render()
    return response


def lean_chain(middleware: list[str]) -> Callable[[HttpRequest], HttpResponseBase]:
    """The sync chain of ``middleware`` (outermost first) around the view."""
    handler = convert_exception_to_response(_call_view)
    for path in reversed(middleware):
        factory = import_string(path)
        if not getattr(factory, "sync_capable", True):
            raise ImproperlyConfigured(f"{path} in LEAN_MIDDLEWARE cannot run synchronously, as the lean path does")
        try:
            instance = factory(handler)
        except MiddlewareNotUsed:
            continue
        hooks = [hook for hook in HOOKS if hasattr(instance, hook)]
        if hooks:
            raise ImproperlyConfigured(f"{path} in LEAN_MIDDLEWARE has {', '.join(hooks)}, which the lean path "
                                       f"does not run; leave it out of LEAN_MIDDLEWARE")
        handler = convert_exception_to_response(instance)
    return handler


class LeanPathMiddleware:
    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable) -> None:
        atomic = [alias for alias, db in settings.DATABASES.items() if db.get("ATOMIC_REQUESTS")]
        if atomic:
            raise ImproperlyConfigured(f"the lean path opens no ATOMIC_REQUESTS transaction, but databases "
                                       f"{', '.join(atomic)} ask for one")
        self.get_response = get_response
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)
        self.prefixes = tuple(getattr(settings, "LEAN_PATH_PREFIXES", ()))
        self.lean = lean_chain(list(settings.LEAN_MIDDLEWARE))
        self.lean_async = sync_to_async(self.lean, thread_sensitive=True)

    def _lean_match(self, request: HttpRequest):
        path = request.path_info
        if not path.startswith(self.prefixes):
            return None
        try:
            # The URLconf named, not None: resolve() would look it up in a context-local first.
            match = resolve(path, getattr(request, "urlconf", None) or settings.ROOT_URLCONF)
        except Resolver404:
            return None
        return match if getattr(match.func, LEAN_ATTRIBUTE, False) else None

    def __call__(self, request: HttpRequest):
        if self.is_async:
            return self.__acall__(request)
        match = self._lean_match(request)
        if match is None:
            return self.get_response(request)
        request.resolver_match = match
        return self.lean(request)

    async def __acall__(self, request: HttpRequest):
        match = self._lean_match(request)
        if match is None:
            return await self.get_response(request)
        request.resolver_match = match
        return await self.lean_async(request)
