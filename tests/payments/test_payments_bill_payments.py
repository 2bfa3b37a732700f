"""Bill payments: a bank notification or a Stripe payment whose metadata names a household's
``bill_account`` pays its dues through ``energy-billing.payDues``, oldest items first, with every
exactly-once rule of the payments path (redelivery, the same payment in another event, racing
deliveries); an overpayment stays credit; a refused payment is a 422 and the payment failed."""

from __future__ import annotations

import itertools
import threading
from datetime import date

import pytest
from django.db import connection
from django.test import Client

from accounts.services import invoke_as, service_identity
from ledger import services as ledger
from ledger.chaincodes import billing_math as bm
from ledger.keys import dues_key
from ledger.models import OrgType, StateEntry, Transaction
from payments.models import Payment, WebhookEvent
from payments.signals import payment_credited
from payments.testing import Market, build_market

from .stripe_kit import SECRETS, event_for, post

pytestmark = pytest.mark.postgres

STATION = "st-pay"
_ids = itertools.count(1)


def dues(msp: str = "hh-alice") -> dict:
    return StateEntry.objects.get(namespace="billing", key=dues_key(msp), is_deleted=False).value


class Billing:
    """A grid, a distributor with a station serving the market's household, the utility's dues
    terms (threshold 1000 paise, fine 100)."""

    def __init__(self, market: Market):
        self.market = market
        self.grid = service_identity(organisation=ledger.organisation_create(
            msp_id="grid-op", name="Grid", org_type=OrgType.GRID), name="operator")
        self.distributor = service_identity(organisation=ledger.organisation_create(
            msp_id="discom", name="Discom", org_type=OrgType.DISTRIBUTOR), name="operator")
        self.invoke(self.distributor, "registerStation", {"stationId": STATION, "societies": ["hh-alice"]})
        self.invoke(market.operator, "configure", {"dues_threshold": 1000, "fine": 100})

    def invoke(self, identity, function: str, args: dict):
        result = invoke_as(identity=identity, chaincode="energy-billing", function=function, args=args,
                           idempotency_key=f"bill-test-{next(_ids)}")
        assert result.ok, result.reason
        return result.result

    def day(self, day: date, wh: int) -> None:
        """One slot of ``day`` billed (4990 cHz: 1000 Wh = 386 paise), then the day closed."""
        start, end = bm.day_slots(day, "Asia/Kolkata")[40]
        slot = {"startTime": start.isoformat(), "endTime": end.isoformat()}
        self.invoke(self.grid, "initFreq", slot | {"avgFreq": 4990})
        self.invoke(self.distributor, "initUnit", {"societyId": "hh-alice", "stationId": STATION} | slot | {"unit": wh})
        self.invoke(self.distributor, "initStationBill", {"stationId": STATION} | slot)
        self.invoke(self.distributor, "closeDay", {"stationId": STATION, "date": day.isoformat()})


@pytest.fixture
def market(db, settings):
    settings.STRIPE_WEBHOOK_SECRETS = SECRETS
    return build_market(stock=0, prices=False)


@pytest.fixture
def billing(market) -> Billing:
    return Billing(market)


def bill_payment(market: Market, event_id: str, amount: int, **overrides) -> dict:
    body = market.notification(id=event_id, amount=amount, chaincode="energy-billing",
                               metadata={"bill_account": "bill:hh-alice"})
    body.update(overrides)
    return body


def test_a_bank_payment_pays_dues_oldest_first(market, billing):
    billing.day(date(2026, 6, 1), 3000)  # 1159 > 1000: fined 100
    billing.day(date(2026, 6, 2), 1000)  # 386
    assert dues()["outstanding"] == 1645 and dues()["fines"] == 1
    heard = []
    payment_credited.connect(lambda sender, **kw: heard.append(kw), dispatch_uid="test-bill", weak=False)
    try:
        response = market.deliver(bill_payment(market, "bill-1", 1200))
    finally:
        payment_credited.disconnect(dispatch_uid="test-bill")
    assert response.status_code == 200, response.content
    answer = response.json()
    assert answer["status"] == "applied" and answer["outstanding"] == 445
    assert answer["cleared"] == [{"id": f"statement:{STATION}:2026-06-01", "amount": 1159},
                                 {"id": "fine:1", "amount": 41}]
    tx = Transaction.objects.get(tx_hash=answer["tx_hash"])
    assert (tx.chaincode, tx.function, tx.status) == ("energy-billing", "payDues", "valid")
    assert tx.args == {"event_id": "bill-1", "payer": "hh-alice", "payee": "utility", "amount": 1200,
                       "currency": "INR", "paid_at": "2026-03-01T12:00:00+00:00", "account": "bill:hh-alice"}
    payment = Payment.objects.get()
    assert (payment.chaincode, payment.purpose, payment.state) == ("energy-billing", "bill:hh-alice", "credited")
    assert WebhookEvent.objects.get().event_type == "energy-billing.payDues"
    assert [h["chaincode"] for h in heard] == ["energy-billing"]
    assert dues()["outstanding"] == 445 and not dues()["in_breach"]


def test_redelivery_and_a_second_report_pay_once_and_overpayment_is_credit(market, billing):
    billing.day(date(2026, 6, 1), 1000)  # 386
    body = bill_payment(market, "bill-2", 500)
    first = market.deliver(body).json()
    assert first["status"] == "applied"
    again = market.deliver(body).json()
    assert again["status"] == "duplicate" and again["tx_hash"] == first["tx_hash"]
    other = market.deliver(bill_payment(market, "bill-2-again", 500, end_to_end_id="bill-2")).json()
    assert other["status"] == "duplicate"
    assert dues()["paid"] == 500 and dues()["credit"] == 114 and dues()["outstanding"] == 0
    clash = market.deliver(bill_payment(market, "bill-2-clash", 500, end_to_end_id="bill-2",
                                        metadata={"bill_account": "bill:hh-other"}))
    assert clash.status_code == 409 and "bill:hh-alice" in clash.json()["error"]
    billing.day(date(2026, 6, 2), 1000)  # the credit pays part of the next day
    assert dues()["credit"] == 0 and dues()["outstanding"] == 386 - 114
    assert Transaction.objects.filter(function="payDues").count() == 1


@pytest.mark.parametrize("change, words", [
    ({"metadata": {"bill_account": "bill:hh-nobody"}}, "unknown bill account 'bill:hh-nobody'"),
    ({"currency": "USD"}, "dues are paid in INR to utility"),
    ({"payee": "other-utility"}, "dues are paid in INR to utility"),
])
def test_a_refused_bill_payment_is_422_and_the_payment_failed(market, billing, change, words):
    ledger.organisation_create(msp_id="other-utility", name="Other", org_type=OrgType.UTILITY)
    ledger.asset_create(code="USD", name="Dollar", scale=2, display_unit="USD", issuer=market.utility)
    billing.day(date(2026, 6, 1), 1000)
    response = market.deliver(bill_payment(market, "bill-bad", 300, **change))
    assert response.status_code == 422, response.content
    assert words in response.json()["error"] and response.json()["retry"] is False
    payment = Payment.objects.get()
    assert payment.state == "failed" and words in payment.reason
    assert dues()["paid"] == 0
    again = market.deliver(bill_payment(market, "bill-bad", 300, **change))
    assert again.status_code == 422 and again.json()["status"] == "duplicate"


@pytest.mark.parametrize("change, words", [
    ({"metadata": {"bill_account": "hh-alice"}}, "bill:<household msp id>"),
    ({"metadata": {"bill_account": "bill:hh-alice", "campaign": "winter"}}, "a payment pays one of them"),
    ({"chaincode": "wholesale-seller"}, "pays energy-billing"),
    ({"chaincode": "energy-billing", "metadata": None}, "name a bill_account"),
])
def test_malformed_bill_payments_are_refused_400(market, billing, change, words):
    body = bill_payment(market, "bill-malformed", 300)
    body.update(change)
    response = market.deliver(body)
    assert response.status_code == 400 and words in response.json()["error"], response.content
    assert not Payment.objects.exists()


def test_a_retail_seller_notification_naming_a_bill_account_pays_dues(market, billing):
    billing.day(date(2026, 6, 1), 1000)
    body = market.notification(id="bill-rs", amount=386, metadata={"bill_account": "bill:hh-alice"})
    assert market.deliver(body).json()["status"] == "applied"
    assert dues()["outstanding"] == 0 and market.household_balance() == 0


def test_a_stripe_payment_pays_dues_once(market, billing):
    ledger.organisation_create(msp_id="stripebank", name="Stripe", org_type=OrgType.BANK)
    billing.day(date(2026, 6, 1), 1000)
    client = Client()
    for event_type, event_id in (("checkout.session.completed", "evt_bill_1"),
                                 ("payment_intent.succeeded", "evt_bill_2")):
        event = event_for(event_type, event_id=event_id, payment_intent="pi_bill")
        obj = event["data"]["object"]
        obj["metadata"] = {"bill_account": "bill:hh-alice", "payer": "hh-alice", "payee": "utility",
                           "bank": "stripebank"}
        obj.update({"amount_total": 400, "currency": "inr"} if obj["object"] == "checkout.session" else
                   {"amount": 400, "amount_received": 400, "currency": "inr"})
        answer = post(client, event).json()
        assert answer["status"] == ("applied" if event_id == "evt_bill_1" else "duplicate"), answer
    payment = Payment.objects.get()
    assert (payment.provider, payment.purpose, payment.state) == ("stripe", "bill:hh-alice", "credited")
    assert dues()["paid"] == 400 and dues()["credit"] == 14


@pytest.mark.django_db(transaction=True)
def test_racing_deliveries_of_one_bill_payment_pay_once(settings):
    market = build_market(stock=0, prices=False)
    billing = Billing(market)
    billing.day(date(2026, 6, 1), 1000)
    barrier = threading.Barrier(6)
    answers: list[str] = []

    def deliver(n: int) -> None:
        try:
            barrier.wait()
            body = bill_payment(market, f"evt-bill-race-{n % 3}", 200, end_to_end_id="bill-race")
            answers.append(market.deliver(body).json()["status"])
        finally:
            connection.close()

    threads = [threading.Thread(target=deliver, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert answers.count("applied") == 1 and answers.count("duplicate") == 5, answers
    assert Transaction.objects.filter(function="payDues", status="valid").count() == 1
    assert dues()["paid"] == 200 and dues()["outstanding"] == 186
    assert WebhookEvent.objects.count() == 6 and Payment.objects.get().state == "credited"




# --- the payment simulator ----------------------------------------------------------------------

SIMULATOR = "/payments/simulator/"


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_the_simulator_prefills_a_bill_payment_with_the_outstanding_dues(market, billing):
    billing.day(date(2026, 6, 1), 3000)  # 1159 + fine 100
    alice = signed_in(market.resident)
    page = alice.get(SIMULATOR, {"bill_account": "bill:hh-alice"})
    assert page.status_code == 200
    initial = page.context["form"].initial
    assert initial == {"bill_account": "bill:hh-alice", "chaincode": "energy-billing", "payer": "hh-alice",
                       "currency": "INR", "payee": "utility", "amount": "12.59"}
    response = alice.post(SIMULATOR, {**initial, "bank": "testbank"})
    assert response.status_code == 200
    assert "Dues paid" in response.content.decode()
    assert dues()["outstanding"] == 0 and dues()["paid"] == 1259
    assert WebhookEvent.objects.get().event_type == "energy-billing.payDues"


def test_the_simulator_shows_no_one_else_s_dues_and_residents_pay_only_their_own(market, billing):
    billing.day(date(2026, 6, 1), 1000)
    from accounts.services import user_signup

    bob = user_signup(username="bob", password="bob-password-1")
    client = signed_in(bob)
    page = client.get(SIMULATOR, {"bill_account": "bill:hh-alice"})
    assert "amount" not in page.context["form"].initial  # alice's dues are not bob's to see
    paid = client.post(SIMULATOR, {"payer": "hh-bob", "payee": "utility", "chaincode": "energy-billing",
                                   "bank": "testbank", "amount": "1.00", "currency": "INR",
                                   "bill_account": "bill:hh-alice"})
    assert paid.status_code == 403 and dues()["paid"] == 0
    missing = signed_in(market.resident).post(SIMULATOR, {"payer": "hh-alice", "payee": "utility",
                                                          "chaincode": "energy-billing", "bank": "testbank",
                                                          "amount": "1.00", "currency": "INR"})
    assert "names the bill account" in missing.content.decode() and not WebhookEvent.objects.exists()
