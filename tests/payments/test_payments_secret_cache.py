"""Bank secrets are kept in memory between deliveries (payments.secrets.BankSecretCache), and
rotation, retirement and identity revocation still take effect at once: every test here warms
the cache first, then changes the database behind its back."""

from __future__ import annotations

import time

import pytest
from django.utils import timezone

from ledger.models import Identity, Transaction
from payments import secrets, services
from payments.models import BankSecret, ProcessedEvent, WebhookEvent
from payments.secrets import bank_secret_create, bank_secret_deactivate
from payments.signing import signature_header
from payments.testing import build_market


@pytest.fixture
def market(db, settings):
    market = build_market()
    secrets.bank_secrets.clear()
    warm = market.deliver(market.notification(id="warm-up"))
    assert warm.status_code == 200 and warm.json()["status"] == "applied"
    return market


@pytest.fixture
def secret_reads(monkeypatch):
    """How many times the secrets table is read."""
    reads = []
    original = secrets.active_bank_secrets

    def counting():
        reads.append(1)
        return original()

    monkeypatch.setattr(secrets, "active_bank_secrets", counting)
    return reads


def snapshot(market) -> tuple:
    return (market.household_balance(), market.utility_stock(), Transaction.objects.count(),
            ProcessedEvent.objects.count())


def test_a_warm_cache_reads_no_secrets(market, secret_reads):
    for n in range(5):
        assert market.deliver(market.notification(id=f"p-{n}")).json()["status"] == "applied"
    assert market.deliver(market.notification(id="p-0")).json()["status"] == "duplicate"
    assert secret_reads == []


def test_a_new_secret_is_honoured_at_once(market, secret_reads):
    _, new_plain = bank_secret_create(organisation=market.bank, label="next")
    response = market.deliver(market.notification(id="with-new"), secrets=[new_plain])
    assert response.status_code == 200 and response.json()["status"] == "applied"
    assert len(secret_reads) == 1  # the miss reloaded the list once


def test_a_retired_secret_is_refused_at_once(market):
    _, new_plain = bank_secret_create(organisation=market.bank, label="next")
    bank_secret_deactivate(secret=BankSecret.objects.get(organisation=market.bank, label="primary"))
    before = snapshot(market)
    response = market.deliver(market.notification(id="with-old"), secrets=[market.secret])
    assert response.status_code == 401
    assert "retired" in response.json()["error"]
    assert snapshot(market) == before
    event = WebhookEvent.objects.order_by("-id").first()
    assert (event.status, event.http_status, event.organisation) == ("rejected", 401, None)
    # Signed with both (rotation in progress), it passes on the new one.
    assert market.deliver(market.notification(id="with-both"), secrets=[market.secret, new_plain]).status_code == 200


def test_a_redelivery_signed_with_a_retired_secret_is_refused(market):
    bank_secret_deactivate(secret=BankSecret.objects.get(organisation=market.bank, label="primary"))
    response = market.deliver(market.notification(id="warm-up"))
    assert response.status_code == 401 and "retired" in response.json()["error"]


@pytest.mark.parametrize("case", ["malformed", "stale", "wrong-bank", "unknown-payer"])
def test_other_refusals_with_a_retired_secret_say_it_is_retired(market, case):
    """Before caching, a retired secret was refused before anything else was looked at."""
    bank_secret_deactivate(secret=BankSecret.objects.get(organisation=market.bank, label="primary"))
    before = snapshot(market)
    if case == "malformed":
        response = market.deliver(b'{"id": ')
    elif case == "stale":
        response = market.deliver(market.notification(), t=int(time.time()) - 400)
    elif case == "wrong-bank":
        response = market.deliver(market.notification(bank="otherbank"))
    else:
        response = market.deliver(market.notification(payer="hh-nobody"))
    assert response.status_code == 401, response.content
    assert "retired" in response.json()["error"]
    assert snapshot(market) == before


def test_a_revoked_identity_is_seen_at_once(market):
    Identity.objects.filter(organisation=market.bank, name=secrets.WEBHOOK_IDENTITY).update(revoked_at=timezone.now())
    response = market.deliver(market.notification(id="after-revocation"))
    assert response.status_code == 422
    assert "revoked" in response.json()["error"]
    assert market.household_balance() == 1250  # the warm-up's sale only


def test_a_replaced_secret_row_is_not_mistaken_for_the_cached_one(market):
    """Same plaintext, new row (as after a database reset): the cached row is not trusted."""
    BankSecret.objects.filter(organisation=market.bank).delete()
    bank_secret_create(organisation=market.bank, label="again", secret=market.secret)
    stale = secrets.bank_secrets._entries
    assert stale and all(not BankSecret.objects.filter(pk=s.pk).exists() for s, _ in stale)
    response = market.deliver(market.notification(id="after-replace"))
    assert response.status_code == 200 and response.json()["status"] == "applied"
    assert WebhookEvent.objects.order_by("-id").first().organisation == market.bank


def test_simulator_signs_with_the_same_secrets(market):
    """The service entry point (used by the simulator and the demo) goes through the cache too."""
    raw, header = market.signed(market.notification(id="via-service"))
    outcome = services.bank_webhook_receive(raw_body=raw, signature_header=header)
    assert outcome.applied
    t = int(time.time())
    forged = services.bank_webhook_receive(raw_body=raw, signature_header=signature_header(["gcwh_guess"], t, raw))
    assert forged.http_status == 401


def test_a_secret_retired_between_the_fresh_read_and_the_claim_is_refused(market, monkeypatch):
    """Even a list read a moment before the retirement commits cannot apply the delivery."""
    stale = secrets.active_bank_secrets()
    bank_secret_deactivate(secret=BankSecret.objects.get(organisation=market.bank, label="primary"))
    monkeypatch.setattr(secrets, "active_bank_secrets", lambda: stale)
    before = snapshot(market)
    response = market.deliver(market.notification(id="raced"))
    assert response.status_code == 401 and "retired" in response.json()["error"]
    assert snapshot(market) == before
