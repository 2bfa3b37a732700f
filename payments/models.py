"""Fiat webhooks: the banks' signing secrets, an audit row per delivery, and the claim that
makes each provider event apply at most once. Rows are written only by the write path
``payments.services`` gathers (``secrets``, ``deliveries``, ``claims``)."""

from __future__ import annotations

from django.db import models

from ledger.models import Organisation, OrgType


class Provider(models.TextChoices):
    BANK = "bank"
    STRIPE = "stripe"


class DeliveryStatus(models.TextChoices):
    APPLIED = "applied", "applied (ledger transaction valid)"
    DUPLICATE = "duplicate", "duplicate (redelivery, nothing changed)"
    REJECTED = "rejected", "rejected"
    IGNORED = "ignored", "ignored (event type not handled)"
    RECORDED = "recorded", "recorded (payment state changed, nothing moved)"


class BankSecret(models.Model):
    """A bank's webhook signing secret, sealed with AES-256-GCM under GRIDCOIN_KEK. Several
    active secrets per bank make rotation possible: sign with the new one, retire the old."""

    organisation = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="webhook_secrets",
                                     limit_choices_to={"org_type": OrgType.BANK})
    label = models.CharField(max_length=100)
    nonce = models.BinaryField(max_length=12)
    ciphertext = models.BinaryField()
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    deactivated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["organisation_id", "-created_at", "-id"]
        constraints = [models.UniqueConstraint(fields=["organisation", "label"], name="bank_secret_unique_label")]

    def __str__(self) -> str:
        return f"{self.organisation.msp_id}/{self.label}{'' if self.active else ' (inactive)'}"


class WebhookEvent(models.Model):
    """One row per received delivery, accepted or not (the audit trail)."""

    provider = models.CharField(max_length=10, choices=Provider.choices)
    organisation = models.ForeignKey(Organisation, null=True, blank=True, on_delete=models.PROTECT,
                                     related_name="+", help_text="the bank whose secret signed it, when known")
    event_id = models.CharField(max_length=255, null=True, blank=True)  # noqa: DJ001  (NULL: unparseable)
    event_type = models.CharField(max_length=60, blank=True, default="", help_text="chaincode or Stripe event type")
    payer = models.CharField(max_length=64, blank=True, default="")
    payee = models.CharField(max_length=64, blank=True, default="")
    amount = models.BigIntegerField(null=True, blank=True, help_text="minor units")
    currency = models.CharField(max_length=10, blank=True, default="")
    status = models.CharField(max_length=10, choices=DeliveryStatus.choices)
    reason = models.TextField(blank=True, default="")
    http_status = models.PositiveSmallIntegerField()
    body = models.TextField(blank=True, default="", help_text="raw body, truncated")
    signature_header = models.CharField(max_length=1000, blank=True, default="")
    received_at = models.DateTimeField(auto_now_add=True, db_index=True)
    tx_hash = models.CharField(max_length=64, null=True, blank=True)  # noqa: DJ001
    result = models.JSONField(null=True, blank=True, help_text="the ledger's result or reason")
    payment = models.ForeignKey("Payment", null=True, blank=True, on_delete=models.PROTECT, related_name="events",
                                help_text="the payment this delivery reported, when it matched one")

    class Meta:
        ordering = ["-received_at", "-id"]
        indexes = [models.Index(fields=["provider", "organisation", "event_id"], name="webhook_event_lookup")]

    def __str__(self) -> str:
        return f"{self.provider} {self.event_id or '?'} {self.status} ({self.http_status})"


class ProcessedEvent(models.Model):
    """The claim on a provider event id, inserted in the same database transaction as the
    ledger invocation: a redelivery (even a concurrent one) finds it and changes nothing.
    ``scope`` is the bank's msp id for bank notifications (event ids are the bank's own) and
    empty for Stripe (event ids are unique per Stripe account)."""

    provider = models.CharField(max_length=10, choices=Provider.choices)
    scope = models.CharField(max_length=64, blank=True, default="")
    event_id = models.CharField(max_length=255)
    body_digest = models.CharField(max_length=64, help_text="sha256 of the invocation's canonical args")
    processed_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["provider", "scope", "event_id"], name="processed_event_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.provider}:{self.scope}:{self.event_id}"



class PaymentState(models.TextChoices):
    PENDING = "pending", "pending (reported, not paid yet)"
    CREDITED = "credited", "credited (the sale is on the ledger)"
    FAILED = "failed", "failed (not paid, or the ledger refused the sale)"


class DisputeState(models.TextChoices):
    NONE = "", "none"
    OPEN = "open", "open"
    WON = "won", "won (nothing moved)"
    LOST = "lost", "lost (reversed)"


class Payment(models.Model):
    """One row per processor payment: the claim of its credit. Every event that reports the
    same payment (a Checkout session and its PaymentIntent, a redelivery, a statement line)
    finds this row; the unique constraint, taken in the same database transaction as the
    ledger invocation, lets exactly one of them credit it. ``payment_id`` is Stripe's
    PaymentIntent id or the bank's end-to-end id; ``scope`` the bank's msp id ("" for Stripe)."""

    provider = models.CharField(max_length=10, choices=Provider.choices)
    scope = models.CharField(max_length=64, blank=True, default="")
    payment_id = models.CharField(max_length=255)
    chaincode = models.CharField(max_length=40)
    purpose = models.CharField(max_length=80, blank=True, default="",
                               help_text='charity-pool payments: "campaign:<slug>" or "group:<slug>"')
    payer = models.CharField(max_length=64, blank=True, help_text='"": a donor without an account')
    payee = models.CharField(max_length=64)
    amount = models.BigIntegerField(help_text="minor units")
    currency = models.CharField(max_length=10)
    state = models.CharField(max_length=10, choices=PaymentState.choices, default=PaymentState.PENDING)
    reason = models.TextField(blank=True, default="")
    credit_tx_hash = models.CharField(max_length=64, null=True, blank=True)  # noqa: DJ001
    amount_reversed = models.BigIntegerField(default=0, help_text="minor units reversed so far (refunds, "
                                                                   "lost disputes, returns)")
    disputed = models.CharField(max_length=10, choices=DisputeState.choices, blank=True, default="")
    created = models.DateTimeField(help_text="the processor's time of the payment (the price in force then applies)")
    credited_at = models.DateTimeField(null=True, blank=True)
    # Off-chain only (never a chaincode argument): a donor's name, their consent to show it, the
    # signed-in user who gave; kept from the payment's first report.
    details = models.JSONField(default=dict, blank=True, help_text="donor details off the chain")

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(fields=["provider", "scope", "payment_id"], name="payment_unique_per_processor"),
            models.CheckConstraint(condition=models.Q(amount__gt=0), name="payment_amount_positive"),
            models.CheckConstraint(condition=models.Q(amount_reversed__gte=0)
                                   & models.Q(amount_reversed__lte=models.F("amount")),
                                   name="payment_reversed_within_amount"),
        ]
        indexes = [models.Index(fields=["provider", "scope", "credited_at"], name="payment_credited_lookup")]

    def __str__(self) -> str:
        return f"{self.provider}:{self.scope}:{self.payment_id} {self.state}"

    @property
    def idempotency_key(self) -> str:
        return f"payment:{self.provider}:{self.scope}:{self.payment_id}"


class ReversalKind(models.TextChoices):
    REFUND = "refund"
    DISPUTE = "dispute"
    RETURN = "return"


class PaymentReversal(models.Model):
    """Money given back on a credited payment, reversed on the ledger once per ``reversal_id``
    (a Stripe refund step ``<charge>:refunded:<cumulative amount>``, a dispute id, a bank's
    return id)."""

    payment = models.ForeignKey(Payment, on_delete=models.PROTECT, related_name="reversals")
    reversal_id = models.CharField(max_length=255)
    kind = models.CharField(max_length=10, choices=ReversalKind.choices)
    amount = models.BigIntegerField(help_text="minor units")
    tx_hash = models.CharField(max_length=64, null=True, blank=True,  # noqa: DJ001
                               help_text="the ledger's reverse; none when nothing moved (a charity payment's "
                                         "refund, booked by charity-pool.refund)")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["payment_id", "id"]
        constraints = [
            models.UniqueConstraint(fields=["payment", "reversal_id"], name="payment_reversal_unique"),
            models.CheckConstraint(condition=models.Q(amount__gt=0), name="payment_reversal_amount_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.reversal_id} of {self.payment_id}: {self.amount}"


class RefundState(models.TextChoices):
    REQUESTED = "requested", "requested (not yet accepted by the processor)"
    SENT = "sent", "sent (the processor accepted it)"
    FAILED = "failed", "failed (the processor refused it, or sending gave up)"


class PaymentRefund(models.Model):
    """A refund we send to the processor (the outbox): created once per ``idempotency_key``,
    sent by a task that may retry (the processor dedupes on the same key), and recognised when
    the processor reports it back (``echo``), so that report moves nothing a second time."""

    payment = models.ForeignKey(Payment, on_delete=models.PROTECT, related_name="refunds")
    amount = models.BigIntegerField(help_text="minor units")
    reason = models.TextField(blank=True, default="")
    idempotency_key = models.CharField(max_length=200, unique=True)
    state = models.CharField(max_length=10, choices=RefundState.choices, default=RefundState.REQUESTED)
    provider_reference = models.CharField(max_length=255, blank=True, default="",
                                          help_text="the processor's refund id (Stripe re_…, the bank's return id)")
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True, default="")
    next_attempt_at = models.DateTimeField(help_text="when the sweep may send it (again): a sender's lease, "
                                                     "or the back-off after a failed attempt")
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    failed_at = models.DateTimeField(null=True, blank=True)
    echo = models.ForeignKey(PaymentReversal, null=True, blank=True, on_delete=models.PROTECT, related_name="refunds",
                             help_text="the processor's report of this refund, recorded without moving coins again")

    class Meta:
        ordering = ["-id"]
        constraints = [models.CheckConstraint(condition=models.Q(amount__gt=0), name="payment_refund_amount_positive")]
        indexes = [models.Index(fields=["state", "next_attempt_at"], name="payment_refund_due")]

    def __str__(self) -> str:
        return f"refund {self.idempotency_key} of {self.payment_id}: {self.amount} {self.state}"


# Reconciliation keeps its own module; imported here so Django registers its models with payments.
from .reconciliation.models import ReconciliationLine, ReconciliationRun  # noqa: E402, F401
