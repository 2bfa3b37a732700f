"""Not-found pages: JSON under /api/, the HTML page everywhere else.

A path under /api/ that matches no route (``/api/v1/ledger/blocks/abc/``: the route wants a
number) never reaches DRF, so without this an API client would get Django's HTML page.
"""

from __future__ import annotations

from django.http import JsonResponse
from django.views.defaults import page_not_found


def not_found(request, exception):
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": "Not found."}, status=404)
    return page_not_found(request, exception)
