"""Users, organisations and identities; invoking chaincode as a signed-in user."""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.utils import timezone

from ledger import services as ledger
from ledger.crypto import generate_private_key, public_bytes
from ledger.keys import ENERGY, UTILITY_SHARDS, household_account, producer_account, utility_account
from ledger.models import Identity, IdentityKind, Organisation, OrgType

from .keys import custodial_key_store, custodial_signer
from .models import ApiToken, CustodialKey, Membership, Profile, Role
from .scopes import SCOPES
from .selectors import TOKEN_PREFIX, token_hash


def household_account_key(organisation: Organisation) -> str:
    return household_account(organisation.msp_id)


@transaction.atomic
def identity_rotate_custodial_key(*, identity: Identity) -> Identity:
    """A fresh custodial key for ``identity``: rotated on chain (a configuration transaction) and
    sealed in place of the old one, in one database transaction."""
    key = generate_private_key()
    rotated = ledger.identity_rotate_key(identity=identity, public_key=public_bytes(key))
    CustodialKey.objects.filter(identity=identity).delete()
    custodial_key_store(identity=rotated, key=key)
    return rotated


@transaction.atomic
def membership_create(*, user: AbstractBaseUser, organisation: Organisation, role: str = Role.MEMBER) -> Membership:
    """Give ``user`` a custodial identity in ``organisation``."""
    key = generate_private_key()
    identity = ledger.identity_register(organisation=organisation, name=user.get_username(),
                                        public_key=public_bytes(key))
    custodial_key_store(identity=identity, key=key)
    return Membership.objects.create(user=user, organisation=organisation, identity=identity, role=role)


@transaction.atomic
def user_signup(*, username: str, password: str, email: str = "", household_name: str | None = None):
    """A resident signs up: a user, their household organisation, an identity and a k account."""
    user = get_user_model().objects.create_user(username=username, password=password, email=email)
    org = ledger.organisation_create(msp_id=f"hh-{username.lower()}", name=household_name or f"{username}'s household",
                                     org_type=OrgType.HOUSEHOLD)
    membership_create(user=user, organisation=org, role=Role.OWNER)
    if ledger.Asset.objects.filter(code=ENERGY).exists():
        ledger.account_open(key=household_account_key(org), asset=ENERGY, organisation=org)
    return user


def membership_for(user, organisation: Organisation | None = None) -> Membership:
    qs = Membership.objects.select_related("identity__organisation", "organisation").filter(user=user)
    if organisation is not None:
        qs = qs.filter(organisation=organisation)
    membership = qs.order_by("id").first()
    if membership is None:
        raise Membership.DoesNotExist(f"{user} is not a member of any organisation")
    return membership


def invoke_as(*, identity: Identity, chaincode: str, function: str, args: dict[str, Any],
              idempotency_key: str | None, proposed_at: datetime | None = None) -> ledger.InvokeResult:
    """Invoke with a custodial identity: its sealed key signs the proposal."""
    return ledger.invoke(chaincode=chaincode, function=function, args=args, invoker=identity,
                         idempotency_key=idempotency_key, signer=custodial_signer(identity), proposed_at=proposed_at)


@transaction.atomic
def service_identity(*, organisation: Organisation, name: str) -> Identity:
    """An organisation's own signing identity (a bank's webhook receiver, the utility's
    scheduler): a custodial key with no user behind it. Created on first use."""
    existing = Identity.objects.filter(organisation=organisation, name=name).first()
    if existing is not None:
        return existing
    key = generate_private_key()
    try:
        with transaction.atomic():
            identity = ledger.identity_register(organisation=organisation, name=name, public_key=public_bytes(key),
                                                kind=IdentityKind.SERVICE)
            custodial_key_store(identity=identity, key=key)
    except IntegrityError:  # a concurrent first use created it
        return Identity.objects.get(organisation=organisation, name=name)
    return identity


@transaction.atomic
def energy_accounts_open(*, organisation: Organisation) -> list[str]:
    """Open the k accounts an organisation of this type holds (idempotent): a utility's
    shards, a producer's account, a household's account."""
    if organisation.org_type == OrgType.UTILITY:
        keys = [utility_account(organisation.msp_id, n) for n in range(UTILITY_SHARDS)]
    elif organisation.org_type == OrgType.PRODUCER:
        keys = [producer_account(organisation.msp_id)]
    elif organisation.org_type == OrgType.HOUSEHOLD:
        keys = [household_account_key(organisation)]
    else:
        keys = []
    for key in keys:
        ledger.account_open(key=key, asset=ENERGY, organisation=organisation)
    return keys


class TokenError(ValueError):
    """A token request that cannot be granted; nothing was created."""


@transaction.atomic
def api_token_create(*, user, organisation: Organisation, name: str, scopes: list[str],
                     expires_at: datetime | None = None) -> tuple[ApiToken, str]:
    """A new API token for ``user`` acting in ``organisation``; returns the row and the token
    itself, which is shown once and never stored (only its SHA-256 is)."""
    name = name.strip()
    if not name or len(name) > 100:
        raise TokenError("give the token a name of 1 to 100 characters")
    unknown = sorted(set(scopes) - set(SCOPES))
    if unknown:
        raise TokenError(f"unknown scope(s): {', '.join(unknown)}")
    if not scopes:
        raise TokenError("choose at least one scope")
    if not Membership.objects.filter(user=user, organisation=organisation).exists():
        raise TokenError(f"{user} is not a member of {organisation.msp_id}")
    if expires_at is not None and expires_at <= timezone.now():
        raise TokenError("the expiry must be in the future")
    raw = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken.objects.create(user=user, organisation=organisation, name=name, prefix=raw[:12],
                                    token_hash=token_hash(raw), scopes=sorted(set(scopes)), expires_at=expires_at)
    return token, raw


@transaction.atomic
def api_token_revoke(*, token: ApiToken) -> ApiToken:
    """Revoke at once (idempotent: a revoked token keeps its first revocation time)."""
    ApiToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(revoked_at=timezone.now())
    token.refresh_from_db()
    return token


def api_token_mark_used(*, token: ApiToken) -> None:
    """Record use, at most once a minute per token: not a write on every API call."""
    now = timezone.now()
    if token.last_used_at is None or now - token.last_used_at > timedelta(minutes=1):
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        token.last_used_at = now


class LanguageError(ValueError):
    """Not one of the site's languages."""


def profile_language_set(*, user: AbstractBaseUser, language: str) -> Profile:
    """Remember ``user``'s language; every later request of theirs, on any device, uses it."""
    if language not in dict(settings.LANGUAGES):
        raise LanguageError(f"not a language of this site: {language!r}")
    profile, _ = Profile.objects.update_or_create(user=user, defaults={"language": language})
    return profile
