"""Failed logins are limited per account and per address (django-axes on the cache): past the
limit the login page says for how long, answers 429, and even the right password is refused
until the cool-off ends."""

from __future__ import annotations

import pytest
from django.test import Client

from tests.accounts.sign_in_world import PASSWORD, login_post, resident
from tests.cache import clear_cache

pytestmark = pytest.mark.django_db
LOCKED = "Too many failed attempts. Try again in 15 minutes."


def signed_in(client: Client) -> bool:
    return "_auth_user_id" in client.session


def test_thirty_wrong_passwords_then_the_right_one_is_refused(client):
    resident("rita")
    statuses = [login_post(client, "rita", f"wrong-{n}").status_code for n in range(30)]
    assert statuses[:4] == [200] * 4  # the form's "wrong password"; the fifth failure locks
    assert set(statuses[4:]) == {429}
    response = login_post(client, "rita", PASSWORD)
    assert response.status_code == 429 and not signed_in(client)
    html = response.content.decode()
    assert LOCKED in html and 'role="alert"' in html
    assert response["Retry-After"] == str(15 * 60)


def test_a_locked_account_is_locked_from_every_address():
    resident("rita")
    for n in range(5):
        login_post(Client(REMOTE_ADDR=f"10.0.0.{n}"), "rita", "wrong")
    fresh = Client(REMOTE_ADDR="10.9.9.9")
    assert login_post(fresh, "rita", PASSWORD).status_code == 429 and not signed_in(fresh)


def test_a_locked_address_is_refused_for_every_account():
    resident("rita")
    resident("sam")
    guesser = Client(REMOTE_ADDR="10.0.0.7")
    for n in range(5):
        login_post(guesser, f"user{n}", "wrong")  # five different accounts, one address
    assert login_post(guesser, "sam", PASSWORD).status_code == 429 and not signed_in(guesser)
    elsewhere = Client(REMOTE_ADDR="10.0.0.8")
    assert login_post(elsewhere, "sam", PASSWORD).status_code == 302 and signed_in(elsewhere)


def test_a_forwarded_for_header_is_ignored_unless_a_proxy_is_configured():
    resident("rita")
    client = Client(REMOTE_ADDR="10.0.0.7")
    for n in range(5):
        login_post(client, f"user{n}", "wrong", HTTP_X_FORWARDED_FOR=f"192.0.2.{n}")
    # A fresh forged address does not escape the lockout of the real one.
    assert login_post(client, "someone", "wrong", HTTP_X_FORWARDED_FOR="192.0.2.99").status_code == 429


def test_behind_a_configured_proxy_the_header_names_the_client(settings):
    settings.GRIDCOIN_CLIENT_IP_HEADER = "X-Forwarded-For"
    settings.GRIDCOIN_TRUSTED_PROXY_COUNT = 1
    resident("rita")
    proxy = Client(REMOTE_ADDR="10.0.0.1")  # every request arrives from the proxy
    for n in range(5):
        login_post(proxy, f"user{n}", "wrong", HTTP_X_FORWARDED_FOR="203.0.113.5")
    assert login_post(proxy, "x", "wrong", HTTP_X_FORWARDED_FOR="203.0.113.5").status_code == 429
    # Another client behind the same proxy is not locked out; what the client itself put on
    # the left of the header is not trusted.
    other = login_post(proxy, "rita", PASSWORD, HTTP_X_FORWARDED_FOR="203.0.113.5, 198.51.100.2")
    assert other.status_code == 302


def test_the_cool_off_ends_and_a_success_clears_the_count(client):
    resident("rita")
    for _ in range(5):
        login_post(client, "rita", "wrong")
    assert login_post(client, "rita", PASSWORD).status_code == 429
    clear_cache()  # the counters expire with the cool-off: the cache drops them
    assert login_post(client, "rita", PASSWORD).status_code == 302 and signed_in(client)
    client.logout()
    # The success reset the count: four more failures do not lock.
    for _ in range(4):
        assert login_post(client, "rita", "wrong").status_code == 200
    assert login_post(client, "rita", PASSWORD).status_code == 302


def test_the_limit_and_cool_off_come_from_settings(client, settings):
    settings.AXES_FAILURE_LIMIT = 2
    from datetime import timedelta

    settings.AXES_COOLOFF_TIME = timedelta(minutes=1)
    settings.GRIDCOIN_LOGIN_COOLOFF_MINUTES = 1
    resident("rita")
    login_post(client, "rita", "wrong")
    response = login_post(client, "rita", "wrong")
    assert response.status_code == 429
    assert "Too many failed attempts. Try again in 1 minute." in response.content.decode()


def test_an_operator_lifts_a_lockout_with_axes_commands():
    from io import StringIO

    from django.core.management import call_command

    resident("rita")
    for n in range(5):
        login_post(Client(REMOTE_ADDR=f"10.0.1.{n}"), "rita", "wrong")
    assert login_post(Client(REMOTE_ADDR="10.0.2.1"), "rita", PASSWORD).status_code == 429
    call_command("axes_reset_username", "rita", stdout=StringIO())
    assert login_post(Client(REMOTE_ADDR="10.0.2.1"), "rita", PASSWORD).status_code == 302


def test_production_warns_when_limits_would_count_the_proxys_address(settings):
    from accounts.checks import client_address_header

    settings.PRODUCTION = True
    settings.GRIDCOIN_CLIENT_IP_HEADER = ""
    assert [w.id for w in client_address_header(None)] == ["gridcoin.W001"]
    settings.GRIDCOIN_CLIENT_IP_HEADER = "X-Forwarded-For"
    assert client_address_header(None) == []


def test_an_operator_lifts_an_address_lockout():
    from io import StringIO

    from django.core.management import call_command

    resident("rita")
    guesser = Client(REMOTE_ADDR="10.0.3.3")
    for n in range(5):
        login_post(guesser, f"user{n}", "wrong")
    assert login_post(guesser, "rita", PASSWORD).status_code == 429
    call_command("axes_reset_ip", "10.0.3.3", stdout=StringIO())
    assert login_post(guesser, "rita", PASSWORD).status_code == 302
