"""Refunds GridCoin sends (payments.refunds): requested once per idempotency key and only up to
what is still refundable, sent by a task that may be retried (Stripe through its API, faked at
the HTTP client; a bank through the simulated bank), never refunding twice, and recognised when
the processor reports them back: a charity payment's refund (booked on the ledger by
charity-pool.refund) is recorded, not reversed a second time."""

from __future__ import annotations

from datetime import timedelta

import pytest
import stripe
from django.utils import timezone

from ledger.models import Transaction
from payments import refunds, services
from payments.models import Payment, PaymentRefund, PaymentReversal, WebhookEvent
from payments.refunds import RefundInstruction, SendResult, bank_return_id
from payments.testing import build_market

from .stripe_kit import SECRETS, FakeStripeAPI, assert_conserved_and_verified, event_for, fixture, post


@pytest.fixture(autouse=True)
def eager_tasks(settings):
    """The send task runs in-process after the commit, as in the embedded default (the suite
    may have REDIS_URL set)."""
    from gridcoin.celery import app

    before = app.conf.task_always_eager
    settings.CELERY_TASK_ALWAYS_EAGER = True
    app.conf.update(CELERY_TASK_ALWAYS_EAGER=True)
    yield
    app.conf.update(CELERY_TASK_ALWAYS_EAGER=before)


@pytest.fixture
def market(db, settings):
    settings.STRIPE_WEBHOOK_SECRETS = SECRETS
    settings.STRIPE_SECRET_KEY = "sk_test_fake"
    settings.PAYMENTS_BANK_REFUND_SENDER = "payments.simulator.simulated_bank_refund"
    return build_market()


@pytest.fixture
def fake_stripe(monkeypatch):
    api = FakeStripeAPI()
    monkeypatch.setattr(stripe, "default_http_client", api)
    return api


def charity_payment(market, *, provider="bank", payment_id="don-1", amount=5000, payer=None) -> Payment:
    """A donation as the payments path leaves it once charity-pool.donate accepted it."""
    now = timezone.now()
    return Payment.objects.create(
        provider=provider, scope=market.bank.msp_id if provider == "bank" else "", payment_id=payment_id,
        chaincode="charity-pool", purpose="campaign:winter", payer=market.household.msp_id if payer is None else payer,
        payee=market.utility.msp_id, amount=amount, currency="INR", state="credited", created=now, credited_at=now,
        credit_tx_hash="ab" * 32)


def request(payment: Payment, amount: int, key: str, reason: str = "campaign cancelled") -> PaymentRefund:
    return services.payment_refund_request(provider=payment.provider, scope=payment.scope,
                                           payment_id=payment.payment_id, amount=amount, reason=reason,
                                           idempotency_key=key)


def expire_lease(refund: PaymentRefund) -> None:
    PaymentRefund.objects.filter(pk=refund.pk).update(next_attempt_at=timezone.now() - timedelta(seconds=1))


# --- requesting ------------------------------------------------------------------------------

def test_the_same_key_returns_the_same_refund(market, django_capture_on_commit_callbacks):
    payment = charity_payment(market)
    with django_capture_on_commit_callbacks() as queued:
        first = request(payment, 2000, "charity-refund:winter:don-1")
    again = request(payment, 2000, "charity-refund:winter:don-1")
    assert again.pk == first.pk and PaymentRefund.objects.count() == 1
    assert (first.state, first.amount, first.attempts) == ("requested", 2000, 0)
    assert len(queued) == 1  # the send task is queued once, after the commit


def test_a_key_reused_for_another_refund_is_refused(market):
    payment = charity_payment(market)
    request(payment, 2000, "k1")
    with pytest.raises(services.RefundRefused, match="was used for a refund of 2000"):
        request(payment, 2500, "k1")
    other = charity_payment(market, payment_id="don-2")
    with pytest.raises(services.RefundRefused, match="was used for a refund"):
        request(other, 2000, "k1")


def test_refunds_never_exceed_what_is_still_refundable(market):
    payment = charity_payment(market, amount=5000)
    request(payment, 3000, "k1")
    with pytest.raises(services.RefundRefused, match="2000 of 5000 INR is still refundable"):
        request(payment, 2001, "k2")
    request(payment, 2000, "k2")
    with pytest.raises(services.RefundRefused, match="0 of 5000"):
        request(payment, 1, "k3")
    # A refund that failed for good no longer holds its amount.
    PaymentRefund.objects.filter(idempotency_key="k2").update(state="failed")
    assert request(payment, 2000, "k4").amount == 2000


@pytest.mark.parametrize("change, message", [({"state": "pending"}, "is pending"), ({"state": "failed"}, "is failed")])
def test_only_a_credited_payment_is_refunded(market, change, message):
    payment = charity_payment(market)
    Payment.objects.filter(pk=payment.pk).update(**change)
    with pytest.raises(services.RefundRefused, match=message):
        request(payment, 100, "k1")


def test_an_unknown_payment_or_a_bad_amount_is_refused(market):
    with pytest.raises(services.RefundRefused, match="no payment"):
        services.payment_refund_request(provider="bank", scope=market.bank.msp_id, payment_id="nope", amount=1,
                                        reason="", idempotency_key="k")
    payment = charity_payment(market)
    for amount in (0, -5, 1.5, True):
        with pytest.raises(services.RefundRefused, match="positive integer"):
            request(payment, amount, "k")
    assert not PaymentRefund.objects.exists()


# --- the bank, through the simulated bank ---------------------------------------------------

def test_a_bank_refund_of_a_donation_is_sent_once_and_its_return_recorded_not_reversed(
        market, django_capture_on_commit_callbacks):
    payment = charity_payment(market)
    ledger_before = Transaction.objects.count()
    with django_capture_on_commit_callbacks(execute=True):
        refund = request(payment, 2000, "charity-refund:winter:don-1")
    refund.refresh_from_db()
    assert (refund.state, refund.attempts) == ("sent", 1)
    assert refund.provider_reference == bank_return_id("charity-refund:winter:don-1")
    # The simulated bank's return came back through /webhooks/bank/ and was recognised as ours.
    reversal = PaymentReversal.objects.get()
    assert (reversal.reversal_id, reversal.kind, reversal.amount, reversal.tx_hash) == (
        refund.provider_reference, "return", 2000, None)
    assert refund.echo_id == reversal.pk
    audit = WebhookEvent.objects.get(event_id=refund.provider_reference)
    assert (audit.status, audit.http_status, audit.payment_id) == ("recorded", 200, payment.pk)
    assert "booked on the ledger by charity-pool.refund" in audit.reason
    payment.refresh_from_db()
    assert payment.amount_reversed == 2000
    assert Transaction.objects.count() == ledger_before  # nothing moved on the ledger a second time

    # Sending again (a duplicated task, or the sweep) changes nothing.
    expire_lease(refund)
    assert services.refund_send(refund.pk) == "sent" and services.refunds_send_due() == 0
    assert PaymentReversal.objects.count() == 1


def test_a_bank_refund_of_a_sale_reverses_it_once(market, django_capture_on_commit_callbacks):
    sale = market.deliver(market.notification(id="pay-1", amount=8000)).json()
    payment = Payment.objects.get(payment_id="pay-1")
    bought = market.household_balance()
    assert bought == sale["wh"] == 10_000
    with django_capture_on_commit_callbacks(execute=True):
        refund = request(payment, 4000, "shop-refund-1", reason="returned")
    refund.refresh_from_db()
    reversal = PaymentReversal.objects.get()
    assert refund.state == "sent" and refund.echo_id == reversal.pk
    # A sale's own refund is reversed on the ledger when the bank reports it: half the energy back.
    assert reversal.tx_hash and Transaction.objects.get(tx_hash=reversal.tx_hash).function == "reverse"
    assert market.household_balance() == bought - 5_000
    # The return, delivered again by the simulated bank, is a duplicate.
    from payments.simulator import simulated_bank_refund

    simulated_bank_refund(RefundInstruction(provider="bank", scope=market.bank.msp_id, payment_id="pay-1",
                                            amount=4000, currency="INR", reason="returned",
                                            idempotency_key="shop-refund-1", attempt=2))
    assert PaymentReversal.objects.count() == 1 and market.household_balance() == bought - 5_000
    assert_conserved_and_verified()


class RecordingBank:
    """A bank that accepts instructions (deduplicating on the idempotency key, as its API
    would) without sending a return: ``calls`` lists every instruction it received."""

    calls: list[RefundInstruction] = []


def recording_bank_send(instruction: RefundInstruction) -> SendResult:
    RecordingBank.calls.append(instruction)
    return SendResult(f"bank-ref-{instruction.idempotency_key}")


RECORDING_BANK = "tests.payments.test_payments_refunds.recording_bank_send"


def test_a_crash_between_sending_and_saving_is_resent_with_the_same_key(market, settings, monkeypatch):
    settings.PAYMENTS_BANK_REFUND_SENDER = RECORDING_BANK
    RecordingBank.calls = []
    payment = charity_payment(market)
    refund = request(payment, 2000, "k-crash")

    def crash(*args, **kwargs):
        raise SystemExit("worker killed")

    with monkeypatch.context() as m:
        m.setattr(refunds, "_mark_sent", crash)
        with pytest.raises(SystemExit):
            refunds.refund_send(refund.pk)
    refund.refresh_from_db()
    assert (refund.state, refund.attempts, len(RecordingBank.calls)) == ("requested", 1, 1)
    # While the lease holds, neither the sweep nor a duplicated task sends it again.
    assert services.refunds_send_due() == 0
    assert refunds.refund_send(refund.pk) == "requested" and len(RecordingBank.calls) == 1
    expire_lease(refund)
    assert services.refunds_send_due() == 1
    refund.refresh_from_db()
    assert (refund.state, refund.attempts, refund.provider_reference) == ("sent", 2, "bank-ref-k-crash")
    assert [c.idempotency_key for c in RecordingBank.calls] == ["k-crash", "k-crash"]
    assert [c.attempt for c in RecordingBank.calls] == [1, 2]


def test_a_refund_reported_before_the_send_was_saved_is_not_sent_again(market, settings, monkeypatch):
    settings.PAYMENTS_BANK_REFUND_SENDER = RECORDING_BANK
    RecordingBank.calls = []
    payment = charity_payment(market)
    refund = request(payment, 2000, "k-echo")
    # The bank's return arrives (naming our instruction) while the row is still requested.
    response = market.deliver({"id": "ret-77", "bank": market.bank.msp_id, "return_of": payment.payment_id,
                               "amount": 2000, "currency": "INR", "refund": "k-echo"})
    assert response.status_code == 200 and response.json()["status"] == "recorded"
    refund.refresh_from_db()
    assert (refund.state, refund.provider_reference) == ("sent", "ret-77")
    assert services.refunds_send_due() == 0 and RecordingBank.calls == []


def test_a_failing_sender_is_retried_with_back_off_then_given_up(market, settings):
    settings.PAYMENTS_BANK_REFUND_SENDER = ""
    payment = charity_payment(market)
    refund = request(payment, 2000, "k-none")
    for attempt in range(1, refunds.MAX_ATTEMPTS + 1):
        expire_lease(refund)
        state = refunds.refund_send(refund.pk)
        refund.refresh_from_db()
        assert refund.attempts == attempt and "no bank refund sender is configured" in refund.last_error
        if attempt < refunds.MAX_ATTEMPTS:
            assert state == "requested" and refund.next_attempt_at > timezone.now()
    assert state == "failed" and refund.failed_at is not None and "gave up after 8 attempts" in refund.last_error


# --- Stripe, faked at the HTTP client ----------------------------------------------------------

def test_a_stripe_refund_is_created_with_the_idempotency_key(market, fake_stripe, django_capture_on_commit_callbacks):
    payment = charity_payment(market, provider="stripe", payment_id="pi_donation1")
    with django_capture_on_commit_callbacks(execute=True):
        refund = request(payment, 1500, "charity-refund:winter:pi_donation1")
    refund.refresh_from_db()
    assert (refund.state, refund.provider_reference) == ("sent", "re_fake1")
    [(method, path, params)] = fake_stripe.created()
    assert params["payment_intent"] == "pi_donation1" and params["amount"] == "1500"
    assert params["metadata[gridcoin_refund]"] == "charity-refund:winter:pi_donation1"
    assert len(fake_stripe.by_key) == 1 and "charity-refund:winter:pi_donation1" in fake_stripe.by_key


def test_a_stripe_retry_after_a_crash_finds_the_refund_instead_of_making_another(market, fake_stripe, monkeypatch):
    payment = charity_payment(market, provider="stripe", payment_id="pi_donation2")
    refund = request(payment, 1500, "k-stripe-crash")
    with monkeypatch.context() as m:
        m.setattr(refunds, "_mark_sent", lambda *a, **k: (_ for _ in ()).throw(SystemExit("killed")))
        with pytest.raises(SystemExit):
            refunds.refund_send(refund.pk)
    assert len(fake_stripe.refunds) == 1
    expire_lease(refund)
    assert refunds.refund_send(refund.pk) == "sent"
    refund.refresh_from_db()
    assert refund.provider_reference == "re_fake1" and len(fake_stripe.refunds) == 1
    assert len(fake_stripe.created()) == 1  # the retry looked the refund up by its metadata


def test_a_stripe_retry_replays_on_the_idempotency_key_when_the_lookup_misses(market, fake_stripe, monkeypatch):
    payment = charity_payment(market, provider="stripe", payment_id="pi_donation3")
    refund = request(payment, 1500, "k-replay")
    refunds.refund_send(refund.pk)
    PaymentRefund.objects.filter(pk=refund.pk).update(state="requested")  # as if the save were lost
    monkeypatch.setattr(refunds, "_stripe_made", lambda *a, **k: None)
    expire_lease(refund)
    assert refunds.refund_send(refund.pk) == "sent"
    assert len(fake_stripe.created()) == 2 and len(fake_stripe.refunds) == 1  # Stripe replayed the first


def test_a_stripe_server_error_is_retried_and_a_refusal_fails(market, fake_stripe):
    payment = charity_payment(market, provider="stripe", payment_id="pi_donation4")
    refund = request(payment, 1500, "k-500")
    fake_stripe.fail_next = 1
    assert refunds.refund_send(refund.pk) == "requested"
    refund.refresh_from_db()
    assert "APIError" in refund.last_error and refund.next_attempt_at > timezone.now()
    expire_lease(refund)
    assert refunds.refund_send(refund.pk) == "sent" and len(fake_stripe.refunds) == 1

    other = request(payment, 1000, "k-400")
    fake_stripe.decline = "charge_already_refunded"
    assert refunds.refund_send(other.pk) == "failed"
    other.refresh_from_db()
    assert other.state == "failed" and "charge_already_refunded" in other.last_error
    assert len(fake_stripe.refunds) == 1


def test_without_a_stripe_key_the_refund_waits(market, fake_stripe, settings):
    settings.STRIPE_SECRET_KEY = ""
    payment = charity_payment(market, provider="stripe", payment_id="pi_donation5")
    refund = request(payment, 1500, "k-nokey")
    assert refunds.refund_send(refund.pk) == "requested"
    refund.refresh_from_db()
    assert "STRIPE_SECRET_KEY" in refund.last_error and fake_stripe.requests == []


def test_stripe_reporting_our_donation_refund_records_it_once_without_moving_coins(
        client, market, fake_stripe, django_capture_on_commit_callbacks):
    payment = charity_payment(market, provider="stripe", payment_id="pi_donation6", amount=5000)
    with django_capture_on_commit_callbacks(execute=True):
        refund = request(payment, 2000, "charity-refund:winter:pi_donation6")
    ledger_before = Transaction.objects.count()
    event = event_for("charge.refunded", event_id="evt_refund_echo_1", payment_intent="pi_donation6",
                      amount=5000, amount_refunded=2000)
    response = post(client, event)
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] == "recorded" and body["own_refunds"] == ["charity-refund:winter:pi_donation6"]
    assert "tx_hash" not in body
    reversal = PaymentReversal.objects.get()
    refund.refresh_from_db()
    assert refund.echo_id == reversal.pk and reversal.tx_hash is None
    # The same report again, and a refund.updated about it: nothing more.
    again = post(client, event).json()
    assert again["status"] == "duplicate"
    update = fixture("refund.updated")
    update["data"]["object"].update(id="re_fake1", payment_intent="pi_donation6", amount=2000,
                                    metadata={"gridcoin_refund": refund.idempotency_key})
    answer = post(client, update).json()
    assert answer["status"] == "refund_sent" and answer["refund"] == refund.idempotency_key
    assert PaymentReversal.objects.count() == 1 and Transaction.objects.count() == ledger_before
    payment.refresh_from_db()
    assert payment.amount_reversed == 2000
    assert [e.status for e in WebhookEvent.objects.order_by("id")] == ["recorded", "duplicate", "recorded"]


def test_a_refund_made_at_stripe_but_not_saved_is_recognised_from_its_event(
        client, market, fake_stripe, monkeypatch):
    payment = charity_payment(market, provider="stripe", payment_id="pi_donation7")
    refund = request(payment, 1500, "k-event")
    with monkeypatch.context() as m:
        m.setattr(refunds, "_mark_sent", lambda *a, **k: (_ for _ in ()).throw(SystemExit("killed")))
        with pytest.raises(SystemExit):
            refunds.refund_send(refund.pk)
    created = fixture("refund.updated")
    created["type"] = "refund.created"
    created["data"]["object"].update(id="re_fake1", payment_intent="pi_donation7", amount=1500,
                                     metadata={"gridcoin_refund": "k-event"})
    assert post(client, created).json()["status"] == "refund_sent"
    refund.refresh_from_db()
    assert (refund.state, refund.provider_reference) == ("sent", "re_fake1")
    expire_lease(refund)
    assert services.refunds_send_due() == 0 and len(fake_stripe.created()) == 1


def test_stripe_failing_our_refund_marks_it_failed(client, market, fake_stripe, django_capture_on_commit_callbacks):
    payment = charity_payment(market, provider="stripe", payment_id="pi_donation8")
    with django_capture_on_commit_callbacks(execute=True):
        refund = request(payment, 1500, "k-fails")
    failed = fixture("refund.updated")
    failed["type"] = "refund.failed"
    failed["data"]["object"].update(id="re_fake1", payment_intent="pi_donation8", amount=1500, status="failed",
                                    failure_reason="lost_or_stolen_card", metadata={})
    assert post(client, failed).json()["status"] == "refund_failed"
    refund.refresh_from_db()
    assert refund.state == "failed" and "lost_or_stolen_card" in refund.last_error
    # Someone else's refund event is acknowledged and ignored.
    other = fixture("refund.updated")
    assert post(client, other).json()["status"] == "ignored"


def test_a_refund_stripe_reports_beyond_ours_on_a_donation_is_recorded_as_external(
        client, market, fake_stripe, django_capture_on_commit_callbacks):
    payment = charity_payment(market, provider="stripe", payment_id="pi_donation9", amount=5000)
    with django_capture_on_commit_callbacks(execute=True):
        request(payment, 2000, "k-ours")
    event = event_for("charge.refunded", event_id="evt_refund_both", payment_intent="pi_donation9",
                      amount=5000, amount_refunded=3000)
    body = post(client, event).json()
    assert body["status"] == "recorded" and body["own_amount"] == 2000 and body["amount"] == 3000
    assert "1000 INR was reversed by the processor" in WebhookEvent.objects.get().reason
    payment.refresh_from_db()
    assert payment.amount_reversed == 3000
    with pytest.raises(services.RefundRefused, match="2000 of 5000"):
        request(payment, 2001, "k-more")


def test_our_refund_of_a_stripe_sale_is_reversed_on_the_ledger_once(
        client, market, fake_stripe, django_capture_on_commit_callbacks):
    stripe_bank = build_stripe_bank()
    sale = fixture("payment_intent.succeeded")
    sale["data"]["object"]["metadata"]["bank"] = stripe_bank.msp_id
    assert post(client, sale).json()["status"] == "applied"
    payment = Payment.objects.get(payment_id="pi_3QfixtureIntent")
    bought = market.household_balance()
    with django_capture_on_commit_callbacks(execute=True):
        refund = request(payment, 1001, "shop-refund-stripe")
    echo = post(client, fixture("charge.refunded"))
    assert echo.json()["status"] == "applied"
    refund.refresh_from_db()
    assert refund.echo_id == PaymentReversal.objects.get().pk
    assert market.household_balance() == 0 < bought
    assert_conserved_and_verified()


def build_stripe_bank():
    from ledger import services as ledger
    from ledger.models import OrgType

    return ledger.organisation_create(msp_id="stripebank", name="Stripe", org_type=OrgType.BANK)


def test_the_admin_lists_refunds_read_only_with_their_payment(market, django_capture_on_commit_callbacks):
    from django.contrib.auth import get_user_model
    from django.test import Client

    payment = charity_payment(market)
    with django_capture_on_commit_callbacks(execute=True):
        refund = request(payment, 2000, "charity-refund:winter:admin")
    staff = get_user_model().objects.create_user(username="uma", password="uma-password-1", is_staff=True,
                                                 is_superuser=True)
    browser = Client()
    browser.force_login(staff)
    listing = browser.get("/admin/payments/paymentrefund/?q=charity-refund")
    assert listing.status_code == 200 and "charity-refund:winter:admin" in listing.content.decode()
    page = browser.get(f"/admin/payments/payment/{payment.pk}/change/")
    assert page.status_code == 200 and "charity-refund:winter:admin" in page.content.decode()
    assert browser.get("/admin/payments/paymentrefund/add/").status_code == 403
    assert browser.post(f"/admin/payments/paymentrefund/{refund.pk}/delete/").status_code == 403


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_request_waiting_on_a_concurrent_one_with_its_key_gets_that_refund(settings):
    """B asks while A's request (same key, the whole payment) is not committed: B waits on the
    payment's lock, then finds A's row instead of finding nothing left to refund."""
    import threading

    from django.db import connection, transaction

    settings.PAYMENTS_BANK_REFUND_SENDER = RECORDING_BANK
    market = build_market()
    payment = charity_payment(market, amount=5000)
    a_requested, b_waiting = threading.Event(), threading.Event()
    rows: dict[str, int] = {}
    errors: list[BaseException] = []

    def a() -> None:
        try:
            with transaction.atomic():
                rows["a"] = request(payment, 5000, "k-race").pk
                a_requested.set()
                assert b_waiting.wait(30)
        finally:
            connection.close()

    def b() -> None:
        try:
            a_requested.wait(30)
            rows["b"] = request(payment, 5000, "k-race").pk
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=a), threading.Thread(target=b)]
    for t in threads:
        t.start()
    assert a_requested.wait(30)
    with connection.cursor() as cur:  # wait until B blocks on the payment's row lock
        for _ in range(3000):
            cur.execute("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = "
                        "current_database()")
            if cur.fetchone()[0]:
                break
            threading.Event().wait(0.01)
    b_waiting.set()
    for t in threads:
        t.join()
    assert errors == [] and rows["a"] == rows["b"] and PaymentRefund.objects.count() == 1


def test_the_sweep_task_and_the_embedded_thread_send_due_refunds(market, settings, monkeypatch):
    import threading

    from payments import scheduler
    from payments.tasks import payment_refund_send, payment_refunds_sweep

    settings.PAYMENTS_BANK_REFUND_SENDER = RECORDING_BANK
    RecordingBank.calls = []
    payment = charity_payment(market)
    first, second = request(payment, 1000, "k-sweep-1"), request(payment, 1000, "k-sweep-2")
    assert payment_refund_send.apply(args=[first.pk]).get() == "sent"
    assert payment_refunds_sweep.apply().get() == 1  # only the second was still due
    assert PaymentRefund.objects.get(pk=second.pk).state == "sent"
    assert [c.idempotency_key for c in RecordingBank.calls] == ["k-sweep-1", "k-sweep-2"]

    stopped, swept = threading.Event(), []
    monkeypatch.setattr(scheduler, "INTERVAL_SECONDS", 0)
    monkeypatch.setattr(refunds, "refunds_send_due", lambda: swept.append(1) or stopped.set())
    scheduler._run(stopped)
    assert swept == [1]
