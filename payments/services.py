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
from typing import Any

import stripe
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
from ledger.documents import body_digest
from ledger.models import Account, Asset, Identity, Organisation, OrgType

from .models import BankSecret, DeliveryStatus, ProcessedEvent, Provider, WebhookEvent
from .notices import NoticeError, PaymentNotice, bank_notice_from, parse_json_object, stripe_notice_from
from .signing import SignatureError, parse_signature_header, signature_header, verify_signature

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


def _active_bank_secrets() -> list[tuple[BankSecret, str]]:
    """Every active secret with its bank. Raw SQL: this runs for every delivery, and building
    the ORM query cost more CPU than running it."""
    with connection.cursor() as cur:
        cur.execute(
            f"SELECT s.id, s.label, s.nonce, s.ciphertext, i.id, i.kind, i.public_key, i.created_at, i.revoked_at, "
            f"{_ORG_COLUMNS} FROM {BankSecret._meta.db_table} s "
            "JOIN ledger_organisation o ON o.id = s.organisation_id "
            "LEFT JOIN ledger_identity i ON i.organisation_id = o.id AND i.name = %s "
            "WHERE s.active ORDER BY s.id",
            [WEBHOOK_IDENTITY],
        )
        rows = cur.fetchall()
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


# --- the dispatch table: chaincode → who pays whom and which accounts the sale needs --------

AccountSpec = tuple[str, str, Organisation]  # (key, asset, owner)


@dataclass(frozen=True)
class SaleRoute:
    chaincode: str
    function: str
    payer_type: str
    payee_type: str
    accounts: Callable[[PaymentNotice, Organisation, Organisation], list[AccountSpec]]


def _retail_accounts(notice: PaymentNotice, payer: Organisation, payee: Organisation) -> list[AccountSpec]:
    return [(credit_account(payer.msp_id, payee.msp_id), notice.currency, payer),
            (household_account(payer.msp_id), ENERGY, payer)]


def _wholesale_accounts(notice: PaymentNotice, payer: Organisation, payee: Organisation) -> list[AccountSpec]:
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
    event: WebhookEvent

    @property
    def applied(self) -> bool:
        return self.event.status == DeliveryStatus.APPLIED


class WebhookRefused(Exception):
    def __init__(self, http_status: int, message: str):
        super().__init__(message)
        self.http_status = http_status
        self.message = message


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

    def record(self, *, status: str, http_status: int, body: dict[str, Any], reason: str = "",
               tx_hash: str | None = None, result: Any = None) -> WebhookOutcome:
        notice = self.notice
        text = self.raw_body[: MAX_AUDIT_BODY * 4].decode("utf-8", errors="replace")[:MAX_AUDIT_BODY]
        values = {
            "provider": self.provider, "organisation_id": self.organisation.pk if self.organisation else None,
            "event_id": self.event_id, "event_type": self.event_type[:60],
            "payer": notice.payer if notice else "", "payee": notice.payee if notice else "",
            "amount": notice.amount if notice else None, "currency": notice.currency if notice else "",
            "status": status, "reason": reason, "http_status": http_status, "body": text.replace("\x00", "\ufffd"),
            "signature_header": (self.signature_header or "")[:1000].replace("\x00", "\ufffd"),
            "received_at": timezone.now(), "tx_hash": tx_hash,
        }
        # Raw SQL: one audit row per delivery is on the hot path; the ORM's insert machinery
        # cost more CPU than the insert.
        columns = ", ".join(values) + ", result"
        with connection.cursor() as cur:
            cur.execute(
                f"INSERT INTO {WebhookEvent._meta.db_table} ({columns}) "
                f"VALUES ({', '.join(['%s'] * len(values))}, %s) RETURNING id",
                [*values.values(), None if result is None else json.dumps(result)],
            )
            values["id"] = cur.fetchone()[0]
        event = _loaded(WebhookEvent, **values, result=result)
        return WebhookOutcome(http_status=http_status, body=body, event=event)

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

    def receive(d: _Delivery) -> WebhookOutcome:
        header = parse_signature_header(signature_header)
        # The secret that matches identifies the bank: authenticate before parsing anything.
        secret: BankSecret = verify_signature(header=header, body=raw_body, secrets=_active_bank_secrets(),
                                              now=time.time() if now is None else now)  # type: ignore[assignment]
        d.organisation = bank = secret.organisation
        data = parse_json_object(raw_body)
        d.event_id, d.event_type = _audit_text(data.get("id"), 255), _audit_text(data.get("chaincode"), 60) or ""
        d.notice = notice = bank_notice_from(data)
        if notice.bank != bank.msp_id:
            if not Organisation.objects.filter(msp_id=notice.bank, org_type=OrgType.BANK).exists():
                raise WebhookRefused(400, f"unknown bank {notice.bank!r}")
            raise WebhookRefused(401, f"signed with a secret of {bank.msp_id}, but names bank {notice.bank!r}")
        return _apply_notice(d, notice, bank, scope=bank.msp_id, idempotency_key=f"bank:{notice.event_id}")

    return _guarded(receive, delivery)


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
                   orgs: dict[str, Organisation]) -> tuple[Organisation, Organisation]:
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
_known_accounts: set[tuple[str, str, int, datetime]] = set()


def _open_accounts(specs: list[AccountSpec], currency: str) -> None:
    """Open the (zero-balance) accounts the sale touches; no query once they are known."""
    unknown = [(key, asset, owner) for key, asset, owner in specs
               if (key, asset, owner.pk, owner.created_at) not in _known_accounts]
    if not unknown:
        return
    found = set(Account.objects.filter(key__in=[k for k, _, _ in unknown]).values_list("key", "asset_id"))
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
            ledger.account_open(key=key, asset=asset, organisation=owner)
            # Known to others only once committed: until then they cannot see the row.
            entry = (key, asset, owner.pk, owner.created_at)
            transaction.on_commit(lambda entry=entry: _known_accounts.add(entry))


_signers: dict[tuple[int, bytes], Any] = {}


def _webhook_identity(bank: Organisation) -> Identity | None:
    with connection.cursor() as cur:
        cur.execute("SELECT id, kind, public_key, created_at, revoked_at FROM ledger_identity "
                    "WHERE organisation_id = %s AND name = %s", [bank.pk, WEBHOOK_IDENTITY])
        row = cur.fetchone()
    if row is None:
        return None
    return _loaded(Identity, id=row[0], organisation=bank, name=WEBHOOK_IDENTITY, kind=row[1],
                   public_key=bytes(row[2]), created_at=row[3], revoked_at=row[4])


def _bank_invoker(bank: Organisation) -> tuple[Identity, Any]:
    identity = getattr(bank, "_webhook_identity", None) or _webhook_identity(bank)
    if identity is None:
        try:
            identity = service_identity(organisation=bank, name=WEBHOOK_IDENTITY)
        except IntegrityError:  # a concurrent first delivery created it (the service rolled back)
            identity = Identity.objects.select_related("organisation").get(organisation=bank, name=WEBHOOK_IDENTITY)
    # Custodial keys never change for an identity; revocation is checked by the ledger.
    cache_key = (identity.pk, bytes(identity.public_key))
    signer = _signers.get(cache_key)
    if signer is None:
        signer = custodial_signer(identity)
        if len(_signers) > 1000:
            _signers.clear()
        _signers[cache_key] = signer
    return identity, signer


def _apply_notice(d: _Delivery, notice: PaymentNotice, bank: Organisation, *, scope: str,
                  idempotency_key: str) -> WebhookOutcome:
    route = SALE_ROUTES[notice.chaincode]
    args = notice.chaincode_args()
    digest = body_digest(route.chaincode, route.function, args)
    claim = {"provider": d.provider, "scope": scope, "event_id": notice.event_id}
    identity, signer = _bank_invoker(bank)
    try:
        with transaction.atomic():
            claimed, orgs = _claim_event(claim, digest, [notice.payer, notice.payee])
            if not claimed:
                # Claimed before (or by a concurrent delivery that has now committed).
                transaction.set_rollback(True)
                raise _AlreadyClaimed()
            # A refusal from here on rolls the claim back with everything else.
            payer, payee = _check_parties(notice, route, orgs)
            _open_accounts(route.accounts(notice, payer, payee), notice.currency)
            # The claim serialises this event id, so the ledger needs no savepoint of its own.
            result = ledger.invoke(chaincode=route.chaincode, function=route.function, args=args, invoker=identity,
                                   idempotency_key=idempotency_key, signer=signer, savepoint=False)
            base = {"event_id": notice.event_id, "tx_hash": result.tx_hash, "tx_url": f"/explorer/tx/{result.tx_hash}/"}
            if result.ok:
                return d.record(status=DeliveryStatus.APPLIED, http_status=200, tx_hash=result.tx_hash,
                                result=result.result, body={"status": "applied", **base, **_sale_summary(result.result)})
            return d.record(status=DeliveryStatus.REJECTED, http_status=422, tx_hash=result.tx_hash,
                            reason=result.reason, result={"reason": result.reason},
                            body={"status": "rejected", **base, "error": result.reason, "retry": False})
    except _AlreadyClaimed:
        return _redelivery(d, claim, digest)


class _AlreadyClaimed(Exception):
    pass


def _claim_event(claim: dict[str, str], digest: str, parties: list[str]) -> tuple[bool, dict[str, Organisation]]:
    """Insert the event's claim unless it exists, and load the payment's parties. A concurrent
    claimer's uncommitted row makes this wait for its outcome (unique index), so exactly one
    delivery of an event proceeds. On PostgreSQL both happen in one statement (one round trip
    on every delivery)."""
    insert = (f"INSERT INTO {ProcessedEvent._meta.db_table} (provider, scope, event_id, body_digest, processed_at) "
              "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (provider, scope, event_id) DO NOTHING RETURNING id")
    params = [claim["provider"], claim["scope"], claim["event_id"], digest, timezone.now()]
    select = f"SELECT {_ORG_COLUMNS} FROM ledger_organisation o WHERE o.msp_id IN (%s, %s)"
    with connection.cursor() as cur:
        if connection.vendor == "postgresql":
            cur.execute(f"WITH claim AS ({insert}) SELECT (SELECT id FROM claim), {_ORG_COLUMNS} "
                        "FROM (SELECT 1) AS one LEFT JOIN ledger_organisation o ON o.msp_id IN (%s, %s)",
                        [*params, *parties])
            rows = cur.fetchall()
            claimed = rows[0][0] is not None
            found = [row[1:] for row in rows if row[1] is not None]
        else:
            cur.execute(insert, params)
            claimed = cur.fetchone() is not None
            cur.execute(select, parties)
            found = cur.fetchall()
    return claimed, {o.msp_id: o for o in map(_organisation_from_row, found)}


def _redelivery(d: _Delivery, claim: dict[str, str], digest: str) -> WebhookOutcome:
    processed = ProcessedEvent.objects.get(**claim)
    if processed.body_digest != digest:
        raise WebhookRefused(409, f"event id {claim['event_id']!r} was already used for a different payment")
    originals = WebhookEvent.objects.filter(provider=claim["provider"], event_id=claim["event_id"], tx_hash__isnull=False,
                                            status__in=[DeliveryStatus.APPLIED, DeliveryStatus.REJECTED])
    if claim["scope"]:
        originals = originals.filter(organisation__msp_id=claim["scope"])
    original = originals.order_by("id").first()
    body: dict[str, Any] = {"status": "duplicate", "event_id": claim["event_id"]}
    http_status, reason = 200, "already processed"
    if original is not None:
        body.update(tx_hash=original.tx_hash, tx_url=f"/explorer/tx/{original.tx_hash}/",
                    original_status=original.status)
        if original.status == DeliveryStatus.APPLIED:
            body.update(_sale_summary(original.result))
        else:  # a refused sale stays refused: the ledger replays its idempotency key
            http_status, reason = 422, f"already rejected: {original.reason}"
            body.update(error=original.reason, retry=False)
    return d.record(status=DeliveryStatus.DUPLICATE, http_status=http_status, reason=reason,
                    tx_hash=body.get("tx_hash"), body=body)


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
