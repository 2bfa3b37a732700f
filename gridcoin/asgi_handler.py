"""Django's ASGI handler, with the middleware chain run as under WSGI: in one hop to the sync thread.

Under ASGI Django runs every middleware that can be async in async mode. For middleware built on
``MiddlewareMixin`` (most of ours, and Django's own), async mode means each ``process_request``
and ``process_response`` call hops to the sync thread and back, and each sync-only middleware
(WhiteNoise, the session-cookie guard, the second-factor and language middleware) switches the
mode once more: 11 crossings between the event loop and the sync thread for a page here, against
4 with this handler (tests/system/test_asgi_one_hop.py counts them).
Every view here is synchronous, so nothing is gained by the async mode. This handler loads the
chain in sync mode and awaits it through one ``sync_to_async`` call on the same thread Django uses
for sync views (``thread_sensitive``), so database connections and request signals behave as
before; an async view, should one appear, still runs (Django's sync path calls it through
``async_to_sync``).
"""

from __future__ import annotations

from asgiref.sync import sync_to_async
from django.core.handlers.asgi import ASGIHandler


class OneHopASGIHandler(ASGIHandler):
    def load_middleware(self, is_async: bool = False) -> None:
        super().load_middleware(is_async=False)
        self._middleware_chain = sync_to_async(self._middleware_chain, thread_sensitive=True)
