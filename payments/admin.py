"""Admin: the webhook audit and the payments it reported (read-only, for the utility) and the banks'
secrets (retire only)."""

from django.contrib import admin

from . import services
from .models import BankSecret, Payment, PaymentRefund, PaymentReversal, ProcessedEvent, WebhookEvent


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(WebhookEvent)
class WebhookEventAdmin(ReadOnlyAdmin):
    list_display = ["received_at", "provider", "organisation", "event_id", "event_type", "status", "http_status",
                    "amount", "currency", "payment", "tx_hash"]
    list_filter = ["provider", "status", "http_status", "organisation"]
    search_fields = ["event_id", "tx_hash", "payer", "payee"]
    date_hierarchy = "received_at"
    list_select_related = ["organisation", "payment"]


class PaymentReversalInline(admin.TabularInline):
    model = PaymentReversal
    extra = 0
    can_delete = False
    readonly_fields = ["reversal_id", "kind", "amount", "tx_hash", "created_at"]

    def has_add_permission(self, request, obj=None):
        return False


class PaymentRefundInline(admin.TabularInline):
    model = PaymentRefund
    extra = 0
    can_delete = False
    readonly_fields = ["idempotency_key", "amount", "state", "provider_reference", "attempts", "last_error",
                       "created_at", "sent_at", "failed_at", "echo"]
    fields = readonly_fields

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Payment)
class PaymentAdmin(ReadOnlyAdmin):
    list_display = ["created", "provider", "scope", "payment_id", "chaincode", "purpose", "payer", "payee", "amount",
                    "currency", "state", "amount_reversed", "disputed", "credit_tx_hash"]
    list_filter = ["provider", "state", "disputed", "chaincode"]
    search_fields = ["payment_id", "payer", "payee", "purpose", "credit_tx_hash"]
    date_hierarchy = "created"
    inlines = [PaymentReversalInline, PaymentRefundInline]


@admin.register(PaymentRefund)
class PaymentRefundAdmin(ReadOnlyAdmin):
    """The refunds GridCoin sent (or is sending): a failed one needs a person (the coins were
    booked back on the ledger before it was sent)."""

    list_display = ["created_at", "idempotency_key", "payment", "amount", "state", "attempts", "provider_reference",
                    "sent_at", "failed_at"]
    list_filter = ["state"]
    search_fields = ["idempotency_key", "provider_reference", "payment__payment_id"]
    list_select_related = ["payment"]
    raw_id_fields = ["payment", "echo"]


@admin.register(ProcessedEvent)
class ProcessedEventAdmin(ReadOnlyAdmin):
    list_display = ["processed_at", "provider", "scope", "event_id"]
    list_filter = ["provider"]
    search_fields = ["event_id"]


@admin.register(BankSecret)
class BankSecretAdmin(ReadOnlyAdmin):
    list_display = ["organisation", "label", "active", "created_at", "deactivated_at"]
    list_filter = ["active", "organisation"]
    exclude = ["nonce", "ciphertext"]
    actions = ["deactivate"]

    def has_change_permission(self, request, obj=None):
        return request.user.has_perm("payments.change_banksecret")  # needed for the action

    def get_readonly_fields(self, request, obj=None):
        return ["organisation", "label", "active", "created_at", "deactivated_at"]

    @admin.action(description="Retire the selected secrets (deliveries signed only with them are refused)")
    def deactivate(self, request, queryset):
        for secret in queryset.filter(active=True):
            services.bank_secret_deactivate(secret=secret)


from .reconciliation.models import ReconciliationLine, ReconciliationRun  # noqa: E402


@admin.register(ReconciliationRun)
class ReconciliationRunAdmin(ReadOnlyAdmin):
    list_display = ["id", "created_at", "source", "scope", "statement_id", "state", "counts"]
    list_filter = ["source", "state"]
    search_fields = ["statement_id", "digest", "file_name"]


@admin.register(ReconciliationLine)
class ReconciliationLineAdmin(ReadOnlyAdmin):
    list_display = ["run", "line_no", "reference", "amount", "currency", "outcome", "tx_hash"]
    list_filter = ["outcome"]
    search_fields = ["reference", "source_ref", "tx_hash"]
    raw_id_fields = ["run", "payment"]
