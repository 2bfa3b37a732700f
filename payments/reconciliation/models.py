"""Reconciliation runs and their lines (registered on the ``payments`` app through
``payments.models``). A run is one statement reconciled once; its lines are the statement's
lines (loaded in bulk, then sorted by set-based SQL) plus one line per payment credited on the
ledger that the statement does not list."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class RunState(models.TextChoices):
    PENDING = "pending", _("waiting for a worker")
    LOADING = "loading", _("reading the statement")
    MATCHING = "matching", _("matching against the ledger")
    APPLYING = "applying", _("applying payments missing on the ledger")
    DONE = "done", _("done")
    FAILED = "failed", _("failed (the statement was refused; nothing moved)")


class Outcome(models.TextChoices):
    PENDING = "pending", _("not sorted yet")
    MATCHED = "matched", _("matched: on the statement and credited on the ledger")
    MISSING = "missing", _("missing on the ledger: applied from the statement")
    MISMATCH = "mismatch", _("mismatch: amount, currency or parties differ (nothing moved)")
    UNLISTED = "unlisted", _("on the ledger but not on the statement")
    REJECTED = "rejected", _("missing on the ledger, and the ledger refused it")
    IGNORED = "ignored", _("not a payment (fee, refund, debit, pending entry)")


FLAGGED = (Outcome.MISMATCH, Outcome.UNLISTED, Outcome.REJECTED)


class ReconciliationRun(models.Model):
    """One statement, reconciled by the ``reconcile_payments`` task in steps (each a compare-and-
    swap on ``state``, so a task run twice resumes instead of repeating)."""

    source = models.CharField(max_length=10, help_text="the provider: bank (camt.053) or stripe (balance report)")
    scope = models.CharField(max_length=64, blank=True, default="", help_text="the bank's msp id; '' for Stripe")
    processor = models.CharField(max_length=64, blank=True, default="",
                                 help_text="for Stripe: the processor organisation that invokes the sales")
    statement_id = models.CharField(max_length=255, blank=True, default="", help_text="the statement's own id")
    digest = models.CharField(max_length=64, help_text="sha256 of the statement file (re-upload detection)")
    file_name = models.CharField(max_length=255, blank=True, default="")
    path = models.CharField(max_length=1024, help_text="the stored statement file")
    rerun_of = models.ForeignKey("self", null=True, blank=True, on_delete=models.PROTECT, related_name="reruns")
    state = models.CharField(max_length=10, choices=RunState.choices, default=RunState.PENDING)
    error = models.TextField(blank=True, default="")
    period_start = models.DateTimeField(null=True, blank=True)
    period_end = models.DateTimeField(null=True, blank=True)
    counts = models.JSONField(default=dict, blank=True, help_text="lines per outcome")
    progress_current = models.PositiveIntegerField(default=0)
    progress_total = models.PositiveIntegerField(default=0)
    progress_label = models.CharField(max_length=200, blank=True, default="")
    task_id = models.CharField(max_length=255, blank=True, default="")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        app_label = "payments"
        ordering = ["-id"]
        constraints = [
            # The same file uploaded again finds its first run; a deliberate re-run points at it.
            models.UniqueConstraint(fields=["source", "scope", "digest"], condition=models.Q(rerun_of__isnull=True),
                                    name="reconciliation_statement_once"),
        ]

    def __str__(self) -> str:
        return f"{self.source}:{self.scope} {self.statement_id or self.digest[:12]} {self.state}"

    @property
    def in_flight(self) -> bool:
        return self.state not in (RunState.DONE, RunState.FAILED)

    @property
    def percent(self) -> int:
        if not self.in_flight:
            return 100
        return int(100 * self.progress_current / self.progress_total) if self.progress_total else 0

    @property
    def flagged(self) -> int:
        return sum(int(self.counts.get(o, 0)) for o in FLAGGED)


class ReconciliationLine(models.Model):
    """A statement line (``line_no``) or a ledger payment the statement lacks (``line_no`` null)."""

    # Indexes cost on every line loaded and sorted (100,000 a run): (run, reference) serves the
    # run's lookups, so neither foreign key gets an index of its own.
    run = models.ForeignKey(ReconciliationRun, on_delete=models.CASCADE, related_name="lines", db_index=False)
    line_no = models.PositiveIntegerField(null=True, blank=True)
    kind = models.CharField(max_length=10, help_text="payment | other")
    reference = models.CharField(max_length=255, blank=True, default="", help_text="the payment id")
    source_ref = models.CharField(max_length=255, blank=True, default="")
    amount = models.BigIntegerField(help_text="minor units")
    currency = models.CharField(max_length=10)
    payer = models.CharField(max_length=64, blank=True, default="")
    payee = models.CharField(max_length=64, blank=True, default="")
    chaincode = models.CharField(max_length=40, blank=True, default="")
    processor = models.CharField(max_length=64, blank=True, default="")
    booked_at = models.DateTimeField(null=True, blank=True)
    outcome = models.CharField(max_length=10, choices=Outcome.choices, default=Outcome.PENDING)
    reason = models.TextField(blank=True, default="")
    payment = models.ForeignKey("payments.Payment", null=True, blank=True, on_delete=models.PROTECT,
                                related_name="reconciliation_lines", db_index=False)
    tx_hash = models.CharField(max_length=64, null=True, blank=True)  # noqa: DJ001  (no ledger transaction)

    class Meta:
        app_label = "payments"
        ordering = ["run_id", "line_no", "id"]
        indexes = [models.Index(fields=["run", "reference"], name="reconciliation_line_ref")]

    def __str__(self) -> str:
        return f"run {self.run_id} line {self.line_no or '-'} {self.reference} {self.outcome}"

    @property
    def flagged(self) -> bool:
        return self.outcome in FLAGGED

    @property
    def amount_display(self) -> str:
        from .statements import major_units

        return major_units(self.amount, self.currency)
