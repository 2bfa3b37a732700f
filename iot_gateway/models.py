"""What the gateway saw: every reading it was given (applied or not, with the reason) and each
meter's last known connection state. Readings are private to the device's owner and the
utility: there is no public API for them."""

from django.db import models

from meters.models import Device


class ReadingStatus(models.TextChoices):
    APPLIED = "applied"    # a new ledger transaction burned / minted the register delta
    REPLAYED = "replayed"  # delivered again: the ledger answered with the first result
    REJECTED = "rejected"  # malformed, unknown meter, forged, older counter, ...


class ReceivedVia(models.TextChoices):
    MQTT = "mqtt"
    HTTP = "http"


class MeterReading(models.Model):
    """Audit row per received reading. ``device`` is empty when the meter id names no device
    (or the message named none); the registers are empty when the message was malformed."""

    # db_index off: the (device, -received_at) index below serves every lookup by device.
    device = models.ForeignKey(Device, on_delete=models.PROTECT, null=True, blank=True, related_name="readings",
                               db_index=False)
    meter = models.CharField(max_length=64, blank=True, help_text="the meter id the message claimed")
    counter = models.BigIntegerField(null=True, blank=True)
    import_wh = models.BigIntegerField(null=True, blank=True)
    export_wh = models.BigIntegerField(null=True, blank=True)
    timestamp = models.DateTimeField(null=True, blank=True)
    status = models.CharField(max_length=10, choices=ReadingStatus.choices)
    reason = models.TextField(blank=True)
    tx_hash = models.CharField(max_length=64, blank=True)
    received_via = models.CharField(max_length=4, choices=ReceivedVia.choices)
    received_at = models.DateTimeField()

    class Meta:
        indexes = [models.Index(fields=["device", "-received_at"], name="meterreading_device_recent")]

    def __str__(self) -> str:
        return f"{self.meter}#{self.counter} {self.status}"


class MeterStatus(models.Model):
    """Online while the meter's MQTT session lives; its last will says "offline"."""

    device = models.OneToOneField(Device, on_delete=models.CASCADE, primary_key=True, related_name="mqtt_status")
    online = models.BooleanField()
    changed_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.device_id} {'online' if self.online else 'offline'}"
