"""The installable app: the web app manifest, the service worker and its offline page, all served
from the site's root so the worker's scope is the whole site."""

from __future__ import annotations

import json

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.http import require_safe

from . import pwa


@require_safe
def manifest(request: HttpRequest) -> JsonResponse:
    return JsonResponse(pwa.manifest(), content_type="application/manifest+json")


@require_safe
def service_worker(request: HttpRequest) -> HttpResponse:
    shell = {"version": pwa.shell_version(), "offline": pwa.precache_urls()[0], "precache": pwa.precache_urls(),
             "imports": pwa.worker_imports()}
    response = render(request, pwa.SW_TEMPLATE, {"shell_json": json.dumps(shell)},
                      content_type="application/javascript; charset=utf-8")
    response["Service-Worker-Allowed"] = "/"
    # The browser must ask every time, so a deploy reaches installed apps on their next visit.
    response["Cache-Control"] = "no-cache"
    return response


@require_safe
def offline(request: HttpRequest) -> HttpResponse:
    return HttpResponse(pwa.offline_page())
