"""``POST /webhooks/stripe/``: a Stripe event, verified with the ``stripe`` library against each
endpoint secret in settings.STRIPE_WEBHOOK_SECRETS (rotation) with Stripe's tolerance, mapped
by event type to a payment notice. ``metadata`` names payer, payee, chaincode and the bank (the
processor organisation that invokes). What each event type means is ``stripe_events``."""

from __future__ import annotations

from django.conf import settings

from ledger.models import OrgType
from ledger.selectors import organisation_with_msp_id

from ..deliveries import Delivery, WebhookOutcome, WebhookRefused, audit_text, guarded
from ..lifecycle import dispute_delivered, fail_delivered, refund_report_delivered, reverse_delivered, wait_delivered
from ..models import DeliveryStatus, Provider
from ..notices import NoticeError, PaymentNotice, parse_json_object
from ..reversals import PaymentKey
from ..sales import apply_notice
from ..signing import SignatureError
from .stripe_events import STRIPE_EVENTS, Action, Credit, Dispute, Fail, Ignore, RefundReport, Wait

TOLERANCE_SECONDS = 300  # Stripe's own default


def _verify(raw_body: bytes, signature_header: str | None) -> None:
    endpoint_secrets = [s for s in getattr(settings, "STRIPE_WEBHOOK_SECRETS", []) if s]
    if not endpoint_secrets:
        raise WebhookRefused(503, "no Stripe endpoint secret is configured")
    try:
        payload = raw_body.decode("utf-8")
    except UnicodeDecodeError:
        raise NoticeError("body is not UTF-8") from None
    import stripe  # here, not at import: the library is large, and only this endpoint needs it

    failure = "missing Stripe-Signature header"
    for secret in endpoint_secrets:
        try:
            stripe.Webhook.construct_event(payload, signature_header or "", secret, tolerance=TOLERANCE_SECONDS)
            return
        except stripe.SignatureVerificationError as exc:
            failure = str(exc)
        except ValueError as exc:  # authentic but not JSON
            raise NoticeError(f"body is not valid JSON: {exc}") from None
    raise SignatureError(failure)


def stripe_webhook_receive(*, raw_body: bytes, signature_header: str | None) -> WebhookOutcome:
    """Verify, map and apply one Stripe event; every outcome is audited."""
    delivery = Delivery(provider=Provider.STRIPE, raw_body=raw_body, signature_header=signature_header or "")

    def receive(d: Delivery) -> WebhookOutcome:
        _verify(raw_body, signature_header)
        # Read the verified body as plain JSON (StripeObject.to_dict is deprecated).
        event = parse_json_object(raw_body)
        d.event_id, d.event_type = audit_text(event.get("id"), 255), audit_text(event.get("type"), 60) or ""
        handler = STRIPE_EVENTS.get(d.event_type)
        if handler is None:
            return d.record(status=DeliveryStatus.IGNORED, http_status=200, reason="event type not handled",
                            body={"status": "ignored", "event_id": d.event_id, "type": d.event_type})
        try:
            action = handler(event)
        except (KeyError, TypeError, AttributeError):
            raise NoticeError(f"{d.event_type} event lacks data.object") from None
        return _carry_out(d, action)

    return guarded(receive, delivery)


def _processor(d: Delivery, notice: PaymentNotice) -> None:
    d.notice = notice
    bank = organisation_with_msp_id(notice.bank)
    if bank is None or bank.org_type != OrgType.BANK:
        raise WebhookRefused(400, f"unknown bank {notice.bank!r} in metadata")
    d.organisation = bank


def _carry_out(d: Delivery, action: Action) -> WebhookOutcome:
    if isinstance(action, Ignore):
        return d.record(status=DeliveryStatus.IGNORED, http_status=200, reason=action.reason,
                        body={"status": "ignored", "event_id": d.event_id, "reason": action.reason})
    if isinstance(action, Credit):
        _processor(d, action.notice)
        assert d.organisation is not None
        return apply_notice(d, action.notice, d.organisation, scope="")
    if isinstance(action, Wait):
        _processor(d, action.notice)
        return wait_delivered(d, action.notice, scope="")
    if isinstance(action, Fail):
        if action.notice is not None:
            _processor(d, action.notice)
        return fail_delivered(d, _key(action.payment_id), action.reason, action.notice)
    if isinstance(action, Dispute):
        return dispute_delivered(d, _key(action.payment_id), action.dispute_id, action.state)
    if isinstance(action, RefundReport):
        return refund_report_delivered(d, _key(action.payment_id), refund_id=action.refund_id, status=action.status,
                                       key=action.key, failure=action.failure)
    return reverse_delivered(d, _key(action.payment_id), reversal_id=action.reversal_id, kind=action.kind,
                             amount=action.amount, refunded_total=action.refunded_total)


def _key(payment_id: str) -> PaymentKey:
    return PaymentKey(Provider.STRIPE, "", payment_id)
