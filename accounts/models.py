"""Links Django users to ledger organisations and identities, and keeps custodial keys."""

from django.conf import settings
from django.db import models
from django_otp.models import Device

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


class ApiToken(models.Model):
    """A scoped API token for a bank, an auditor or a script: it acts as its owner, limited to
    its scopes, while its owner stays a member of its organisation. Only the SHA-256 of the
    token is kept (the token is 256 random bits, so a plain hash cannot be searched back); the
    prefix tells tokens apart in lists."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    organisation = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="api_tokens")
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=16)
    token_hash = models.CharField(max_length=64, unique=True)
    scopes = models.JSONField(default=list)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.name}, {self.user})"


class PasskeyCredential(Device):
    """A WebAuthn credential (passkey) as a django-otp device, so a session verified with it is
    ``user.is_verified()`` like one verified with a TOTP code. It verifies signed assertions,
    never typed tokens."""

    credential_id = models.BinaryField(max_length=1023, unique=True)
    public_key = models.BinaryField()
    sign_count = models.PositiveBigIntegerField(default=0)
    transports = models.JSONField(default=list)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    def verify_token(self, token) -> bool:
        return False


class Profile(models.Model):
    """What a user chose for themselves, kept across sessions and devices."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="profile")
    # A code from settings.LANGUAGES (checked by ``accounts.services.profile_language_set``);
    # empty until the user picks one, so their browser's language applies.
    language = models.CharField(max_length=15, blank=True, default="")
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"profile of {self.user}"
