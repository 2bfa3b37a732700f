"""Bank signing secrets: create, retire, reveal, and the in-memory copy every delivery matches
against. A bank's secret identifies it; its webhook identity invokes the sale."""

from __future__ import annotations

import secrets as random_secrets
import time

from django.db import transaction
from django.utils import timezone

from accounts.keys import key_encryption_key
from accounts.services import service_identity
from ledger.crypto import open_private_key, seal_private_key
from ledger.models import Identity, Organisation, OrgType
from ledger.selectors import organisations_with_identity

from .models import BankSecret
from .rows import loaded, query_all, query_one

WEBHOOK_IDENTITY = "webhooks"  # the bank's service identity that reports payments


def _secret_aad(organisation_id: int, label: str) -> bytes:
    return f"gridcoin-bank-secret:{organisation_id}:{label}".encode()


@transaction.atomic
def bank_secret_create(*, organisation: Organisation, label: str, secret: str | None = None) -> tuple[BankSecret, str]:
    """A new active signing secret for a bank; returns the row and the secret (shown once)."""
    if organisation.org_type != OrgType.BANK:
        raise ValueError(f"{organisation.msp_id} is a {organisation.org_type}, not a bank")
    plain = secret or f"gcwh_{random_secrets.token_urlsafe(32)}"
    nonce, ciphertext = seal_private_key(plain.encode(), key_encryption_key(), _secret_aad(organisation.pk, label))
    row = BankSecret.objects.create(organisation=organisation, label=label, nonce=nonce, ciphertext=ciphertext)
    service_identity(organisation=organisation, name=WEBHOOK_IDENTITY)  # the identity that will invoke
    return row, plain


@transaction.atomic
def bank_secret_deactivate(*, secret: BankSecret) -> BankSecret:
    """Retire a secret (rotation's last step); deliveries signed only with it are refused."""
    BankSecret.objects.filter(pk=secret.pk).update(active=False, deactivated_at=timezone.now())
    secret.refresh_from_db()
    return secret


_opened: dict[tuple[int, bytes], str] = {}


def bank_secret_reveal(secret: BankSecret) -> str:
    """The plaintext secret (cached per row and ciphertext: decrypting per delivery is waste)."""
    cache_key = (secret.pk, bytes(secret.nonce))
    plain = _opened.get(cache_key)
    if plain is None:
        plain = open_private_key(bytes(secret.nonce), bytes(secret.ciphertext), key_encryption_key(),
                                 _secret_aad(secret.organisation_id, secret.label)).decode()
        if len(_opened) > 10_000:
            _opened.clear()
        _opened[cache_key] = plain
    return plain


_ACTIVE_SECRETS_SQL = (f"SELECT id, organisation_id, label, nonce, ciphertext FROM {BankSecret._meta.db_table} "
                       "WHERE active ORDER BY id")


def active_bank_secrets() -> list[tuple[BankSecret, str]]:
    """Every active secret, opened, with its bank and the bank's webhook identity (read along,
    so that a delivery needs no query of its own for it)."""
    rows = query_all(_ACTIVE_SECRETS_SQL, [])
    banks = organisations_with_identity([row[1] for row in rows], WEBHOOK_IDENTITY)
    entries = []
    for secret_id, organisation_id, label, nonce, ciphertext in rows:
        found = banks.get(organisation_id)
        if found is None:  # the secret, then its bank, were deleted between the two reads
            continue
        bank, identity = found
        if identity is not None:
            bank._webhook_identity = identity  # type: ignore[attr-defined]
        secret = loaded(BankSecret, id=secret_id, organisation=bank, label=label, nonce=bytes(nonce),
                        ciphertext=bytes(ciphertext), active=True)
        entries.append((secret, bank_secret_reveal(secret)))
    return entries


def webhook_identity_of(bank: Organisation) -> Identity | None:
    """The bank's webhook identity if it was read along with the bank's secrets, else None."""
    return getattr(bank, "_webhook_identity", None)


class BankSecretCache:
    """The active bank secrets (opened), with their banks and webhook identities, kept in
    memory: reading and opening them for every delivery cost a query and six model instances.

    Nothing here trusts the copy for longer than it takes to be proven wrong:

    * a delivery that matches no cached secret reloads the list before it is refused, so a
      secret created a moment ago (rotation's first step) is honoured at once, by every process;
    * a delivery that matches a cached secret has that secret confirmed (same row, same nonce,
      still active) by the statement that claims the event id, and its bank's webhook identity
      re-read (revocation, key) right after it, inside the transaction that applies it: a
      secret retired or an identity revoked before then is seen exactly as if nothing were
      cached (the delivery is then answered from a freshly loaded list);
    * a delivery refused for any other reason (stale timestamp, malformed body, wrong bank,
      unknown party, ledger conflict) after matching a cached secret is refused only once the
      secret is confirmed from the database, so a retired secret still reads "no v1 signature
      matches an active secret", as it did when every delivery read the secrets.

    ``MAX_AGE`` only bounds how long an unused process keeps plaintexts of retired secrets in
    memory; correctness does not depend on it."""

    MAX_AGE = 300.0

    def __init__(self) -> None:
        self._entries: list[tuple[BankSecret, str]] | None = None
        self._loaded_at = 0.0

    def get(self) -> tuple[list[tuple[BankSecret, str]], bool]:
        """The secrets and whether they were just read from the database."""
        entries = self._entries
        if entries is None or time.monotonic() - self._loaded_at > self.MAX_AGE:
            return self.reload(), True
        return entries, False

    def reload(self) -> list[tuple[BankSecret, str]]:
        # Rows read inside an uncommitted (or later rolled back) transaction may be published:
        # another delivery that matches one is confirmed against its own view of the database.
        entries = active_bank_secrets()
        self._entries, self._loaded_at = entries, time.monotonic()
        return entries

    def clear(self) -> None:
        self._entries = None


bank_secrets = BankSecretCache()


class StaleSecret(Exception):
    """The cached secret (or its bank's identity) no longer matches the database."""


_CONFIRM_SQL = f"SELECT 1 FROM {BankSecret._meta.db_table} WHERE id = %s AND nonce = %s AND active"


def secret_confirmed(secret: BankSecret) -> bool:
    """Whether ``secret`` is still this row, with this nonce, and active."""
    return query_one(_CONFIRM_SQL, [secret.pk, secret.nonce]) is not None
