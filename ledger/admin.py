"""Read-only admin for the ledger. Value and history change only through ``ledger.services``
and the sealer, so the admin can look but never add, change or delete."""

from django.contrib import admin

from .models import Account, Asset, Block, Identity, Organisation, Posting, StateEntry, StateWrite, Transaction


class ReadOnlyAdmin(admin.ModelAdmin):
    show_full_result_count = False  # counting millions of rows on every page load is slow

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False
    show_change_link = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Organisation)
class OrganisationAdmin(ReadOnlyAdmin):
    list_display = ["msp_id", "name", "org_type", "created_at"]
    list_filter = ["org_type"]
    search_fields = ["msp_id", "name"]


@admin.register(Identity)
class IdentityAdmin(ReadOnlyAdmin):
    list_display = ["qualified_name", "kind", "created_at", "revoked_at"]
    list_filter = ["kind", "organisation__org_type"]
    list_select_related = ["organisation"]
    search_fields = ["name", "organisation__msp_id"]
    exclude = ["public_key"]
    readonly_fields = ["public_key_hex"]

    @admin.display(description="public key")
    def public_key_hex(self, obj: Identity) -> str:
        return bytes(obj.public_key).hex()


@admin.register(Asset)
class AssetAdmin(ReadOnlyAdmin):
    list_display = ["code", "name", "scale", "display_unit"]


@admin.register(Account)
class AccountAdmin(ReadOnlyAdmin):
    list_display = ["key", "asset", "kind", "organisation", "balance"]
    list_filter = ["asset", "kind"]
    list_select_related = ["asset", "organisation"]
    search_fields = ["key", "organisation__msp_id"]


class PostingInline(ReadOnlyInline):
    model = Posting
    fields = ["account", "asset", "amount"]


class StateWriteInline(ReadOnlyInline):
    model = StateWrite
    fields = ["namespace", "key", "value", "is_delete", "version"]


@admin.register(Transaction)
class TransactionAdmin(ReadOnlyAdmin):
    list_display = ["tx_hash", "chaincode", "function", "invoker", "status", "proposed_at", "block"]
    list_filter = ["status", "chaincode"]
    list_select_related = ["invoker__organisation", "block"]
    search_fields = ["tx_hash", "idempotency_key"]
    inlines = [PostingInline, StateWriteInline]


@admin.register(Block)
class BlockAdmin(ReadOnlyAdmin):
    list_display = ["number", "timestamp", "tx_count", "header_hash"]
    search_fields = ["header_hash"]


@admin.register(StateEntry)
class StateEntryAdmin(ReadOnlyAdmin):
    list_display = ["namespace", "key", "version", "is_deleted"]
    list_filter = ["namespace"]
    search_fields = ["key"]
