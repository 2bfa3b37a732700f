"""The only write path of ``payments``: bank secrets, webhook deliveries, the simulator.

A delivery is verified on its raw body, parsed into a ``PaymentNotice``, routed through the
dispatch table to a seller chaincode and invoked as the bank's service identity. The event id
is claimed (``ProcessedEvent``, unique) in the same database transaction as the ledger
invocation, so a redelivery, even a concurrent one, changes nothing. Every delivery, accepted
or not, leaves exactly one ``WebhookEvent`` audit row.

Status codes (see payments/README.md):
200 applied / duplicate / ignored; 400 malformed; 401 not authentic or not fresh;
409 the event id was already used for a different payment; 422 the ledger refused the sale
(final: the event id is spent, redelivering replays the refusal, so do not retry);
503 the endpoint has no secret configured.
"""

from __future__ import annotations

import json
import logging
import secrets as random_secrets
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, NamedTuple

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from accounts.keys import custodial_signer, key_encryption_key
from accounts.services import service_identity
from ledger import services as ledger
from ledger.chaincodes.energy import (
    ENERGY,
    UTILITY_SHARDS,
    credit_account,
    household_account,
    producer_account,
    utility_account,
)
from ledger.crypto import open_private_key, seal_private_key
from ledger.db import bound_cursor
from ledger.documents import body_digest
from ledger.models import Account, Asset, Identity, Organisation, OrgType

from .models import BankSecret, DeliveryStatus, ProcessedEvent, Provider, WebhookEvent
from .notices import NoticeError, PaymentNotice, bank_notice_from, parse_json_object, stripe_notice_from
from .signing import (
    NO_MATCH,
    SignatureError,
    SignatureHeader,
    check_freshness,
    match_secret,
    parse_signature_header,
    signature_header,
)

logger = logging.getLogger(__name__)

WEBHOOK_IDENTITY = "webhooks"  # the bank's service identity that reports payments
MAX_AUDIT_BODY = 16_384
MAX_BODY_BYTES = 65_536


# --- bank secrets ---------------------------------------------------------------------------

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


_ORG_FIELDS = ["id", "msp_id", "name", "org_type", "created_at"]
_ORG_COLUMNS = "o.id, o.msp_id, o.name, o.org_type, o.created_at"


def _loaded(model, **values):
    """A model instance for a row read with raw SQL (as if the ORM had loaded it)."""
    instance = model(**values)
    instance._state.adding = False
    instance._state.db = connection.alias
    return instance


def _organisation_from_row(values: tuple) -> Organisation:
    return _loaded(Organisation, **dict(zip(_ORG_FIELDS, values, strict=True)))


_SECRET_COLUMNS = ("s.id, s.label, s.nonce, s.ciphertext, i.id, i.kind, i.public_key, i.created_at, i.revoked_at, "
                   f"{_ORG_COLUMNS}")


def _active_bank_secrets() -> list[tuple[BankSecret, str]]:
    """Every active secret with its bank and the bank's webhook identity, read from the database."""
    rows = _query_all(
        f"SELECT {_SECRET_COLUMNS} FROM {BankSecret._meta.db_table} s "
        "JOIN ledger_organisation o ON o.id = s.organisation_id "
        "LEFT JOIN ledger_identity i ON i.organisation_id = o.id AND i.name = %s "
        "WHERE s.active ORDER BY s.id",
        [WEBHOOK_IDENTITY],
    )
    secrets = []
    for secret_id, label, nonce, ciphertext, identity_id, kind, public_key, created_at, revoked_at, *org in rows:
        bank = _organisation_from_row(tuple(org))
        if identity_id is not None:  # read along, so the delivery needs no query of its own for it
            bank._webhook_identity = _loaded(Identity, id=identity_id, organisation=bank, name=WEBHOOK_IDENTITY,
                                             kind=kind, public_key=bytes(public_key), created_at=created_at,
                                             revoked_at=revoked_at)
        secret = _loaded(BankSecret, id=secret_id, organisation=bank, label=label, nonce=bytes(nonce),
                         ciphertext=bytes(ciphertext), active=True)
        secrets.append((secret, bank_secret_reveal(secret)))
    return secrets


class _BankSecretCache:
    """The active bank secrets (opened), with their banks and webhook identities, kept in
    memory: reading and opening them for every delivery cost a query and six model instances.

    Nothing here trusts the copy for longer than it takes to be proven wrong:

    * a delivery that matches no cached secret reloads the list before it is refused, so a
      secret created a moment ago (rotation's first step) is honoured at once, by every process;
    * a delivery that matches a cached secret has that secret confirmed (same row, same nonce,
      still active) and its bank's webhook identity re-read (revocation, key) by the statement
      that claims the event id, inside the transaction that applies it: a secret retired or an
      identity revoked before that statement runs is seen exactly as if nothing were cached
      (the delivery is then answered from a freshly loaded list);
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
        entries = _active_bank_secrets()
        self._entries, self._loaded_at = entries, time.monotonic()
        return entries

    def clear(self) -> None:
        self._entries = None


_bank_secrets = _BankSecretCache()


class _StaleSecret(Exception):
    """The cached secret (or its bank's identity) no longer matches the database."""


# --- the dispatch table: chaincode → who pays whom and which accounts the sale needs --------

class _Party(NamedTuple):
    """A payer or payee as the claiming statement read it (no model instance per delivery).
    ``created_at`` is the row's creation time as text: it only tells recreated rows apart."""

    pk: int
    msp_id: str
    name: str
    org_type: str
    created_at: str

    def organisation(self) -> Organisation:
        return _loaded(Organisation, id=self.pk, msp_id=self.msp_id, name=self.name, org_type=self.org_type)


AccountSpec = tuple[str, str, _Party]  # (key, asset, owner)


@dataclass(frozen=True)
class SaleRoute:
    chaincode: str
    function: str
    payer_type: str
    payee_type: str
    accounts: Callable[[PaymentNotice, _Party, _Party], list[AccountSpec]]


def _retail_accounts(notice: PaymentNotice, payer: _Party, payee: _Party) -> list[AccountSpec]:
    return [(credit_account(payer.msp_id, payee.msp_id), notice.currency, payer),
            (household_account(payer.msp_id), ENERGY, payer)]


def _wholesale_accounts(notice: PaymentNotice, payer: _Party, payee: _Party) -> list[AccountSpec]:
    return [(credit_account(payer.msp_id, payee.msp_id), notice.currency, payer),
            (producer_account(payee.msp_id), ENERGY, payee),
            *((utility_account(payer.msp_id, n), ENERGY, payer) for n in range(UTILITY_SHARDS))]


SALE_ROUTES: dict[str, SaleRoute] = {
    "retail-seller": SaleRoute("retail-seller", "sell", OrgType.HOUSEHOLD, OrgType.UTILITY, _retail_accounts),
    "wholesale-seller": SaleRoute("wholesale-seller", "sell", OrgType.UTILITY, OrgType.PRODUCER, _wholesale_accounts),
}


# --- deliveries -------------------------------------------------------------------------------

@dataclass(frozen=True)
class WebhookOutcome:
    http_status: int
    body: dict[str, Any]
    audit: dict[str, Any]  # the audit row's columns, as inserted

    @property
    def event(self) -> WebhookEvent:
        """The audit row (built on demand: the endpoint itself needs only status and body)."""
        return _loaded(WebhookEvent, **self.audit)

    @property
    def applied(self) -> bool:
        return self.audit["status"] == DeliveryStatus.APPLIED


class WebhookRefused(Exception):
    def __init__(self, http_status: int, message: str):
        super().__init__(message)
        self.http_status = http_status
        self.message = message


_AUDIT_COLUMNS = ("provider", "organisation_id", "event_id", "event_type", "payer", "payee", "amount", "currency",
                  "status", "reason", "http_status", "body", "signature_header", "received_at", "tx_hash")
_AUDIT_INSERT = (f"INSERT INTO {WebhookEvent._meta.db_table} ({', '.join(_AUDIT_COLUMNS)}, result) "
                 f"VALUES ({', '.join(['%s'] * len(_AUDIT_COLUMNS))}, %s) RETURNING id")


def _audit_params(values: dict[str, Any], result: Any) -> list[Any]:
    return [*(values[column] for column in _AUDIT_COLUMNS), None if result is None else json.dumps(result)]


@dataclass
class _Delivery:
    """Collects what is known about a delivery so that every exit writes one audit row."""

    provider: str
    raw_body: bytes
    signature_header: str
    organisation: Organisation | None = None
    event_id: str | None = None
    event_type: str = ""
    notice: PaymentNotice | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def audit_values(self, *, status: str, http_status: int, reason: str = "",
                     tx_hash: str | None = None) -> dict[str, Any]:
        """The audit row's columns (_AUDIT_COLUMNS, in order)."""
        notice = self.notice
        text = self.raw_body[: MAX_AUDIT_BODY * 4].decode("utf-8", errors="replace")[:MAX_AUDIT_BODY]
        return {
            "provider": self.provider, "organisation_id": self.organisation.pk if self.organisation else None,
            "event_id": self.event_id, "event_type": self.event_type[:60],
            "payer": notice.payer if notice else "", "payee": notice.payee if notice else "",
            "amount": notice.amount if notice else None, "currency": notice.currency if notice else "",
            "status": status, "reason": reason, "http_status": http_status, "body": text.replace("\x00", "\ufffd"),
            "signature_header": (self.signature_header or "")[:1000].replace("\x00", "\ufffd"),
            "received_at": timezone.now(), "tx_hash": tx_hash,
        }

    def record(self, *, status: str, http_status: int, body: dict[str, Any], reason: str = "",
               tx_hash: str | None = None, result: Any = None) -> WebhookOutcome:
        values = self.audit_values(status=status, http_status=http_status, reason=reason, tx_hash=tx_hash)
        # Raw SQL: one audit row per delivery is on the hot path; the ORM's insert machinery
        # cost more CPU than the insert.
        values["id"] = _query_one(_AUDIT_INSERT, _audit_params(values, result))[0]
        values["result"] = result
        return WebhookOutcome(http_status=http_status, body=body, audit=values)

    def refuse(self, http_status: int, message: str) -> WebhookOutcome:
        body = {"status": "rejected", "error": message}
        if self.event_id:
            body["event_id"] = self.event_id
        return self.record(status=DeliveryStatus.REJECTED, http_status=http_status, body=body, reason=message)


def _audit_text(value: Any, limit: int) -> str | None:
    """An unvalidated string, made storable for the audit (PostgreSQL text refuses NUL)."""
    return value[:limit].replace("\x00", "\ufffd") if isinstance(value, str) else None


def _guarded(receive: Callable[[_Delivery], WebhookOutcome], delivery: _Delivery) -> WebhookOutcome:
    try:
        if len(delivery.raw_body) > MAX_BODY_BYTES:
            raise WebhookRefused(413, f"body larger than {MAX_BODY_BYTES} bytes")
        return receive(delivery)
    except SignatureError as exc:
        return delivery.refuse(401, str(exc))
    except NoticeError as exc:
        return delivery.refuse(400, str(exc))
    except WebhookRefused as exc:
        return delivery.refuse(exc.http_status, exc.message)
    except ledger.IdempotencyConflict as exc:
        return delivery.refuse(409, str(exc))
    except ledger.LedgerError as exc:
        return delivery.refuse(400, f"the ledger cannot record this payment: {exc}")
    except Exception:
        logger.exception("webhook %s %s failed", delivery.provider, delivery.event_id)
        delivery.refuse(500, "internal error; the delivery was not applied and may be retried")
        raise


def bank_webhook_receive(*, raw_body: bytes, signature_header: str | None, now: float | None = None) -> WebhookOutcome:
    """``POST /webhooks/bank/``: a signed bank notification (see module docstring)."""
    delivery = _Delivery(provider=Provider.BANK, raw_body=raw_body, signature_header=signature_header or "")
    at = time.time() if now is None else now

    def receive(d: _Delivery) -> WebhookOutcome:
        header = parse_signature_header(signature_header)
        try:
            return _bank_delivery(d, header, at, reload=False)
        except _StaleSecret:  # the cached secret was retired (or its identity changed): start afresh
            d.organisation, d.event_id, d.event_type, d.notice = None, None, "", None
            try:
                return _bank_delivery(d, header, at, reload=True)
            except _StaleSecret:  # retired again between the fresh read and the claim
                d.organisation, d.event_id, d.event_type, d.notice = None, None, "", None
                raise SignatureError(NO_MATCH) from None

    return _guarded(receive, delivery)


def _bank_delivery(d: _Delivery, header: SignatureHeader, now: float, *, reload: bool) -> WebhookOutcome:
    raw_body = d.raw_body
    # The secret that matches identifies the bank: authenticate before parsing anything.
    if reload:
        entries, fresh = _bank_secrets.reload(), True
    else:
        entries, fresh = _bank_secrets.get()
    secret: BankSecret | None = match_secret(header=header, body=raw_body, secrets=entries)  # type: ignore[assignment]
    if secret is not None and not fresh and getattr(secret.organisation, "_webhook_identity", None) is None:
        secret = None  # the identity would be created for a bank read from the cache: read afresh first
    if secret is None and not fresh:
        entries, fresh = _bank_secrets.reload(), True
        secret = match_secret(header=header, body=raw_body, secrets=entries)  # type: ignore[assignment]
    if secret is None:
        raise SignatureError(NO_MATCH)
    try:
        check_freshness(header=header, now=now)
        d.organisation = bank = secret.organisation
        data = parse_json_object(raw_body)
        d.event_id, d.event_type = _audit_text(data.get("id"), 255), _audit_text(data.get("chaincode"), 60) or ""
        d.notice = notice = bank_notice_from(data)
        if notice.bank != bank.msp_id:
            if not Organisation.objects.filter(msp_id=notice.bank, org_type=OrgType.BANK).exists():
                raise WebhookRefused(400, f"unknown bank {notice.bank!r}")
            raise WebhookRefused(401, f"signed with a secret of {bank.msp_id}, but names bank {notice.bank!r}")
        return _apply_notice(d, notice, bank, scope=bank.msp_id, idempotency_key=f"bank:{notice.event_id}",
                             secret=secret)
    except (SignatureError, NoticeError, WebhookRefused, ledger.LedgerError):
        # Refused after matching a cached secret: refuse for this reason only if the secret
        # is still active, else for the reason a fresh read gives (see _BankSecretCache).
        if not fresh and not _secret_confirmed(secret):
            raise _StaleSecret() from None
        raise


def _secret_confirmed(secret: BankSecret) -> bool:
    row = _query_one(f"SELECT 1 FROM {BankSecret._meta.db_table} WHERE id = %s AND nonce = %s AND active",
                     [secret.pk, secret.nonce])
    return row is not None


def _stripe_checkout_session(event: dict[str, Any]) -> PaymentNotice | str:
    session = event["data"]["object"]
    if session.get("payment_status") not in (None, "paid"):
        return f"checkout session payment_status is {session.get('payment_status')!r}, not paid"
    return stripe_notice_from(event_id=event.get("id"), amount=session.get("amount_total"),
                              currency=session.get("currency"), created=event.get("created"),
                              metadata=session.get("metadata"))


def _stripe_payment_intent(event: dict[str, Any]) -> PaymentNotice | str:
    intent = event["data"]["object"]
    return stripe_notice_from(event_id=event.get("id"), amount=intent.get("amount_received"),
                              currency=intent.get("currency"), created=event.get("created"),
                              metadata=intent.get("metadata"))


# Stripe event type → notice (or the reason it is ignored). Other types are acknowledged and audited.
STRIPE_HANDLERS: dict[str, Callable[[dict[str, Any]], PaymentNotice | str]] = {
    "checkout.session.completed": _stripe_checkout_session,
    "payment_intent.succeeded": _stripe_payment_intent,
}


def stripe_webhook_receive(*, raw_body: bytes, signature_header: str | None) -> WebhookOutcome:
    """``POST /webhooks/stripe/``: verified with the ``stripe`` library against each endpoint
    secret in settings.STRIPE_WEBHOOK_SECRETS (rotation), Stripe's 300 s tolerance."""
    delivery = _Delivery(provider=Provider.STRIPE, raw_body=raw_body, signature_header=signature_header or "")

    def receive(d: _Delivery) -> WebhookOutcome:
        endpoint_secrets = [s for s in getattr(settings, "STRIPE_WEBHOOK_SECRETS", []) if s]
        if not endpoint_secrets:
            raise WebhookRefused(503, "no Stripe endpoint secret is configured")
        try:
            payload = raw_body.decode("utf-8")
        except UnicodeDecodeError:
            raise NoticeError("body is not UTF-8") from None
        import stripe  # here, not at import: the library is 12 MB in every process that loads the apps

        verified = False
        failure = "missing Stripe-Signature header"
        for secret in endpoint_secrets:
            try:
                stripe.Webhook.construct_event(payload, signature_header or "", secret, tolerance=300)
                verified = True
                break
            except stripe.SignatureVerificationError as exc:
                failure = str(exc)
            except ValueError as exc:  # authentic but not JSON
                raise NoticeError(f"body is not valid JSON: {exc}") from None
        if not verified:
            raise SignatureError(failure)
        # Read the verified body as plain JSON (StripeObject.to_dict is deprecated).
        event = parse_json_object(raw_body)
        d.event_id, d.event_type = _audit_text(event.get("id"), 255), _audit_text(event.get("type"), 60) or ""
        handler = STRIPE_HANDLERS.get(d.event_type)
        if handler is None:
            return d.record(status=DeliveryStatus.IGNORED, http_status=200, reason="event type not handled",
                            body={"status": "ignored", "event_id": d.event_id, "type": d.event_type})
        try:
            notice = handler(event)
        except (KeyError, TypeError, AttributeError):
            raise NoticeError(f"{d.event_type} event lacks data.object") from None
        if isinstance(notice, str):
            return d.record(status=DeliveryStatus.IGNORED, http_status=200, reason=notice,
                            body={"status": "ignored", "event_id": d.event_id, "reason": notice})
        d.notice = notice
        bank = Organisation.objects.filter(msp_id=notice.bank, org_type=OrgType.BANK).first()
        if bank is None:
            raise WebhookRefused(400, f"unknown bank {notice.bank!r} in metadata")
        d.organisation = bank
        return _apply_notice(d, notice, bank, scope="", idempotency_key=f"stripe:{notice.event_id}")

    return _guarded(receive, delivery)


# --- applying a verified notice ---------------------------------------------------------------

def _sale_summary(result: Any) -> dict[str, Any]:
    if not isinstance(result, dict):
        return {}
    return {k: result[k] for k in ("wh", "price", "charged", "credit", "currency", "account") if k in result}


def _check_parties(notice: PaymentNotice, route: SaleRoute,
                   orgs: dict[str, _Party]) -> tuple[_Party, _Party]:
    for role, msp_id, wanted in (("payer", notice.payer, route.payer_type), ("payee", notice.payee, route.payee_type)):
        org = orgs.get(msp_id)
        if org is None:
            raise WebhookRefused(400, f"unknown {role} {msp_id!r}")
        if org.org_type != wanted:
            raise WebhookRefused(400, f"{route.chaincode} needs a {wanted} as {role}; {msp_id} is a {org.org_type}")
    return orgs[notice.payer], orgs[notice.payee]


# Accounts known to exist, keyed with their owner's id and creation time: ledger accounts are
# never deleted while their organisation row lives, and a recreated organisation (a test
# database flushed) has another creation time, so a stale entry cannot match.
_known_accounts: set[tuple[str, str, int, str]] = set()


def _open_accounts(specs: list[AccountSpec], currency: str) -> None:
    """Open the (zero-balance) accounts the sale touches; no query once they are known."""
    unknown = [(key, asset, owner) for key, asset, owner in specs
               if (key, asset, owner.pk, owner.created_at) not in _known_accounts]
    if not unknown:
        return
    keys = sorted({k for k, _, _ in unknown})
    if connection.vendor == "postgresql":
        rows = _query_all(f"SELECT key, asset_id FROM {Account._meta.db_table} WHERE key = ANY(%s)", [keys])
    else:
        rows = _query_all(f"SELECT key, asset_id FROM {Account._meta.db_table} WHERE key IN "
                          f"({', '.join(['%s'] * len(keys))})", keys)
    found = {(key, asset) for key, asset in rows}
    missing = [(key, asset, owner) for key, asset, owner in unknown if (key, asset) not in found]
    if len(_known_accounts) > 200_000:
        _known_accounts.clear()
    _known_accounts.update((k, a, o.pk, o.created_at) for k, a, o in unknown if (k, a) in found)
    if not missing:
        return
    present = set(Asset.objects.filter(code__in={a for _, a, _ in missing}).values_list("code", flat=True))
    if currency not in present and any(a == currency for _, a, _ in missing):
        raise WebhookRefused(400, f"unknown currency {currency!r}: the ledger has no such asset")
    for key, asset, owner in missing:
        if asset in present:
            ledger.account_open(key=key, asset=asset, organisation=owner.organisation())
            # Known to others only once committed: until then they cannot see the row.
            entry = (key, asset, owner.pk, owner.created_at)
            transaction.on_commit(lambda entry=entry: _known_accounts.add(entry))


_signers: dict[tuple[int, bytes], Any] = {}


def _webhook_identity(bank: Organisation) -> Identity | None:
    row = _query_one("SELECT id, kind, public_key, created_at, revoked_at FROM ledger_identity "
                     "WHERE organisation_id = %s AND name = %s", [bank.pk, WEBHOOK_IDENTITY])
    if row is None:
        return None
    return _loaded(Identity, id=row[0], organisation=bank, name=WEBHOOK_IDENTITY, kind=row[1],
                   public_key=bytes(row[2]), created_at=row[3], revoked_at=row[4])


def _bank_identity(bank: Organisation) -> Identity:
    """The bank's webhook identity (read along with the bank's secrets, else read or created)."""
    identity = getattr(bank, "_webhook_identity", None) or _webhook_identity(bank)
    if identity is None:
        try:
            identity = service_identity(organisation=bank, name=WEBHOOK_IDENTITY)
        except IntegrityError:  # a concurrent first delivery created it (the service rolled back)
            identity = Identity.objects.select_related("organisation").get(organisation=bank, name=WEBHOOK_IDENTITY)
    return identity


def _signer_of(identity: Identity) -> Any:
    # Custodial keys never change for an identity; revocation is checked by the ledger.
    cache_key = (identity.pk, bytes(identity.public_key))
    signer = _signers.get(cache_key)
    if signer is None:
        signer = custodial_signer(identity)
        if len(_signers) > 1000:
            _signers.clear()
        _signers[cache_key] = signer
    return signer


def _bank_invoker(bank: Organisation) -> tuple[Identity, Any]:
    identity = _bank_identity(bank)
    return identity, _signer_of(identity)


def _apply_notice(d: _Delivery, notice: PaymentNotice, bank: Organisation, *, scope: str,
                  idempotency_key: str, secret: BankSecret | None = None) -> WebhookOutcome:
    """Claim the event id and invoke the sale in one transaction. ``secret`` (bank deliveries)
    is confirmed still active by the claiming statement; a retired one raises _StaleSecret."""
    route = SALE_ROUTES[notice.chaincode]
    args = notice.chaincode_args()
    digest = body_digest(route.chaincode, route.function, args)
    claim = {"provider": d.provider, "scope": scope, "event_id": notice.event_id}
    identity = _bank_identity(bank)
    with transaction.atomic():
        claimed, secret_active, identity_row, orgs = _claim_event(claim, digest, [notice.payer, notice.payee],
                                                                  secret=secret, identity=identity)
        if secret is not None:
            if not secret_active:
                _bank_secrets.clear()
                raise _StaleSecret()  # rolls the claim back
            identity = _current_identity(identity, identity_row)
        if not claimed:
            # Claimed before (or by a concurrent delivery that has now committed); the
            # transaction changed nothing.
            transaction.set_rollback(True)
        else:
            # A refusal from here on rolls the claim back with everything else.
            payer, payee = _check_parties(notice, route, orgs)
            _open_accounts(route.accounts(notice, payer, payee), notice.currency)
            signer = _signer_of(identity)  # the identity is confirmed: its key may be looked up
            # The claim serialises this event id; the sale and its audit row commit together.
            result = ledger.invoke(chaincode=route.chaincode, function=route.function, args=args, invoker=identity,
                                   idempotency_key=idempotency_key, signer=signer)
            base = {"event_id": notice.event_id, "tx_hash": result.tx_hash, "tx_url": f"/explorer/tx/{result.tx_hash}/"}
            if result.ok:
                body = {"status": "applied", **base, **_sale_summary(result.result)}
                return d.record(status=DeliveryStatus.APPLIED, http_status=200, tx_hash=result.tx_hash,
                                result=result.result, body=body)
            return d.record(status=DeliveryStatus.REJECTED, http_status=422, tx_hash=result.tx_hash,
                            reason=result.reason, result={"reason": result.reason},
                            body={"status": "rejected", **base, "error": result.reason, "retry": False})
    return _redelivery(d, claim, digest)


def _current_identity(identity: Identity, row: tuple | None) -> Identity:
    """The bank's webhook identity as the claiming statement just read it: a cached copy that
    names another row or key is stale; a changed revocation time is taken from the row."""
    if row is None or row[0] != identity.pk or bytes(row[1]) != bytes(identity.public_key):
        _bank_secrets.clear()
        raise _StaleSecret()
    if row[2] == identity.revoked_at:
        return identity
    _bank_secrets.clear()
    return _loaded(Identity, id=identity.pk, organisation=identity.organisation, name=identity.name,
                   kind=identity.kind, public_key=bytes(identity.public_key), created_at=identity.created_at,
                   revoked_at=row[2])


_PARTY_COLUMNS = "o.id, o.msp_id, o.name, o.org_type, CAST(o.created_at AS text)"


def _claim_event(claim: dict[str, str], digest: str, parties: list[str], *, secret: BankSecret | None = None,
                 identity: Identity | None = None) -> tuple[bool, bool, tuple | None, dict[str, _Party]]:
    """Insert the event's claim unless it exists; confirm that ``secret`` is still active; read
    the invoking identity's key and revocation time and load the payment's parties. Returns
    (claimed, secret active, (identity id, public key, revoked_at) or None, parties by msp id).

    A concurrent claimer's uncommitted row makes this wait for its outcome (unique index), so
    exactly one delivery of an event proceeds. On PostgreSQL all of it is one prepared
    statement (one round trip on every delivery)."""
    insert = (f"INSERT INTO {ProcessedEvent._meta.db_table} (provider, scope, event_id, body_digest, processed_at) "
              "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (provider, scope, event_id) DO NOTHING RETURNING id")
    params = [claim["provider"], claim["scope"], claim["event_id"], digest, timezone.now()]
    secret_params = [None, None] if secret is None else [secret.pk, bytes(secret.nonce)]
    identity_id = None if identity is None else identity.pk
    active_sql = f"SELECT count(*) FROM {BankSecret._meta.db_table} WHERE id = %s AND nonce = %s AND active"
    if connection.vendor == "postgresql":
        rows = _query_all(
            f"WITH claim AS ({insert}) SELECT (SELECT id FROM claim), ({active_sql}), "
            f"i.id, i.public_key, i.revoked_at, {_PARTY_COLUMNS} "
            "FROM (SELECT 1) AS one LEFT JOIN ledger_identity i ON i.id = %s "
            "LEFT JOIN ledger_organisation o ON o.msp_id IN (%s, %s)",
            [*params, *secret_params, identity_id, *parties])
        first = rows[0]
        claimed, active = first[0] is not None, bool(first[1])
        identity_row = None if first[2] is None else tuple(first[2:5])
        found = [row[5:] for row in rows if row[5] is not None]
    else:
        claimed = _query_one(insert, params) is not None
        active = bool(_query_one(active_sql, secret_params)[0])
        identity_row = _query_one("SELECT id, public_key, revoked_at FROM ledger_identity WHERE id = %s",
                                  [identity_id])
        found = _query_all(f"SELECT {_PARTY_COLUMNS} FROM ledger_organisation o WHERE o.msp_id IN (%s, %s)", parties)
    return claimed, active, identity_row, {row[1]: _Party(*row) for row in found}


# The claim with its first audited outcome (applied or refused by the ledger), in one statement.
_REDELIVERY_SQL = (
    f"SELECT p.body_digest, w.tx_hash, w.status, w.result, w.reason FROM {ProcessedEvent._meta.db_table} p "
    f"LEFT JOIN {WebhookEvent._meta.db_table} w ON w.id = ("
    f"SELECT min(x.id) FROM {WebhookEvent._meta.db_table} x WHERE x.provider = p.provider "
    "AND x.event_id = p.event_id AND x.tx_hash IS NOT NULL AND x.status IN (%s, %s) "
    "AND (p.scope = '' OR x.organisation_id = (SELECT id FROM ledger_organisation WHERE msp_id = p.scope))) "
    "WHERE p.provider = %s AND p.scope = %s AND p.event_id = %s"
)


def _redelivery(d: _Delivery, claim: dict[str, str], digest: str) -> WebhookOutcome:
    row = _query_one(_REDELIVERY_SQL, [DeliveryStatus.APPLIED.value, DeliveryStatus.REJECTED.value,
                                       claim["provider"], claim["scope"], claim["event_id"]])
    if row is None:
        raise ProcessedEvent.DoesNotExist(f"claim {claim} vanished")
    processed_digest, tx_hash, status, result, reason = row
    if processed_digest != digest:
        raise WebhookRefused(409, f"event id {claim['event_id']!r} was already used for a different payment")
    body: dict[str, Any] = {"status": "duplicate", "event_id": claim["event_id"]}
    http_status, reason_text = 200, "already processed"
    if tx_hash is not None:
        body.update(tx_hash=tx_hash, tx_url=f"/explorer/tx/{tx_hash}/", original_status=status)
        if status == DeliveryStatus.APPLIED:
            if isinstance(result, (str, bytes)):
                result = json.loads(result)  # JSON columns come back as text (Django's loaders)
            body.update(_sale_summary(result))
        else:  # a refused sale stays refused: the ledger replays its idempotency key
            http_status, reason_text = 422, f"already rejected: {reason}"
            body.update(error=reason, retry=False)
    return d.record(status=DeliveryStatus.DUPLICATE, http_status=http_status, reason=reason_text,
                    tx_hash=body.get("tx_hash"), body=body)


# --- raw statements -----------------------------------------------------------------------------

# Statements run on every delivery go through the ledger's server-bound cursor: prepared after a
# few uses (no client-side quoting, no planning per delivery).
def _query_all(sql: str, params: list[Any]) -> list[tuple]:
    with bound_cursor() as cur:
        cur.execute(sql, params)
        return cur.fetchall()


def _query_one(sql: str, params: list[Any]) -> tuple | None:
    with bound_cursor() as cur:
        cur.execute(sql, params)
        return cur.fetchone()


# --- the payment system simulator -----------------------------------------------------------

def bank_notification_body(*, event_id: str, bank: str, payer: str, payee: str, chaincode: str, amount: int,
                           currency: str, created: int | str) -> bytes:
    return json.dumps({"id": event_id, "bank": bank, "payer": payer, "payee": payee, "chaincode": chaincode,
                       "amount": amount, "currency": currency, "created": created}, separators=(",", ":")).encode()


def simulated_payment_send(*, bank: Organisation, payer: str, payee: str, chaincode: str, amount: int,
                           currency: str) -> WebhookOutcome:
    """Play the bank: build a notification, sign it with the bank's newest active secret and
    deliver it through the same code path as ``POST /webhooks/bank/``."""
    secret = BankSecret.objects.filter(organisation=bank, active=True).order_by("-created_at", "-id").first()
    if secret is None:
        raise WebhookRefused(400, f"bank {bank.msp_id} has no active webhook secret")
    now = int(time.time())
    body = bank_notification_body(event_id=f"sim-{uuid.uuid4().hex}", bank=bank.msp_id, payer=payer, payee=payee,
                                  chaincode=chaincode, amount=amount, currency=currency,
                                  created=datetime.fromtimestamp(now, tz=UTC).isoformat())
    header = signature_header([bank_secret_reveal(secret)], now, body)
    return bank_webhook_receive(raw_body=body, signature_header=header, now=now)
