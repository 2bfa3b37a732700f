"""The write path of ``payments``, in one place for its callers (views, admin, demo, tests).

A delivery is verified on its raw body (``providers/``), parsed into a ``PaymentNotice``, routed
through the dispatch table to a seller chaincode and invoked as the bank's webhook identity
(``sales``). The event id is claimed in the same database transaction as the invocation
(``claims``), so a redelivery, even a concurrent one, changes nothing; every delivery, accepted
or not, leaves exactly one audit row (``deliveries``, which also lists the status codes). Bank
signing secrets and their in-memory copy live in ``secrets``; the simulator that plays the bank
in ``simulator``. Refunds we send (the outbox, its sender and sweep) live in ``refunds``."""

from __future__ import annotations

from .credits import PaymentOutcome, payment_credit
from .deliveries import WebhookOutcome, WebhookRefused
from .providers.bank import bank_webhook_receive
from .providers.stripe import stripe_webhook_receive
from .refunds import RefundRefused, payment_refund_request, refund_send, refunds_send_due
from .secrets import WEBHOOK_IDENTITY, bank_secret_create, bank_secret_deactivate, bank_secret_reveal
from .simulator import bank_notification_body, simulated_payment_send

__all__ = [
    "PaymentOutcome",
    "payment_credit",
    "WEBHOOK_IDENTITY",
    "WebhookOutcome",
    "WebhookRefused",
    "bank_notification_body",
    "bank_secret_create",
    "bank_secret_deactivate",
    "bank_secret_reveal",
    "bank_webhook_receive",
    "payment_refund_request",
    "RefundRefused",
    "refund_send",
    "refunds_send_due",
    "simulated_payment_send",
    "stripe_webhook_receive",
]
