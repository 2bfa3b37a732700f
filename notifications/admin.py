from django.contrib import admin

from .models import Delivery, Notification, PushSubscription


@admin.register(Notification)
class NotificationAdmin(admin.ModelAdmin):
    list_display = ("event_key", "user", "kind", "in_app", "created_at", "read_at")
    list_filter = ("kind", "in_app")
    search_fields = ("event_key", "user__username")
    readonly_fields = [f.name for f in Notification._meta.fields]


@admin.register(Delivery)
class DeliveryAdmin(admin.ModelAdmin):
    """Operators see what was sent and why something was not; the task is the only writer."""

    list_display = ("notification", "channel", "status", "attempts", "sent_at")
    list_filter = ("channel", "status")
    readonly_fields = [f.name for f in Delivery._meta.fields]


@admin.register(PushSubscription)
class PushSubscriptionAdmin(admin.ModelAdmin):
    list_display = ("user", "endpoint", "created_at")
    readonly_fields = [f.name for f in PushSubscription._meta.fields]
