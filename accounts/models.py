"""Links Django users to ledger organisations and identities, and keeps custodial keys."""

from django.conf import settings
from django.db import models

from ledger.models import Identity, Organisation


class Role(models.TextChoices):
    OWNER = "owner"
    MEMBER = "member"


class Membership(models.Model):
    """A user acts for an organisation through their own ledger identity."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    organisation = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="memberships")
    identity = models.OneToOneField(Identity, on_delete=models.PROTECT, related_name="membership")
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.MEMBER)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "organisation"], name="membership_unique")]

    def __str__(self) -> str:
        return f"{self.user} → {self.organisation.msp_id} ({self.role})"


class CustodialKey(models.Model):
    """An identity's Ed25519 private key, sealed with AES-256-GCM under the key-encryption key.
    The identity's id is the associated data, so a ciphertext cannot be moved to another row."""

    identity = models.OneToOneField(Identity, on_delete=models.PROTECT, related_name="custodial_key")
    nonce = models.BinaryField(max_length=12)
    ciphertext = models.BinaryField()
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"sealed key of identity {self.identity_id}"


class Profile(models.Model):
    """What a user chose for themselves, kept across sessions and devices."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="profile")
    # A code from settings.LANGUAGES (checked by ``accounts.services.profile_language_set``);
    # empty until the user picks one, so their browser's language applies.
    language = models.CharField(max_length=15, blank=True, default="")
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"profile of {self.user}"
