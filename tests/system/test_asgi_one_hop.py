"""HTTP through the deployed ASGI application (``gridcoin.asgi``, what daphne serves) runs the
middleware chain as under WSGI, in one hop to the sync thread (``gridcoin.asgi_handler``): the
same responses, headers and token authentication as Django's stock handler, without a thread hop
per middleware method."""

from __future__ import annotations

import pytest
from asgiref import sync as asgiref_sync
from asgiref.sync import async_to_sync
from channels.testing import HttpCommunicator
from django.contrib.auth import get_user_model
from django.core.handlers.asgi import ASGIHandler

from accounts.services import api_token_create, membership_create
from gridcoin.asgi import application, django_asgi_app
from gridcoin.asgi_handler import OneHopASGIHandler
from tests.ledger_helpers import make_member

pytestmark = pytest.mark.django_db(transaction=True)
HOST = [(b"host", b"testserver")]


def _get(app, path: str, monkeypatch, headers=()) -> tuple[dict, int]:
    """The response, and how many times a call crossed between the event loop and the sync
    thread (``sync_to_async`` or ``async_to_sync``)."""
    hops = 0
    to_sync, to_async = asgiref_sync.SyncToAsync.__call__, asgiref_sync.AsyncToSync.__call__

    async def counted_to_sync(self, *args, **kwargs):
        nonlocal hops
        hops += 1
        return await to_sync(self, *args, **kwargs)

    def counted_to_async(self, *args, **kwargs):
        nonlocal hops
        hops += 1
        return to_async(self, *args, **kwargs)

    with monkeypatch.context() as patch:
        patch.setattr(asgiref_sync.SyncToAsync, "__call__", counted_to_sync)
        patch.setattr(asgiref_sync.AsyncToSync, "__call__", counted_to_async)
        response = async_to_sync(HttpCommunicator(app, "GET", path, headers=[*HOST, *headers]).get_response)(
            timeout=10)
    return response, hops


def _headers(response: dict) -> dict[str, str]:
    return {name.decode().lower(): value.decode() for name, value in response["headers"]}


def test_a_page_is_served_as_by_django_s_handler_in_one_hop(monkeypatch):
    assert isinstance(django_asgi_app, OneHopASGIHandler)
    ours, hops = _get(application, "/accounts/login/", monkeypatch)
    stock, stock_hops = _get(ASGIHandler(), "/accounts/login/", monkeypatch)
    assert ours["status"] == stock["status"] == 200
    for header in ("content-security-policy", "x-frame-options", "x-content-type-options", "content-language"):
        assert _headers(ours).get(header) == _headers(stock).get(header) is not None, header
    assert b'name="csrfmiddlewaretoken"' in ours["body"]
    # This test's own call, the chain, the response's close and the request_finished signal;
    # Django's stock handler also crosses once per method of every middleware it runs in async
    # mode and twice around each sync-only one (11 on Django 5.2).
    assert hops <= 4 < 10 <= stock_hops, (hops, stock_hops)


def test_an_api_token_is_accepted_and_a_bad_one_refused(monkeypatch):
    utility = make_member("asgi-utility", "utility")
    user = get_user_model().objects.create_user(username="asgi-reader", password=None)
    membership_create(user=user, organisation=utility.organisation)
    _, token = api_token_create(user=user, organisation=utility.organisation, name="asgi", scopes=["ledger:read"])
    ok, _ = _get(application, "/api/v1/ledger/policies/", monkeypatch,
                 [(b"authorization", f"Bearer {token}".encode())])
    assert ok["status"] == 200 and b"token.transfer" in ok["body"]
    refused, _ = _get(application, "/api/v1/ledger/policies/", monkeypatch, [(b"authorization", b"Bearer gct_nope")])
    assert refused["status"] == 401 and _headers(refused)["www-authenticate"].startswith("Bearer")
