"""Devices are registered through ``meters.services`` (a device needs a ledger identity and an
account); the admin lists them and may edit only names, places and enrolment state."""

from django.contrib import admin

from .models import Device


@admin.register(Device)
class DeviceAdmin(admin.ModelAdmin):
    list_display = ["public_id", "name", "kind", "organisation", "state", "is_public"]
    list_filter = ["kind", "state", "is_public"]
    search_fields = ["public_id", "name"]
    readonly_fields = ["public_id", "kind", "organisation", "identity", "created_at"]
    show_full_result_count = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
