"""A lean request path for machine-to-machine endpoints (the bank and Stripe webhooks).

A webhook has no browser behind it: static files, sessions, CSRF, authentication, messages and
htmx have nothing to do on its request, yet together they cost a delivery more CPU than its
HMAC check. ``LeanPathMiddleware`` comes first in ``settings.MIDDLEWARE``; a request whose
path resolves to a view marked with ``lean_request`` is answered through
``settings.LEAN_MIDDLEWARE`` only (security headers, common, clickjacking: the same response
headers as any other page), every other request through the full stack, untouched.

Only views that are ``csrf_exempt`` may be marked (``lean_request`` refuses others), so leaving
the CSRF middleware out can never drop a check. A path that does not resolve (a 404, a missing
slash) takes the full stack, so its answer (APPEND_SLASH redirect, 404 page) is unchanged.
"""

from __future__ import annotations

from collections.abc import Callable

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured, MiddlewareNotUsed
from django.core.handlers.base import BaseHandler
from django.core.handlers.exception import convert_exception_to_response
from django.urls import Resolver404, get_resolver
from django.utils.module_loading import import_string

LEAN_ATTRIBUTE = "lean_request"


def lean_request(view: Callable) -> Callable:
    """Serve ``view`` through settings.LEAN_MIDDLEWARE only (see module docstring)."""
    if not getattr(view, "csrf_exempt", False):
        raise ImproperlyConfigured(f"{view.__qualname__} must be csrf_exempt to skip the CSRF middleware")
    setattr(view, LEAN_ATTRIBUTE, True)
    return view


class _LeanHandler(BaseHandler):
    """Django's request handling (view middleware, exceptions, template responses) over a
    shorter middleware list. The view was resolved already by the dispatcher."""

    def __init__(self, middleware: list[str], *, is_async: bool) -> None:
        super().__init__()
        self._view_middleware = []
        self._template_response_middleware = []
        self._exception_middleware = []
        get_response = self._get_response_async if is_async else self._get_response
        handler = convert_exception_to_response(get_response)
        handler_is_async = is_async
        for path in reversed(middleware):  # as BaseHandler.load_middleware, over another list
            factory = import_string(path)
            can_sync, can_async = getattr(factory, "sync_capable", True), getattr(factory, "async_capable", False)
            middleware_is_async = can_async if (handler_is_async or not can_sync) else False
            adapted = self.adapt_method_mode(middleware_is_async, handler, handler_is_async)
            try:
                instance = factory(adapted)
            except MiddlewareNotUsed:
                continue
            handler = adapted
            if hasattr(instance, "process_view"):
                self._view_middleware.insert(0, self.adapt_method_mode(is_async, instance.process_view))
            if hasattr(instance, "process_template_response"):
                self._template_response_middleware.append(
                    self.adapt_method_mode(is_async, instance.process_template_response))
            if hasattr(instance, "process_exception"):
                self._exception_middleware.append(self.adapt_method_mode(False, instance.process_exception))
            handler = convert_exception_to_response(instance)
            handler_is_async = middleware_is_async
        self._middleware_chain = self.adapt_method_mode(is_async, handler, handler_is_async)

    def resolve_request(self, request):
        request.resolver_match = request._lean_match
        return request._lean_match


class LeanPathMiddleware:
    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable) -> None:
        self.get_response = get_response
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)
        self.prefixes = tuple(getattr(settings, "LEAN_PATH_PREFIXES", ()))
        self.lean = _LeanHandler(list(settings.LEAN_MIDDLEWARE), is_async=self.is_async)

    def _lean_match(self, request):
        path = request.path_info
        if not path.startswith(self.prefixes):
            return None
        try:
            match = get_resolver(getattr(request, "urlconf", None)).resolve(path)
        except Resolver404:
            return None
        return match if getattr(match.func, LEAN_ATTRIBUTE, False) else None

    def __call__(self, request):
        if self.is_async:
            return self.__acall__(request)
        match = self._lean_match(request)
        if match is None:
            return self.get_response(request)
        request._lean_match = match
        return self.lean._middleware_chain(request)

    async def __acall__(self, request):
        match = self._lean_match(request)
        if match is None:
            return await self.get_response(request)
        request._lean_match = match
        return await self.lean._middleware_chain(request)
