"""``POST /webhooks/stripe/``: a Stripe event, verified with the ``stripe`` library against each
endpoint secret in settings.STRIPE_WEBHOOK_SECRETS (rotation) with Stripe's tolerance, mapped
by event type to a payment notice. ``metadata`` names payer, payee, chaincode and the bank (the
processor organisation that invokes)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.conf import settings

from ledger.models import OrgType
from ledger.selectors import organisation_with_msp_id

from ..deliveries import Delivery, WebhookOutcome, WebhookRefused, audit_text, guarded
from ..models import DeliveryStatus, Provider
from ..notices import NoticeError, PaymentNotice, parse_json_object, stripe_notice_from
from ..sales import apply_notice
from ..signing import SignatureError

TOLERANCE_SECONDS = 300  # Stripe's own default


def _checkout_session(event: dict[str, Any]) -> PaymentNotice | str:
    session = event["data"]["object"]
    if session.get("payment_status") not in (None, "paid"):
        return f"checkout session payment_status is {session.get('payment_status')!r}, not paid"
    return stripe_notice_from(event_id=event.get("id"), amount=session.get("amount_total"),
                              currency=session.get("currency"), created=event.get("created"),
                              metadata=session.get("metadata"), payment_id=session.get("payment_intent"))


def _payment_intent(event: dict[str, Any]) -> PaymentNotice | str:
    intent = event["data"]["object"]
    return stripe_notice_from(event_id=event.get("id"), amount=intent.get("amount_received"),
                              currency=intent.get("currency"), created=event.get("created"),
                              metadata=intent.get("metadata"), payment_id=intent.get("id"))


# Stripe event type → notice (or the reason it is ignored). Other types are acknowledged and audited.
STRIPE_HANDLERS: dict[str, Callable[[dict[str, Any]], PaymentNotice | str]] = {
    "checkout.session.completed": _checkout_session,
    "payment_intent.succeeded": _payment_intent,
}


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
        handler = STRIPE_HANDLERS.get(d.event_type)
        if handler is None:
            return d.record(status=DeliveryStatus.IGNORED, http_status=200, reason="event type not handled",
                            body={"status": "ignored", "event_id": d.event_id, "type": d.event_type})
        try:
            notice = handler(event)
        except (KeyError, TypeError, AttributeError):
            raise NoticeError(f"{d.event_type} event lacks data.object") from None
        if isinstance(notice, str):
            return d.record(status=DeliveryStatus.IGNORED, http_status=200, reason=notice,
                            body={"status": "ignored", "event_id": d.event_id, "reason": notice})
        d.notice = notice
        bank = organisation_with_msp_id(notice.bank)
        if bank is None or bank.org_type != OrgType.BANK:
            raise WebhookRefused(400, f"unknown bank {notice.bank!r} in metadata")
        d.organisation = bank
        return apply_notice(d, notice, bank, scope="")

    return guarded(receive, delivery)
