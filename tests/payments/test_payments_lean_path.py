"""Webhooks are served through the lean middleware path (gridcoin.lean_path): the same
response headers as any page, none of the browser middleware, and nothing else changes."""

from __future__ import annotations

import importlib
import inspect
import sys

import django
import pytest
from asgiref.sync import async_to_sync
from django.core.exceptions import ImproperlyConfigured
from django.http import Http404, HttpResponse, JsonResponse
from django.template import engines
from django.template.response import SimpleTemplateResponse
from django.test import AsyncClient, Client
from django.urls import path
from django.views.decorators.csrf import csrf_exempt

from gridcoin import lean_path
from gridcoin.lean_path import LeanPathMiddleware, lean_request
from gridcoin.library_versions import UnsupportedLibraryVersion
from payments.testing import build_market, post_bank_webhook

SECURITY_HEADERS = ("X-Frame-Options", "X-Content-Type-Options", "Referrer-Policy", "Cross-Origin-Opener-Policy")


@pytest.fixture
def market(db, settings):
    return build_market()


def test_a_webhook_skips_the_browser_middleware(market):
    response = market.deliver(market.notification(id="lean-1"))
    assert response.status_code == 200 and response.json()["status"] == "applied"
    request = response.wsgi_request
    for attribute in ("session", "user", "htmx", "_messages"):
        assert not hasattr(request, attribute), attribute
    assert "csrftoken" not in response.cookies and "sessionid" not in response.cookies


def test_a_page_still_gets_the_full_stack(client, market):
    response = client.get("/accounts/login/")
    assert response.status_code == 200
    request = response.wsgi_request
    for attribute in ("session", "user", "htmx"):
        assert hasattr(request, attribute), attribute


def test_webhook_responses_carry_the_same_security_headers_as_pages(client, market):
    page = client.get("/accounts/login/")
    for response in (market.deliver(market.notification(id="lean-2")), post_bank_webhook(b"{}", "garbled")):
        for header in SECURITY_HEADERS:
            assert response.headers.get(header) == page.headers.get(header), header
        assert response.headers["Content-Type"] == "application/json"
        assert int(response.headers["Content-Length"]) == len(response.content)  # CommonMiddleware


def test_refusals_and_methods_behave_as_before(market):
    assert post_bank_webhook(b"{}", None).status_code == 401
    assert Client().get("/webhooks/bank/").status_code == 405
    assert Client().post("/webhooks/stripe/", data=b"{}", content_type="application/json").status_code == 401


def test_paths_that_do_not_resolve_take_the_full_stack(market):
    missing = Client().post("/webhooks/nowhere/", data=b"{}", content_type="application/json")
    assert missing.status_code == 404 and hasattr(missing.wsgi_request, "session")
    no_slash = Client().get("/webhooks/bank")  # APPEND_SLASH (CommonMiddleware in the full stack)
    assert no_slash.status_code == 301 and no_slash.headers["Location"] == "/webhooks/bank/"


def test_only_csrf_exempt_views_may_skip_the_csrf_middleware():
    def view(request):
        return HttpResponse()

    with pytest.raises(ImproperlyConfigured, match="csrf_exempt"):
        lean_request(view)


@pytest.mark.django_db(transaction=True)
def test_the_asgi_handler_serves_webhooks_through_the_lean_path(settings):
    market = build_market()
    raw, header = market.signed(market.notification(id="over-asgi"))

    async def post():
        return await AsyncClient().post("/webhooks/bank/", data=raw, content_type="application/json",
                                        headers={"GridCoin-Signature": header})

    response = async_to_sync(post)()
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "applied"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert not hasattr(response.asgi_request, "session")


# --- the lean path itself, on views of this module's own URLconf -------------------------------

@csrf_exempt
def failing_view(request):
    raise RuntimeError("the view failed")


@csrf_exempt
def missing_view(request):
    raise Http404("no such thing")


@csrf_exempt
def template_view(request):
    return SimpleTemplateResponse(engines["django"].from_string("hello {{ name }}"), {"name": "bank"})


@csrf_exempt
async def async_view(request):
    return JsonResponse({"async": True})


urlpatterns = [path(f"webhooks/test-{view.__name__}/", lean_request(view))
               for view in (failing_view, missing_view, template_view, async_view)]


@pytest.fixture
def own_urls(settings):
    settings.ROOT_URLCONF = __name__
    settings.DEBUG = False


def test_exceptions_become_the_usual_error_responses_with_the_security_headers(own_urls):
    client = Client(raise_request_exception=False)
    for url, status in (("/webhooks/test-failing_view/", 500), ("/webhooks/test-missing_view/", 404)):
        response = client.post(url)
        assert response.status_code == status
        assert not hasattr(response.wsgi_request, "session")  # still the lean path
        assert response.headers["X-Frame-Options"] == "DENY"
        assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_template_responses_are_rendered_and_async_views_run(own_urls):
    response = Client().post("/webhooks/test-template_view/")
    assert response.status_code == 200 and response.content == b"hello bank"
    assert not hasattr(response.wsgi_request, "session")
    response = Client().post("/webhooks/test-async_view/")
    assert response.json() == {"async": True} and response.headers["X-Frame-Options"] == "DENY"


def get_response(request):
    return HttpResponse()


def test_lean_middleware_with_hooks_it_would_not_run_is_refused(settings):
    settings.LEAN_MIDDLEWARE = ["django.middleware.csrf.CsrfViewMiddleware"]
    with pytest.raises(ImproperlyConfigured, match="CsrfViewMiddleware in LEAN_MIDDLEWARE has process_view"):
        LeanPathMiddleware(get_response)


def test_atomic_requests_are_refused(monkeypatch):
    from django.conf import settings

    monkeypatch.setitem(settings.DATABASES["default"], "ATOMIC_REQUESTS", True)
    with pytest.raises(ImproperlyConfigured, match="ATOMIC_REQUESTS"):
        LeanPathMiddleware(get_response)


def test_an_unsupported_django_release_is_refused_when_the_module_is_imported(monkeypatch):
    monkeypatch.setattr(django, "__version__", "6.0.0")
    monkeypatch.delitem(sys.modules, "gridcoin.lean_path")
    with pytest.raises(UnsupportedLibraryVersion) as refused:
        importlib.import_module("gridcoin.lean_path")
    message = str(refused.value)
    assert "Django 6.0.0 is installed" in message and "written for Django 5.2.x" in message
    assert "convert_exception_to_response" in message


def test_the_undocumented_django_function_used_keeps_its_shape():
    from django.core.handlers.exception import convert_exception_to_response

    assert tuple(inspect.signature(convert_exception_to_response).parameters) == ("get_response",)
    lean_path.check_django_version()
