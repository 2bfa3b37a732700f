"""What a resident is told and how: one ``Notification`` per (user, event), one ``Delivery``
per (notification, channel) that remembers whether it went out, the user's ``Preference``
opt-outs, their browsers' ``PushSubscription``s, and a ``DeviceWatch`` per device holding the
level (ok / low / off) it was last seen at, so a change of level is noticed once."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from meters.models import Device


class Kind(models.TextChoices):
    DEVICE_LOW = "device_low", _("A device runs low")
    DEVICE_OFF = "device_off", _("A device switches off")
    PAYMENT_CREDITED = "payment_credited", _("A payment lands")


class Channel(models.TextChoices):
    IN_APP = "in_app", _("In the app")
    EMAIL = "email", _("E-mail")
    PUSH = "push", _("Push to this phone")


# Channels that send something out (the in-app list is the notification row itself).
OUTBOUND_CHANNELS = (Channel.EMAIL, Channel.PUSH)


class Notification(models.Model):
    """``event_key`` names the event (``payment-credited:<payment>``, ``device-off:<device>:<n>``);
    unique per user, so an event processed twice notifies each recipient once."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    event_key = models.CharField(max_length=200)
    data = models.JSONField(default=dict, help_text="what the texts are rendered from (device, amounts, ...)")
    url = models.CharField(max_length=200, blank=True, default="")
    in_app = models.BooleanField(default=True, help_text="listed on the user's notifications page")
    created_at = models.DateTimeField(auto_now_add=True)
    read_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [models.UniqueConstraint(fields=["user", "event_key"], name="notification_once_per_event")]
        indexes = [models.Index(fields=["user", "in_app", "read_at"], name="notification_unread")]

    def __str__(self) -> str:
        return f"{self.event_key} → {self.user_id}"


class DeliveryStatus(models.TextChoices):
    PENDING = "pending"
    SENDING = "sending"  # claimed by a task; a claim older than DELIVERY_CLAIM_TIMEOUT is taken over
    SENT = "sent"
    SKIPPED = "skipped"  # nothing to send to (no e-mail address, no push subscription)
    FAILED = "failed"  # gave up after the task's retries, or the message was refused for good


class Delivery(models.Model):
    notification = models.ForeignKey(Notification, on_delete=models.CASCADE, related_name="deliveries")
    channel = models.CharField(max_length=10, choices=Channel.choices)
    status = models.CharField(max_length=10, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    claimed_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    sent_to = models.JSONField(default=list, help_text="push subscriptions already delivered to (a retry skips them)")
    last_error = models.TextField(blank=True, default="")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["notification", "channel"], name="delivery_once_per_channel")]

    def __str__(self) -> str:
        return f"{self.notification_id}/{self.channel} {self.status}"


class Preference(models.Model):
    """A user's choice for one kind on one channel; without a row the channel is on."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    channel = models.CharField(max_length=10, choices=Channel.choices)
    enabled = models.BooleanField(default=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "kind", "channel"], name="preference_unique")]

    def __str__(self) -> str:
        return f"{self.user_id} {self.kind}/{self.channel} {'on' if self.enabled else 'off'}"


class PushSubscription(models.Model):
    """A browser's Web Push subscription (its push service endpoint and the keys that encrypt
    messages for it, RFC 8291). Removed when the push service answers 404 or 410."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="push_subscriptions")
    endpoint = models.URLField(max_length=1000, unique=True)
    p256dh = models.CharField(max_length=200)
    auth = models.CharField(max_length=100)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.user_id} {self.endpoint[:60]}"


class DeviceLevel(models.TextChoices):
    OK = "ok"
    LOW = "low"
    OFF = "off"


class DeviceWatch(models.Model):
    """The level a device was last seen at, and a sample of its import register from which
    its recent consumption rate is estimated. ``low_seq`` / ``off_seq`` count the times it went
    low / off; each count is one event (``device-low:<device>:<n>``)."""

    device = models.OneToOneField(Device, on_delete=models.CASCADE, primary_key=True, related_name="+")
    level = models.CharField(max_length=3, choices=DeviceLevel.choices)
    low_seq = models.PositiveIntegerField(default=0)
    off_seq = models.PositiveIntegerField(default=0)
    low_from_wh = models.BigIntegerField(default=0, help_text="spendable Wh when it last went low")
    observed_at = models.DateTimeField()
    sample_import_wh = models.BigIntegerField(null=True, blank=True)
    sample_at = models.DateTimeField(null=True, blank=True)
    rate_wh_per_hour = models.BigIntegerField(default=0, help_text="recent consumption, 0 while unknown")

    def __str__(self) -> str:
        return f"{self.device_id} {self.level}"
