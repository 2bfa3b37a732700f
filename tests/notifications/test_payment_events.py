"""A resident's coin purchase credited (by a bank webhook or from a statement) tells the paying
household once, in the crediting transaction; a failing receiver never undoes the credit."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.db import connection, transaction

from notifications import services
from notifications.models import Delivery, DeliveryStatus, Kind, Notification
from payments.credits import payment_credit
from payments.models import Payment
from payments.testing import build_market


@pytest.fixture
def market(db, settings, run_after_commit):
    market = build_market()
    market.resident.email = "alice@example.org"
    market.resident.save(update_fields=["email"])
    return market


def deliver(market, run, **fields):
    return run(market.deliver, market.notification(**fields))


def test_a_credited_purchase_tells_the_payer_once_by_every_channel(market, run_after_commit, mailoutbox):
    response = deliver(market, run_after_commit, id="pay-1", amount=1001)
    assert response.status_code == 200 and response.json()["status"] == "applied"
    payment = Payment.objects.get(payment_id="pay-1")
    notification = Notification.objects.get()
    assert (notification.user, notification.kind, notification.event_key) == (
        market.resident, Kind.PAYMENT_CREDITED, f"payment-credited:{payment.pk}")
    assert notification.data["wh"] == response.json()["wh"] == 1251 and notification.url == "/wallet/"
    assert len(mailoutbox) == 1
    # The bank delivers the same event again, then reports the payment under another event id.
    again = deliver(market, run_after_commit, id="pay-1", amount=1001)
    assert again.json()["status"] == "duplicate"
    assert Notification.objects.count() == 1 and len(mailoutbox) == 1
    # No browser of Alice's is subscribed: nothing to push to.
    assert dict(Delivery.objects.values_list("channel", "status")) == {"email": DeliveryStatus.SENT}


def test_a_payment_credited_from_a_statement_tells_once(market, run_after_commit, mailoutbox):
    facts = {"provider": "bank", "scope": "testbank", "payment_id": "e2e-7", "chaincode": "retail-seller",
             "payer": "hh-alice", "payee": "utility", "amount": 2000, "currency": "INR",
             "created": datetime(2026, 3, 1, 12, tzinfo=UTC), "origin": "statement:test"}
    first = run_after_commit(payment_credit, **facts)
    second = run_after_commit(payment_credit, **facts)
    assert (first.status, second.status) == ("applied", "duplicate")
    assert [n.event_key for n in Notification.objects.all()] == [f"payment-credited:{first.payment}"]
    assert len(mailoutbox) == 1


def test_a_failing_receiver_never_undoes_the_credit(market, run_after_commit, monkeypatch):
    def broken(**kwargs):
        with transaction.atomic(), connection.cursor() as cur:
            cur.execute("SELECT * FROM notifications_no_such_table")

    monkeypatch.setattr(services, "notify_payment_credited", broken)
    response = deliver(market, run_after_commit, id="pay-2", amount=1001)
    assert response.status_code == 200 and response.json()["status"] == "applied"
    assert market.household_balance() == 1251
    assert Payment.objects.get(payment_id="pay-2").state == "credited"
    assert Notification.objects.count() == 0


def test_the_same_event_recorded_twice_notifies_each_user_once(market, run_after_commit):
    kwargs = {"kind": Kind.PAYMENT_CREDITED, "event_key": "payment-credited:999", "user_ids": [market.resident.pk],
              "data": {"wh": 5}}
    assert len(run_after_commit(services.notifications_create, **kwargs)) == 1
    assert run_after_commit(services.notifications_create, **kwargs) == []
    assert Delivery.objects.count() == 1  # e-mail, once
