"""Reads for sign-in safety: who is staff, API tokens, second-factor devices."""

from __future__ import annotations

import hashlib

from django.db.models import Q, QuerySet
from django.utils import timezone
from django_otp import devices_for_user

from ledger.models import Organisation, OrgType

from .models import ApiToken, Membership, PasskeyCredential

# Organisations whose people act for others (sell, settle, give, audit): their staff sign in
# with a second factor. Residents (households) are not forced to.
STAFF_ORG_TYPES = (OrgType.UTILITY, OrgType.BANK, OrgType.CHARITY, OrgType.AUDITOR)
TOKEN_PREFIX = "gct_"


def is_staff(user) -> bool:
    if not getattr(user, "is_authenticated", False):
        return False
    if user.is_staff or user.is_superuser:
        return True
    return Membership.objects.filter(user=user, organisation__org_type__in=STAFF_ORG_TYPES).exists()


def staff_organisations(user) -> QuerySet[Organisation]:
    return Organisation.objects.filter(memberships__user=user,
                                       org_type__in=STAFF_ORG_TYPES).order_by("msp_id").distinct()


def token_hash(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def api_token_active(raw: str) -> ApiToken | None:
    """The usable token ``raw`` names: not revoked, not expired, its owner active and still a
    member of its organisation. ``None`` for anything else."""
    if not raw.startswith(TOKEN_PREFIX) or len(raw) > 200 or "\x00" in raw:
        return None
    now = timezone.now()
    token = (ApiToken.objects.select_related("user", "organisation")
             .filter(token_hash=token_hash(raw), revoked_at__isnull=True)
             .filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now)).first())
    if token is None or not token.user.is_active:
        return None
    if not Membership.objects.filter(user_id=token.user_id, organisation_id=token.organisation_id).exists():
        return None
    return token


def api_tokens_of(user) -> QuerySet[ApiToken]:
    return ApiToken.objects.filter(user=user).select_related("organisation").order_by("-created_at")


def has_second_factor(user) -> bool:
    return any(True for _ in devices_for_user(user, confirmed=True))


def passkeys_of(user) -> QuerySet[PasskeyCredential]:
    return PasskeyCredential.objects.filter(user=user, confirmed=True).order_by("id")
