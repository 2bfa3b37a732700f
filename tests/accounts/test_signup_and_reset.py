"""Sign-up and password reset: limited per address (429 with a clear message, nothing made),
the reset flow end to end by e-mail, and ``next`` kept through sign-up and login."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth import get_user_model
from django.core import mail
from django.test import Client

from tests.accounts.sign_in_world import PASSWORD, login_post, resident

pytestmark = pytest.mark.django_db


def signup_post(client, username, next_url="", password=PASSWORD):
    data = {"username": username, "password1": password, "password2": password}
    if next_url:
        data["next"] = next_url
    return client.post("/accounts/signup/", data)


def test_signups_are_limited_per_address(settings):
    settings.GRIDCOIN_SIGNUP_LIMIT = 3
    client = Client(REMOTE_ADDR="10.1.1.1")
    for n in range(3):
        assert signup_post(Client(REMOTE_ADDR="10.1.1.1"), f"new{n}").status_code == 302
    users = get_user_model().objects.count()
    response = signup_post(client, "onemore")
    assert response.status_code == 429
    assert "Too many sign-ups from this network. Try again in 15 minutes." in response.content.decode()
    assert 0 < int(response["Retry-After"]) <= 15 * 60
    assert get_user_model().objects.count() == users  # nothing made
    assert signup_post(Client(REMOTE_ADDR="10.1.1.2"), "elsewhere").status_code == 302


def test_password_reset_by_email_end_to_end(client):
    resident("rita", email="rita@example.org")
    response = client.post("/accounts/password-reset/", {"email": "rita@example.org"})
    assert response.status_code == 302 and response["Location"] == "/accounts/password-reset/sent/"
    assert len(mail.outbox) == 1 and mail.outbox[0].to == ["rita@example.org"]
    link = re.search(r"http://testserver(/accounts/reset/\S+/)", mail.outbox[0].body).group(1)
    form = client.get(link, follow=True)
    assert form.status_code == 200 and "Choose a new password" in form.content.decode()
    done = client.post(form.redirect_chain[-1][0], {"new_password1": "a-brand-new-pass", "new_password2": "a-brand-new-pass"})
    assert done.status_code == 302 and done["Location"] == "/accounts/reset/done/"
    assert login_post(Client(), "rita", PASSWORD).status_code == 200  # the old one no longer works
    assert login_post(Client(), "rita", "a-brand-new-pass").status_code == 302
    # The link works once.
    assert "This link no longer works" in client.get(link, follow=True).content.decode()


def test_password_reset_says_the_same_for_an_unknown_address(client):
    response = client.post("/accounts/password-reset/", {"email": "nobody@example.org"})
    assert response.status_code == 302 and mail.outbox == []


def test_password_reset_requests_are_limited_per_address(settings):
    settings.GRIDCOIN_PASSWORD_RESET_LIMIT = 2
    resident("rita", email="rita@example.org")
    client = Client(REMOTE_ADDR="10.2.2.2")
    for _ in range(2):
        assert client.post("/accounts/password-reset/", {"email": "rita@example.org"}).status_code == 302
    response = client.post("/accounts/password-reset/", {"email": "rita@example.org"})
    assert response.status_code == 429 and 0 < int(response["Retry-After"]) <= 15 * 60
    assert "Too many password-reset requests from this network. Try again in 15 minutes." in response.content.decode()
    assert len(mail.outbox) == 2  # the refused request sent nothing
    assert Client(REMOTE_ADDR="10.2.2.3").post("/accounts/password-reset/",
                                                {"email": "rita@example.org"}).status_code == 302


def test_the_login_page_links_to_password_reset(client):
    assert 'href="/accounts/password-reset/"' in client.get("/accounts/login/").content.decode()


# --- next --------------------------------------------------------------------------------------

def test_signup_keeps_next_through_a_refused_form_and_lands_there(client):
    page = client.get("/accounts/signup/?next=/d/SL-0001").content.decode()
    assert '<input type="hidden" name="next" value="/d/SL-0001">' in page
    refused = signup_post(client, "bad name!", next_url="/d/SL-0001")
    assert refused.status_code == 200
    assert '<input type="hidden" name="next" value="/d/SL-0001">' in refused.content.decode()
    done = signup_post(client, "nina", next_url="/d/SL-0001")
    assert done.status_code == 302 and done["Location"] == "/d/SL-0001"


def test_signup_refuses_a_next_on_another_site(client):
    done = signup_post(client, "nina", next_url="https://evil.example/")
    assert done["Location"] == "/"


def test_login_and_signup_pages_link_to_each_other_with_next(client):
    login_page = client.get("/accounts/login/?next=/d/SL-0001").content.decode()
    assert 'href="/accounts/signup/?next=/d/SL-0001"' in login_page
    signup_page = client.get("/accounts/signup/?next=/d/SL-0001").content.decode()
    assert 'href="/accounts/login/?next=/d/SL-0001"' in signup_page


def test_header_links_carry_the_current_page(client):
    page = client.get("/prices/").content.decode()
    assert 'href="/accounts/login/?next=/prices/"' in page and 'href="/accounts/signup/?next=/prices/"' in page


def test_a_new_resident_without_next_is_offered_buy_coins_and_scan_once(client):
    done = signup_post(client, "nina")
    assert done["Location"] == "/"
    home = client.get("/").content.decode()
    assert 'href="/payments/simulator/"' in home and "Buy coins" in home
    assert 'href="/scan/"' in home and ">Scan<" in home
    assert "Welcome!" not in client.get("/").content.decode()  # once


def test_a_returning_login_is_not_welcomed(client):
    resident("rita")
    login_post(client, "rita")
    assert "Welcome!" not in client.get("/").content.decode()
