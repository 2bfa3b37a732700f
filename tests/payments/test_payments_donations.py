"""Charity payments: a bank notification or a Stripe payment whose metadata names a campaign (or a
group funding) invokes charity-pool's ``donate`` (``contribute_paid``) instead of a seller's
``sell``, with every exactly-once rule of the payments path; the donor's off-chain details stay on
the Payment row and travel in ``donation_credited``, never onto the chain; a refused donation is
recorded like a refused sale; our own refund of a donation, reported back by the processor, is
recorded without moving coins a second time."""

from __future__ import annotations

import json
import threading

import pytest
import stripe
from django.db import connection
from django.test import Client

from ledger.chaincodes.energy_math import fiat_to_wh
from ledger.keys import escrow_account, pool_account
from ledger.models import StateEntry, Transaction
from payments import services
from payments.models import Payment, PaymentReversal, WebhookEvent
from payments.signals import donation_credited, payment_credited
from payments.testing import RETAIL_PRICE, balance, build_market

from .stripe_kit import SECRETS, FakeStripeAPI, assert_conserved_and_verified, event_for, post


@pytest.fixture(autouse=True)
def eager_tasks(settings):
    """After-commit work (the refund's send task) runs in-process, as in the embedded default."""
    from gridcoin.celery import app

    before = app.conf.task_always_eager
    settings.CELERY_TASK_ALWAYS_EAGER = True
    app.conf.update(CELERY_TASK_ALWAYS_EAGER=True)
    yield
    app.conf.update(CELERY_TASK_ALWAYS_EAGER=before)


@pytest.fixture
def told():
    """What ``donation_credited`` (and ``payment_credited``) told receivers."""
    heard: dict[str, list[dict]] = {"donation": [], "payment": []}

    def on_donation(sender, **kwargs):
        kwargs.pop("signal")
        heard["donation"].append(kwargs)

    def on_payment(sender, **kwargs):
        heard["payment"].append(kwargs)

    donation_credited.connect(on_donation, dispatch_uid="test-donation")
    payment_credited.connect(on_payment, dispatch_uid="test-payment")
    yield heard
    donation_credited.disconnect(dispatch_uid="test-donation")
    payment_credited.disconnect(dispatch_uid="test-payment")


@pytest.fixture
def market(db, settings):
    settings.STRIPE_WEBHOOK_SECRETS = SECRETS
    settings.STRIPE_SECRET_KEY = "sk_test_fake"
    settings.PAYMENTS_BANK_REFUND_SENDER = "payments.simulator.simulated_bank_refund"
    market = build_market()
    market.open_campaign("winter")
    return market


DONOR = {"donor_name": "Asha Verma", "show_name": "true"}


def wh_for(amount: int) -> int:
    return fiat_to_wh(amount=amount, credit=0, price_per_kwh=RETAIL_PRICE).wh


def nowhere_on_the_ledger(text: str) -> None:
    """``text`` appears in no transaction's arguments, result or world-state value."""
    for args, result in Transaction.objects.values_list("args", "result"):
        assert text not in json.dumps(args) and text not in json.dumps(result)
    for (value,) in StateEntry.objects.values_list("value"):
        assert text not in json.dumps(value)


# --- bank donations -----------------------------------------------------------------------------

def test_a_bank_donation_is_routed_to_charity_pool_and_its_donor_kept_off_the_chain(market, told):
    body = market.donation("winter", id="don-1", amount=8000,
                           metadata={"campaign": "winter", **DONOR, "donor_user": str(market.resident.pk)})
    response = market.deliver(body)
    assert response.status_code == 200, response.content
    answer = response.json()
    assert answer["status"] == "applied" and answer["wh"] == wh_for(8000) == 10_000
    assert answer["campaign"] == "winter" and answer["payment_id"] == "don-1"
    tx = Transaction.objects.get(tx_hash=answer["tx_hash"])
    assert (tx.chaincode, tx.function, tx.status) == ("charity-pool", "donate", "valid")
    assert tx.args == {"event_id": "don-1", "payer": "hh-alice", "payee": "utility", "amount": 8000,
                       "currency": "INR", "paid_at": "2026-03-01T12:00:00+00:00", "campaign": "winter"}
    assert tx.idempotency_key == "payment:bank:testbank:don-1" and tx.invoker.qualified_name == "testbank/webhooks"
    assert balance(pool_account("winter")) == 10_000 and market.household_balance() == 0
    payment = Payment.objects.get()
    assert (payment.chaincode, payment.purpose, payment.state, payment.credit_tx_hash) == (
        "charity-pool", "campaign:winter", "credited", tx.tx_hash)
    assert payment.details == {"donor_name": "Asha Verma", "show_name": True, "donor_user": market.resident.pk}
    audit = WebhookEvent.objects.get()
    assert (audit.event_type, audit.status, audit.payment) == ("charity-pool.donate", "applied", payment)
    [heard] = told["donation"]
    assert heard == {"payment": payment.pk, "provider": "bank", "payment_id": "don-1", "donation_id": "don-1",
                     "campaign": "winter", "group": "", "payer": "hh-alice", "payee": "utility", "amount": 8000,
                     "currency": "INR", "paid_at": payment.created, "tx_hash": tx.tx_hash, "result": tx.result,
                     "donor_name": "Asha Verma", "show_name": True, "donor_user": market.resident.pk}
    assert told["payment"] == []  # not a purchase: the household is not told it bought coins
    nowhere_on_the_ledger("Asha")


def test_a_redelivered_or_re_reported_donation_changes_nothing(market, told):
    body = market.donation("winter", id="don-2", amount=4000)
    first = market.deliver(body).json()
    again = market.deliver(body)
    assert again.status_code == 200 and again.json()["status"] == "duplicate"
    assert again.json()["tx_hash"] == first["tx_hash"]
    # The same payment in another notification (a second event id, the same end-to-end id).
    other = market.deliver(market.donation("winter", id="don-2-again", end_to_end_id="don-2", amount=4000)).json()
    assert other["status"] == "duplicate" and other["tx_hash"] == first["tx_hash"]
    assert balance(pool_account("winter")) == wh_for(4000)
    assert Transaction.objects.filter(chaincode="charity-pool", function="donate").count() == 1
    assert len(told["donation"]) == 1 and WebhookEvent.objects.count() == 3


def test_the_same_payment_named_for_another_campaign_is_a_conflict(market):
    market.open_campaign("summer")
    market.deliver(market.donation("winter", id="don-3", amount=4000))
    clash = market.deliver(market.donation("summer", id="don-3b", end_to_end_id="don-3", amount=4000,
                                           metadata={"campaign": "summer"}))
    assert clash.status_code == 409 and "purpose 'campaign:winter'" in clash.json()["error"]
    # An event id reused for another payment's donation, too.
    reused = market.deliver(market.donation("summer", id="don-3", amount=4000, metadata={"campaign": "summer"}))
    assert reused.status_code == 409
    assert balance(pool_account("summer")) == 0 and balance(pool_account("winter")) == wh_for(4000)


def test_a_donor_without_an_account_donates(market, told):
    body = market.donation("winter", id="don-anon", amount=1600, metadata={"campaign": "winter"})
    del body["payer"]
    answer = market.deliver(body).json()
    assert answer["status"] == "applied", answer
    assert Transaction.objects.get(tx_hash=answer["tx_hash"]).args["payer"] == ""
    assert Payment.objects.get().payer == "" and balance(pool_account("winter")) == wh_for(1600)
    assert told["donation"][0]["payer"] == "" and told["donation"][0]["donor_name"] == ""


def test_a_retail_seller_notification_naming_a_campaign_is_a_donation(market):
    body = market.notification(id="don-rs", amount=800, metadata={"campaign": "winter"})
    assert body["chaincode"] == "retail-seller"
    assert market.deliver(body).json()["status"] == "applied"
    assert market.household_balance() == 0 and balance(pool_account("winter")) == 1000


@pytest.mark.parametrize("metadata, words", [
    ({"campaign": "no-such-campaign"}, "no campaign 'no-such-campaign'"),
    ({"campaign": "winter"}, "takes INR paid to utility"),  # paid to another payee
])
def test_a_refused_donation_is_audited_and_recorded_failed(market, told, metadata, words):
    from ledger import services as ledger
    from ledger.models import OrgType

    ledger.organisation_create(msp_id="other-utility", name="Other", org_type=OrgType.UTILITY)
    payee = "other-utility" if "takes" in words else "utility"
    body = market.donation("winter", id="don-bad", amount=800, payee=payee, metadata=metadata)
    response = market.deliver(body)
    assert response.status_code == 422 and words in response.json()["error"]
    assert response.json()["retry"] is False
    payment = Payment.objects.get()
    assert payment.state == "failed" and words in payment.reason
    audit = WebhookEvent.objects.get()
    assert (audit.status, audit.http_status, audit.payment) == ("rejected", 422, payment)
    tx = Transaction.objects.get(tx_hash=audit.tx_hash)
    assert tx.status == "rejected" and (tx.chaincode, tx.function) == ("charity-pool", "donate")
    assert told["donation"] == []
    again = market.deliver(body)  # the refusal is final: a redelivery replays it
    assert again.status_code == 422 and again.json()["status"] == "duplicate"


def test_a_donation_to_a_cancelled_campaign_is_refused(market):
    assert market.charity_invoke("cancel", {"campaign": "winter", "reason": "flooded"}).ok
    response = market.deliver(market.donation("winter", id="don-late", amount=800))
    assert response.status_code == 422 and "campaign winter is cancelled" in response.json()["error"]
    assert balance(pool_account("winter")) == 0


@pytest.mark.parametrize("change, words", [
    ({"metadata": {"campaign": "winter", "group": "lights"}}, "both a campaign and a group"),
    ({"metadata": {"campaign": "bad slug!"}}, "must be a slug"),
    ({"chaincode": "wholesale-seller"}, "pays charity-pool"),
    ({"chaincode": "charity-pool", "metadata": None}, "name a campaign or a group"),
    ({"metadata": "winter"}, "'metadata' must be an object"),
])
def test_malformed_charity_notifications_are_refused_400(market, change, words):
    body = market.donation("winter", id="don-malformed", amount=800)
    body.update(change)
    if body.get("metadata") is None:
        body.pop("metadata")
    response = market.deliver(body)
    assert response.status_code == 400 and words in response.json()["error"], response.json()
    assert not Payment.objects.exists() and WebhookEvent.objects.get().status == "rejected"


def test_malformed_donor_details_never_refuse_the_money(market, told):
    body = market.donation("winter", id="don-odd", amount=800,
                           metadata={"campaign": "winter", "donor_name": 42, "show_name": "true", "donor_user": "x1"})
    assert market.deliver(body).json()["status"] == "applied"
    heard = told["donation"][0]
    assert (heard["donor_name"], heard["show_name"], heard["donor_user"]) == ("", False, None)


# --- group fundings ---------------------------------------------------------------------------

def test_a_bank_contribution_pays_into_the_group_escrow(market, told):
    market.open_group("lights")
    body = market.notification(id="con-1", amount=2400, chaincode="charity-pool", metadata={"group": "lights"})
    answer = market.deliver(body).json()
    assert answer["status"] == "applied" and answer["group"] == "lights"
    tx = Transaction.objects.get(tx_hash=answer["tx_hash"])
    assert (tx.function, tx.args["group"], tx.args["payer"]) == ("contribute_paid", "lights", "hh-alice")
    assert balance(escrow_account("lights")) == wh_for(2400)
    [heard] = told["donation"]
    assert (heard["group"], heard["campaign"], heard["donation_id"]) == ("lights", "", "con-1")
    assert WebhookEvent.objects.get().event_type == "charity-pool.contribute_paid"
    assert market.deliver(body).json()["status"] == "duplicate"
    assert balance(escrow_account("lights")) == wh_for(2400)


def test_a_contribution_needs_a_household_payer(market):
    market.open_group("lights")
    body = market.notification(id="con-2", amount=2400, metadata={"group": "lights"})
    del body["payer"]
    response = market.deliver(body)
    assert response.status_code == 400 and "missing field: payer" in response.json()["error"]


# --- Stripe ---------------------------------------------------------------------------------

def stripe_donation(market, event_type: str, *, intent: str, event_id: str, amount: int, **metadata):
    event = event_for(event_type, event_id=event_id, payment_intent=intent)
    obj = event["data"]["object"]
    obj["metadata"] = {"campaign": "winter", "payee": "utility", "bank": "stripebank", **metadata}
    obj.update({"amount_total": amount} if obj["object"] == "checkout.session" else
               {"amount": amount, "amount_received": amount})
    return event


@pytest.fixture
def stripe_bank(market):
    from ledger import services as ledger
    from ledger.models import OrgType

    return ledger.organisation_create(msp_id="stripebank", name="Stripe", org_type=OrgType.BANK)


def test_a_stripe_donation_is_credited_once_whichever_event_reports_it(client, market, stripe_bank, told):
    paid = stripe_donation(market, "payment_intent.succeeded", intent="pi_don_1", event_id="evt_don_1", amount=8000,
                           donor_name="Ravi", show_name="false", donor_user=str(market.resident.pk))
    first = post(client, paid)
    assert first.status_code == 200, first.content
    assert first.json()["status"] == "applied" and first.json()["campaign"] == "winter"
    session = stripe_donation(market, "checkout.session.completed", intent="pi_don_1", event_id="evt_don_2",
                              amount=8000, donor_name="Ravi")
    again = post(client, session).json()
    assert again["status"] == "duplicate" and again["tx_hash"] == first.json()["tx_hash"]
    assert post(client, paid).json()["status"] == "duplicate"
    tx = Transaction.objects.get(tx_hash=first.json()["tx_hash"])
    assert tx.args["payer"] == "" and tx.idempotency_key == "payment:stripe::pi_don_1"
    assert balance(pool_account("winter")) == wh_for(8000)
    [heard] = told["donation"]
    assert (heard["provider"], heard["payment_id"], heard["donor_name"], heard["show_name"], heard["donor_user"]) == (
        "stripe", "pi_don_1", "Ravi", False, market.resident.pk)
    nowhere_on_the_ledger("Ravi")


def test_a_delayed_stripe_donation_keeps_the_donor_of_its_first_report(client, market, stripe_bank, told):
    waiting = stripe_donation(market, "checkout.session.completed", intent="pi_don_2", event_id="evt_wait",
                              amount=4000, donor_name="Meera", show_name="yes", payer="hh-alice")
    waiting["data"]["object"]["payment_status"] = "unpaid"
    assert post(client, waiting).json()["status"] == "pending"
    assert Payment.objects.get().details == {"donor_name": "Meera", "show_name": True}
    paid = stripe_donation(market, "checkout.session.async_payment_succeeded", intent="pi_don_2", event_id="evt_paid",
                           amount=4000, payer="hh-alice")
    assert post(client, paid).json()["status"] == "applied"
    [heard] = told["donation"]
    assert (heard["donor_name"], heard["show_name"], heard["payer"]) == ("Meera", True, "hh-alice")


def test_a_failed_stripe_donation_is_recorded_failed_and_a_later_success_credits_it(
        client, market, stripe_bank, told):
    failed = stripe_donation(market, "payment_intent.payment_failed", intent="pi_don_f", event_id="evt_don_f",
                             amount=4000, donor_name="Ira")
    assert post(client, failed).json()["status"] == "failed"
    payment = Payment.objects.get()
    assert (payment.state, payment.purpose, payment.details) == ("failed", "campaign:winter", {"donor_name": "Ira"})
    assert told["donation"] == [] and balance(pool_account("winter")) == 0
    retried = stripe_donation(market, "payment_intent.succeeded", intent="pi_don_f", event_id="evt_don_ok",
                              amount=4000, donor_name="Ira")
    assert post(client, retried).json()["status"] == "applied"
    assert balance(pool_account("winter")) == wh_for(4000) and told["donation"][0]["donor_name"] == "Ira"


# --- concurrency ------------------------------------------------------------------------------

@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_deliveries_of_one_donation_credit_it_once(settings):
    settings.PAYMENTS_BANK_REFUND_SENDER = ""
    market = build_market()
    market.open_campaign("winter")
    barrier = threading.Barrier(6)
    answers: list[str] = []

    def deliver(n: int) -> None:
        try:
            barrier.wait()
            body = market.donation("winter", id=f"evt-race-{n % 3}", end_to_end_id="don-race", amount=4000)
            answers.append(market.deliver(body).json()["status"])
        finally:
            connection.close()

    threads = [threading.Thread(target=deliver, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert answers.count("applied") == 1 and answers.count("duplicate") == 5, answers
    assert Transaction.objects.filter(chaincode="charity-pool", function="donate").count() == 1
    assert balance(pool_account("winter")) == wh_for(4000)
    assert WebhookEvent.objects.count() == 6 and Payment.objects.get().state == "credited"


# --- refunds of donations, end to end ---------------------------------------------------------

def refund_of(market, donation: str) -> dict:
    result = market.charity_invoke("refund", {"campaign": "winter", "donation": donation})
    assert result.ok, result.reason
    return result.result


def test_a_refunded_bank_donation_comes_back_as_a_return_recorded_once(market, django_capture_on_commit_callbacks):
    market.deliver(market.donation("winter", id="don-r1", amount=8000))
    assert market.charity_invoke("cancel", {"campaign": "winter", "reason": "flooded"}).ok
    booked = refund_of(market, "don-r1")
    assert booked["refunded_amount"] == 8000 and booked["refunded_wh"] == 10_000
    pool, stock, txs = balance(pool_account("winter")), market.utility_stock(), Transaction.objects.count()
    with django_capture_on_commit_callbacks(execute=True):
        refund = services.payment_refund_request(provider="bank", scope="testbank", payment_id="don-r1",
                                                 amount=booked["refunded_amount"], reason="campaign cancelled",
                                                 idempotency_key="charity-refund:winter:don-r1")
    refund.refresh_from_db()
    assert refund.state == "sent"
    reversal = PaymentReversal.objects.get()
    assert refund.echo == reversal and reversal.tx_hash is None and reversal.kind == "return"
    # The charity-pool refund moved the coins once; the bank's report of it moved nothing more.
    assert (balance(pool_account("winter")), market.utility_stock(), Transaction.objects.count()) == (pool, stock, txs)
    payment = Payment.objects.get()
    assert payment.amount_reversed == 8000
    audit = WebhookEvent.objects.get(event_id=refund.provider_reference)
    assert audit.status == "recorded" and audit.payment == payment
    with pytest.raises(services.RefundRefused, match="0 of 8000"):
        services.payment_refund_request(provider="bank", scope="testbank", payment_id="don-r1", amount=1,
                                        reason="again", idempotency_key="another-key")
    assert_conserved_and_verified()


def test_a_refunded_stripe_donation_echoed_by_charge_refunded_is_not_reversed_again(
        client, market, stripe_bank, monkeypatch, django_capture_on_commit_callbacks):
    fake = FakeStripeAPI()
    monkeypatch.setattr(stripe, "default_http_client", fake)
    paid = stripe_donation(market, "payment_intent.succeeded", intent="pi_don_r", event_id="evt_don_r", amount=6000,
                           payer="hh-alice")
    assert post(client, paid).json()["status"] == "applied"
    assert market.charity_invoke("cancel", {"campaign": "winter", "reason": "flooded"}).ok
    booked = refund_of(market, "pi_don_r")
    with django_capture_on_commit_callbacks(execute=True):
        refund = services.payment_refund_request(provider="stripe", scope="", payment_id="pi_don_r",
                                                 amount=booked["refunded_amount"], reason="campaign cancelled",
                                                 idempotency_key="charity-refund:winter:pi_don_r")
    refund.refresh_from_db()
    assert refund.state == "sent" and len(fake.refunds) == 1 and fake.refunds[0]["amount"] == 6000
    state = (balance(pool_account("winter")), market.utility_stock(), market.household_balance(),
             Transaction.objects.count())
    echo = event_for("charge.refunded", event_id="evt_echo_r", payment_intent="pi_don_r", amount=6000,
                     amount_refunded=6000)
    body = post(client, echo).json()
    assert body["status"] == "recorded" and body["own_refunds"] == ["charity-refund:winter:pi_don_r"]
    assert post(client, echo).json()["status"] == "duplicate"
    assert (balance(pool_account("winter")), market.utility_stock(), market.household_balance(),
            Transaction.objects.count()) == state
    assert PaymentReversal.objects.get().tx_hash is None
    assert_conserved_and_verified()


# --- the payment simulator ----------------------------------------------------------------------

def test_a_resident_donates_through_the_payment_simulator(market, told):
    browser = Client()
    browser.force_login(market.resident)
    page = browser.get("/payments/simulator/?campaign=winter")
    assert page.status_code == 200
    html = page.content.decode()
    assert 'name="campaign"' in html and 'value="winter"' in html
    assert '<option value="charity-pool" selected>' in html and '<option value="utility" selected>' in html
    response = browser.post("/payments/simulator/", {
        "payer": "hh-alice", "payee": "utility", "chaincode": "charity-pool", "bank": "testbank", "amount": "20.00",
        "currency": "INR", "campaign": "winter", "donor_name": "Alice A.", "show_name": "on"})
    assert response.status_code == 200
    assert "Donation applied" in response.content.decode() and "/campaigns/winter/" in response.content.decode()
    assert balance(pool_account("winter")) == wh_for(2000)
    [heard] = told["donation"]
    assert (heard["donor_name"], heard["show_name"], heard["donor_user"], heard["payer"]) == (
        "Alice A.", True, market.resident.pk, "hh-alice")
    nowhere_on_the_ledger("Alice A.")


def test_the_simulator_refuses_a_donation_without_a_campaign_and_a_resident_paying_for_others(market):
    browser = Client()
    browser.force_login(market.resident)
    form = {"payer": "hh-alice", "payee": "utility", "chaincode": "charity-pool", "bank": "testbank",
            "amount": "20.00", "currency": "INR"}
    page = browser.post("/payments/simulator/", form).content.decode()
    assert "A donation names the campaign it goes to." in page
    assert browser.post("/payments/simulator/", {**form, "campaign": "winter", "payer": "sunfarm"}).status_code == 403
    assert browser.post("/payments/simulator/", {**form, "chaincode": "retail-seller", "campaign": "winter"}
                        ).content.decode().count("A payment to a campaign pays charity-pool.") == 1
    assert not Payment.objects.exists()


def test_the_simulator_shows_a_refused_donation(market):
    browser = Client()
    browser.force_login(market.resident)
    page = browser.post("/payments/simulator/", {
        "payer": "hh-alice", "payee": "utility", "chaincode": "charity-pool", "bank": "testbank", "amount": "20.00",
        "currency": "INR", "campaign": "nope"}).content.decode()
    assert "Payment refused (422)" in page and "no campaign" in page
    assert WebhookEvent.objects.get().status == "rejected"
