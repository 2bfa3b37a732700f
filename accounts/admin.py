"""Memberships are read-only here: creating one needs an identity and a sealed custodial key,
which only ``accounts.services.membership_create`` makes. Custodial keys are not shown at all."""

from django.contrib import admin

from .models import Membership


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
