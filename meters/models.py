"""Consumer and producer devices (off-chain registry). Balances live on the ledger, in the
device's account ``device:<public_id>``; this table keeps names, kinds, owners and places."""

from django.db import models
from django.utils.translation import gettext_lazy as _

from ledger.keys import device_account
from ledger.models import Identity, Organisation


class DeviceKind(models.TextChoices):
    HOUSEHOLD_METER = "household_meter", _("Household meter")
    STREET_LIGHT = "street_light", _("Street light")
    STADIUM_LIGHTS = "stadium_lights", _("Stadium lights")
    MARKET_SQUARE = "market_square", _("Market square")
    PRODUCER_METER = "producer_meter", _("Producer meter")


# Shared infrastructure anyone may find and fund; a household meter is fundable by anyone who
# knows its id but is never listed.
PUBLIC_KINDS = frozenset({DeviceKind.STREET_LIGHT, DeviceKind.STADIUM_LIGHTS, DeviceKind.MARKET_SQUARE})


class EnrolmentState(models.TextChoices):
    REGISTERED = "registered"
    ACTIVE = "active"
    RETIRED = "retired"


class Device(models.Model):
    public_id = models.SlugField(max_length=32, unique=True, help_text="printed on the QR sticker, e.g. SL-0001")
    name = models.CharField(max_length=120)
    kind = models.CharField(max_length=20, choices=DeviceKind.choices)
    organisation = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="devices")
    identity = models.OneToOneField(Identity, on_delete=models.PROTECT, related_name="device",
                                    help_text="the meter's own Ed25519 key (identity kind device, name = public id)")
    latitude = models.DecimalField(max_digits=9, decimal_places=6, null=True, blank=True)
    longitude = models.DecimalField(max_digits=9, decimal_places=6, null=True, blank=True)
    # What residents are shown of where a device is (a street, a ward); never the coordinates.
    place = models.CharField(max_length=120, blank=True, default="")
    state = models.CharField(max_length=12, choices=EnrolmentState.choices, default=EnrolmentState.ACTIVE)
    is_public = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["public_id"]

    def __str__(self) -> str:
        return f"{self.public_id} {self.name}"

    @property
    def account_key(self) -> str:
        return device_account(self.public_id)

    @property
    def is_retired(self) -> bool:
        return self.state == EnrolmentState.RETIRED


class SimulatedMeterKey(models.Model):
    """The private key of a meter that the demo or a simulator plays, sealed with AES-256-GCM
    under GRIDCOIN_KEK (as custodial keys are). Real meters keep their keys; they have no row."""

    device = models.OneToOneField(Device, on_delete=models.CASCADE, related_name="simulated_key")
    nonce = models.BinaryField(max_length=12)
    ciphertext = models.BinaryField()
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"simulated key of {self.device_id}"
