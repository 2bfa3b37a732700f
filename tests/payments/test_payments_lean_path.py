"""Webhooks are served through the lean middleware path (payments.middleware): the same
response headers as any page, none of the browser middleware, and nothing else changes."""

from __future__ import annotations

import pytest
from asgiref.sync import async_to_sync
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpResponse
from django.test import AsyncClient, Client

from payments.middleware import lean_request
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
