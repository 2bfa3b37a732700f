from django.contrib import admin

from .models import MeterReading, MeterStatus


@admin.register(MeterReading)
class MeterReadingAdmin(admin.ModelAdmin):
    list_display = ("meter", "counter", "import_wh", "export_wh", "status", "received_via", "received_at")
    list_filter = ("status", "received_via")
    search_fields = ("meter",)
    raw_id_fields = ("device",)


@admin.register(MeterStatus)
class MeterStatusAdmin(admin.ModelAdmin):
    list_display = ("device", "online", "changed_at")
    list_filter = ("online",)
