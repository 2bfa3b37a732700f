"""Scoped API tokens: only a hash is stored, a token reaches what its scopes name, revoked and
expired tokens and HTTP basic credentials are a 401, failures are limited per address (429
with Retry-After), and staff manage their tokens on /accounts/tokens/ and with a command."""

from __future__ import annotations

import base64
import hashlib
import re
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.test import Client
from django.utils import timezone

from accounts import services
from accounts.models import ApiToken, Membership
from tests.accounts.sign_in_world import utility_staff
from tests.meters_world import build_meter_world

pytestmark = pytest.mark.django_db


@pytest.fixture
def mw(settings):
    return build_meter_world(settings)


def bearer(raw: str) -> dict[str, str]:
    return {"HTTP_AUTHORIZATION": f"Bearer {raw}"}


def token_for(persona, *scopes, **kwargs) -> str:
    return services.api_token_create(user=persona.user, organisation=persona.organisation, name="test",
                                     scopes=list(scopes), **kwargs)[1]


def test_only_a_hash_and_a_prefix_are_stored(mw):
    token, raw = services.api_token_create(user=mw.uma.user, organisation=mw.uma.organisation, name="bank feed",
                                           scopes=["ledger:read"])
    assert raw.startswith("gct_") and len(raw) > 40
    row = ApiToken.objects.values().get(pk=token.pk)
    assert raw not in {str(v) for v in row.values()}
    assert row["token_hash"] == hashlib.sha256(raw.encode()).hexdigest()
    assert raw.startswith(row["prefix"]) and len(row["prefix"]) == 12


def test_a_token_reaches_what_its_scopes_name_and_nothing_else(mw):
    raw = token_for(mw.uma, "ledger:read")
    client = Client()
    assert client.get("/api/v1/ledger/blocks/", **bearer(raw)).status_code == 200
    refused = client.get("/api/v1/wallet/", **bearer(raw))
    assert refused.status_code == 403 and "wallet:read" in refused.json()["detail"]
    assert client.get("/api/v1/devices/", **bearer(raw)).status_code == 403  # public, but not its scope
    assert client.get("/api/v1/devices/").status_code == 200  # anyone without a token


def test_the_token_acts_as_its_owner(mw):
    raw = token_for(mw.alice, "wallet:read", "ledger:read")
    body = Client().get("/api/v1/wallet/", **bearer(raw)).json()
    assert [o["msp_id"] for o in body["organisations"]] == [mw.alice.organisation.msp_id]
    # Alice's token does not see what only the utility sees.
    uma_raw = token_for(mw.uma, "ledger:read")
    alice_accounts = Client().get("/api/v1/ledger/accounts/", **bearer(raw)).json()["count"]
    uma_accounts = Client().get("/api/v1/ledger/accounts/", **bearer(uma_raw)).json()["count"]
    assert alice_accounts < uma_accounts


def test_write_scopes_are_separate(mw):
    read_only = token_for(mw.uma, "prices:read")
    price = {"kind": "retail", "currency": "INR", "price": 900, "effective_from": "2030-01-01T00:00:00+00:00"}
    refused = Client().post("/api/v1/prices/", price, content_type="application/json", **bearer(read_only))
    assert refused.status_code == 403 and "prices:write" in refused.json()["detail"]
    writer = token_for(mw.uma, "prices:write")
    # A token POST needs no CSRF token: it is not a browser session.
    assert Client(enforce_csrf_checks=True).post("/api/v1/prices/", price, content_type="application/json",
                                                 **bearer(writer)).status_code == 201


@pytest.mark.parametrize("keyword", ["Bearer", "Token"])
def test_both_header_keywords_work(mw, keyword):
    raw = token_for(mw.uma, "ledger:read")
    assert Client().get("/api/v1/ledger/blocks/", HTTP_AUTHORIZATION=f"{keyword} {raw}").status_code == 200


def test_revoked_expired_and_unknown_tokens_are_a_401(mw):
    token, raw = services.api_token_create(user=mw.uma.user, organisation=mw.uma.organisation, name="t",
                                           scopes=["ledger:read"])
    client = Client()
    assert client.get("/api/v1/ledger/blocks/", **bearer(raw)).status_code == 200
    services.api_token_revoke(token=token)
    revoked = client.get("/api/v1/ledger/blocks/", **bearer(raw))
    assert revoked.status_code == 401 and revoked["WWW-Authenticate"].startswith("Bearer")
    expiring, raw2 = services.api_token_create(user=mw.uma.user, organisation=mw.uma.organisation, name="t2",
                                               scopes=["ledger:read"], expires_at=timezone.now() + timedelta(hours=1))
    assert client.get("/api/v1/ledger/blocks/", **bearer(raw2)).status_code == 200
    ApiToken.objects.filter(pk=expiring.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert client.get("/api/v1/ledger/blocks/", **bearer(raw2)).status_code == 401
    assert client.get("/api/v1/ledger/blocks/", **bearer("gct_" + "x" * 43)).status_code == 401


def test_a_token_stops_when_its_owner_leaves_the_organisation(mw):
    raw = token_for(mw.uma, "ledger:read")
    Membership.objects.filter(user=mw.uma.user).update(organisation=mw.charlie.organisation)
    assert Client().get("/api/v1/ledger/blocks/", **bearer(raw)).status_code == 401


def test_a_token_stops_when_its_owner_is_deactivated(mw):
    raw = token_for(mw.uma, "ledger:read")
    assert Client().get("/api/v1/ledger/blocks/", **bearer(raw)).status_code == 200
    type(mw.uma.user).objects.filter(pk=mw.uma.user.pk).update(is_active=False)
    assert Client().get("/api/v1/ledger/blocks/", **bearer(raw)).status_code == 401


def test_basic_auth_with_the_right_password_is_a_401(mw):
    mw.uma.user.set_password("uma-password-1")
    mw.uma.user.save()
    header = "Basic " + base64.b64encode(b"uma:uma-password-1").decode()
    response = Client().get("/api/v1/ledger/blocks/", HTTP_AUTHORIZATION=header)
    assert response.status_code == 401 and response["WWW-Authenticate"].startswith("Bearer")


def test_failed_token_attempts_are_limited_per_address(mw, settings):
    settings.GRIDCOIN_API_AUTH_FAILURE_LIMIT = 3
    good = token_for(mw.uma, "ledger:read")
    guesser = Client(REMOTE_ADDR="10.3.3.3")
    for n in range(3):
        assert guesser.get("/api/v1/ledger/blocks/", **bearer(f"gct_guess{n}")).status_code == 401
    throttled = guesser.get("/api/v1/ledger/blocks/", **bearer(good))  # even a good token, from there
    assert throttled.status_code == 429 and 0 < int(throttled["Retry-After"]) <= 15 * 60
    assert Client(REMOTE_ADDR="10.3.3.4").get("/api/v1/ledger/blocks/", **bearer(good)).status_code == 200
    # Session users of that address are not affected.
    browser = Client(REMOTE_ADDR="10.3.3.3")
    browser.force_login(mw.alice.user)
    assert browser.get("/api/v1/wallet/").status_code == 200


def test_use_is_recorded(mw):
    token, raw = services.api_token_create(user=mw.uma.user, organisation=mw.uma.organisation, name="t",
                                           scopes=["ledger:read"])
    assert token.last_used_at is None
    Client().get("/api/v1/ledger/blocks/", **bearer(raw))
    token.refresh_from_db()
    assert token.last_used_at is not None


@pytest.mark.parametrize("kwargs, message", [
    ({"scopes": []}, "at least one scope"),
    ({"scopes": ["ledger:write"]}, "unknown scope"),
    ({"name": " "}, "name"),
    ({"expires_at": timezone.now() - timedelta(days=1)}, "future"),
])
def test_bad_token_requests_make_nothing(mw, kwargs, message):
    args = {"user": mw.uma.user, "organisation": mw.uma.organisation, "name": "t", "scopes": ["ledger:read"]}
    with pytest.raises(services.TokenError, match=message):
        services.api_token_create(**{**args, **kwargs})
    assert ApiToken.objects.count() == 0


def test_a_token_only_for_ones_own_organisation(mw):
    with pytest.raises(services.TokenError, match="not a member"):
        services.api_token_create(user=mw.alice.user, organisation=mw.uma.organisation, name="t",
                                  scopes=["ledger:read"])


# --- the tokens page -----------------------------------------------------------------------------

def test_staff_create_a_token_shown_once_and_revoke_it(mw):
    client = Client()
    client.force_login(mw.uma.user)
    page = client.get("/accounts/tokens/")
    assert page.status_code == 200 and "New token" in page.content.decode()
    created = client.post("/accounts/tokens/", {"name": "bank feed", "organisation": mw.uma.organisation.pk,
                                                "scopes": ["ledger:read", "payments:read"], "expires_in_days": "30"})
    assert created.status_code == 201
    html = created.content.decode()
    raw = re.search(r"<code class=\"token-value\" data-new-token>(gct_[^<]+)</code>", html).group(1)
    token = ApiToken.objects.get()
    assert token.scopes == ["ledger:read", "payments:read"] and token.expires_at > timezone.now()
    assert Client().get("/api/v1/payments/events/", **bearer(raw)).status_code == 200
    listing = client.get("/accounts/tokens/").content.decode()
    assert raw not in listing and token.prefix in listing  # shown once
    assert client.post(f"/accounts/tokens/{token.pk}/revoke/").status_code == 302
    assert Client().get("/api/v1/payments/events/", **bearer(raw)).status_code == 401


def test_residents_have_no_tokens_page_and_nobody_revokes_anothers_token(mw):
    client = Client()
    client.force_login(mw.alice.user)
    assert client.get("/accounts/tokens/").status_code == 403
    token, _ = services.api_token_create(user=mw.uma.user, organisation=mw.uma.organisation, name="t",
                                         scopes=["ledger:read"])
    other = utility_staff("ursula")
    client.force_login(other)
    assert client.post(f"/accounts/tokens/{token.pk}/revoke/").status_code == 404
    token.refresh_from_db()
    assert token.revoked_at is None


def test_the_tokens_page_offers_only_staff_organisations(mw):
    client = Client()
    client.force_login(mw.uma.user)
    response = client.post("/accounts/tokens/", {"name": "x", "organisation": mw.alice.organisation.pk,
                                                 "scopes": ["ledger:read"]})
    assert response.status_code == 200 and ApiToken.objects.count() == 0


# --- the command ---------------------------------------------------------------------------------

def test_the_command_creates_lists_and_revokes(mw):
    out, err = StringIO(), StringIO()
    call_command("api_token", "create", "--user", "uma", "--organisation", mw.uma.organisation.msp_id,
                 "--scope", "ledger:read", "--name", "nightly verify", "--days", "7", stdout=out, stderr=err)
    raw = out.getvalue().strip()
    assert raw.startswith("gct_") and "shown once" in err.getvalue()
    assert Client().get("/api/v1/ledger/blocks/", **bearer(raw)).status_code == 200
    listing = StringIO()
    call_command("api_token", "list", stdout=listing)
    assert raw not in listing.getvalue() and raw[:12] in listing.getvalue() and "active" in listing.getvalue()
    call_command("api_token", "revoke", raw[:12], stdout=StringIO())
    assert Client().get("/api/v1/ledger/blocks/", **bearer(raw)).status_code == 401
    with pytest.raises(CommandError, match="unknown scope|invalid choice"):
        call_command("api_token", "create", "--user", "uma", "--organisation", mw.uma.organisation.msp_id,
                     "--scope", "everything", "--name", "x")


def test_the_admin_lists_tokens_without_their_hash_and_revokes_them(mw):
    from django.contrib.auth import get_user_model

    token, raw = services.api_token_create(user=mw.uma.user, organisation=mw.uma.organisation, name="feed",
                                           scopes=["ledger:read"])
    admin = Client()
    admin.force_login(get_user_model().objects.create_superuser("root", password="root-password-1"))
    page = admin.get(f"/admin/accounts/apitoken/{token.pk}/change/").content.decode()
    assert token.prefix in page and token.token_hash not in page
    response = admin.post("/admin/accounts/apitoken/", {"action": "revoke", "_selected_action": [token.pk]})
    assert response.status_code == 302
    assert Client().get("/api/v1/ledger/blocks/", **bearer(raw)).status_code == 401
