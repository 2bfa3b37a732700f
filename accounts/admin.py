"""Memberships are read-only here: creating one needs an identity and a sealed custodial key,
which only ``accounts.services.membership_create`` makes. Custodial keys are not shown at all."""

from django.contrib import admin

from . import services
from .models import ApiToken, Membership, PasskeyCredential


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ["user", "organisation", "role", "identity", "created_at"]
    list_filter = ["role", "organisation__org_type"]
    list_select_related = ["user", "organisation", "identity__organisation"]
    search_fields = ["user__username", "organisation__msp_id"]

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    """Tokens are made by ``accounts.services.api_token_create`` (the token is shown once, on the
    tokens page or by the ``api_token`` command); here they can be seen and revoked."""

    list_display = ["prefix", "name", "user", "organisation", "created_at", "last_used_at", "expires_at", "revoked_at"]
    list_filter = ["organisation"]
    list_select_related = ["user", "organisation"]
    search_fields = ["prefix", "name", "user__username"]
    readonly_fields = ["user", "organisation", "name", "prefix", "scopes", "created_at", "last_used_at", "expires_at",
                       "revoked_at"]
    exclude = ["token_hash"]
    actions = ["revoke"]

    def has_add_permission(self, request, obj=None):
        return False

    @admin.action(description="Revoke the selected tokens")
    def revoke(self, request, queryset):
        for token in queryset:
            services.api_token_revoke(token=token)


@admin.register(PasskeyCredential)
class PasskeyCredentialAdmin(admin.ModelAdmin):
    """Deleting a passkey (e.g. of a lost phone) is how an operator resets it."""

    list_display = ["user", "name", "created_at", "last_used_at"]
    search_fields = ["user__username", "name"]
    fields = ["user", "name", "created_at", "last_used_at", "sign_count"]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False
