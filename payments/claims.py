"""Claiming a provider's event id, and answering a redelivery of one claimed before.

The claim (``ProcessedEvent``, unique per provider, scope and event id) is inserted in the same
database transaction as the ledger invocation it allows, so a redelivery, even a concurrent
one, changes nothing: a concurrent claimer's uncommitted row makes the insert wait for its
outcome (unique index), and exactly one delivery of an event proceeds."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import connection
from django.utils import timezone

from .deliveries import Delivery, WebhookOutcome, WebhookRefused, sale_summary
from .models import BankSecret, DeliveryStatus, Payment, ProcessedEvent, WebhookEvent
from .notices import PaymentFacts
from .rows import query_all, query_one

_CLAIM_INSERT = (f"INSERT INTO {ProcessedEvent._meta.db_table} (provider, scope, event_id, body_digest, processed_at) "
                 "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (provider, scope, event_id) DO NOTHING RETURNING id")
_SECRET_ACTIVE = f"SELECT count(*) FROM {BankSecret._meta.db_table} WHERE id = %s AND nonce = %s AND active"
_PAYMENT = Payment._meta.db_table
# The payment's claim: a new payment is inserted as credited; a pending or failed one reported
# again with the same facts becomes credited; a credited one, or one reported with other facts,
# returns nothing (the caller tells a duplicate from a conflict). ``created`` comes back as
# stored: the first report's time prices the sale, whichever event credits it.
_PAYMENT_UPSERT = (
    f"INSERT INTO {_PAYMENT} AS p (provider, scope, payment_id, chaincode, purpose, payer, payee, amount, currency, "
    "state, reason, amount_reversed, disputed, created, credited_at, details) "
    "SELECT %s, %s, %s, %s, %s, %s, %s, %s{bigint}, %s, 'credited', '', 0, '', %s{moment}, NULL{moment}, %s{json} "
    "{source} ON CONFLICT (provider, scope, payment_id) DO UPDATE SET state = 'credited', reason = '', "
    "details = CASE WHEN p.details = '{{}}' THEN EXCLUDED.details ELSE p.details END "
    "WHERE p.state <> 'credited' AND p.chaincode = EXCLUDED.chaincode AND p.purpose = EXCLUDED.purpose "
    "AND p.payer = EXCLUDED.payer AND p.payee = EXCLUDED.payee AND p.amount = EXCLUDED.amount "
    "AND p.currency = EXCLUDED.currency "
    "RETURNING id, created, details"  # unqualified: SQLite refuses the alias in RETURNING
)
# INSERT ... SELECT types its parameters from the select list, not the target columns.
_PG_CASTS = {"bigint": "::bigint", "moment": "::timestamptz", "json": "::jsonb"}
_LITE_CASTS = {"bigint": "", "moment": "", "json": ""}
_CLAIM_AND_SECRET = (f"WITH claim AS ({_CLAIM_INSERT}), pay AS ({_PAYMENT_UPSERT.format(source='FROM claim', **_PG_CASTS)}) "
                     f"SELECT (SELECT id FROM claim), ({_SECRET_ACTIVE}), (SELECT id FROM pay), (SELECT created FROM pay), "
                     "(SELECT details FROM pay)")


@dataclass(frozen=True)
class Claimed:
    event: bool  # the event id was new (always True without an event claim)
    secret_active: bool
    payment: int | None  # the payment's row id, when this report may credit it
    created: datetime | None  # the payment's stored time
    details: dict[str, Any] | None = None  # the payment's stored off-chain details


def _details(value: Any) -> dict[str, Any]:
    if isinstance(value, (str, bytes)):  # JSON columns come back as text (Django's loaders)
        value = json.loads(value)
    return value if isinstance(value, dict) else {}


def claim_event(claim: dict[str, str], digest: str, *, payment: PaymentFacts,
                secret: BankSecret | None = None) -> Claimed:
    """Insert the event's claim unless it exists and, only if it was new, claim the payment's
    credit; confirm that ``secret`` (if any) is still this row, with this nonce, and active.
    On PostgreSQL one prepared statement."""
    params = [claim["provider"], claim["scope"], claim["event_id"], digest, timezone.now()]
    secret_params = [None, None] if secret is None else [secret.pk, bytes(secret.nonce)]
    if connection.vendor == "postgresql":
        row = query_one(_CLAIM_AND_SECRET, [*params, *payment.params(), *secret_params])
        assert row is not None  # a SELECT without FROM yields one row
        return Claimed(row[0] is not None, bool(row[1]), row[2], row[3],
                       None if row[2] is None else _details(row[4]))
    claimed = query_one(_CLAIM_INSERT, params) is not None
    active = query_all(_SECRET_ACTIVE, secret_params)[0][0]
    pay = claim_payment(payment) if claimed else None
    return Claimed(claimed, bool(active), pay[0] if pay else None, pay[1] if pay else None, pay[2] if pay else None)


def claim_payment(payment: PaymentFacts) -> tuple[int, datetime, dict[str, Any]] | None:
    """Claim the payment's credit without an event (a statement line, say): (row id, stored
    time, stored details), or None if it is credited already or was reported with other facts."""
    casts = _PG_CASTS if connection.vendor == "postgresql" else _LITE_CASTS
    row = query_one(_PAYMENT_UPSERT.format(source="", **casts), payment.params())
    return None if row is None else (row[0], row[1], _details(row[2]))


_PAYMENT_ROW = (f"SELECT id, state, chaincode, purpose, payer, payee, amount, currency, credit_tx_hash FROM {_PAYMENT} "
                "WHERE provider = %s AND scope = %s AND payment_id = %s")


def unclaimable(payment: PaymentFacts) -> tuple[int, str, str | None]:
    """Why a payment's claim returned nothing: (row id, "duplicate" | "conflict: <what
    differs>", credit transaction). Read in the claim's transaction, after its row lock."""
    row = query_one(_PAYMENT_ROW, [payment.provider, payment.scope, payment.payment_id])
    if row is None:
        raise Payment.DoesNotExist(f"payment {payment.idempotency_key} vanished")
    pk, _state, *facts, tx_hash = row
    names = ("chaincode", "purpose", "payer", "payee", "amount", "currency")
    wanted = (payment.chaincode, payment.purpose, payment.payer, payment.payee, payment.amount, payment.currency)
    differ = [f"{name} {had!r} (now {new!r})" for name, had, new in zip(names, facts, wanted, strict=True) if had != new]
    if differ:
        return pk, f"conflict: payment {payment.payment_id!r} was reported before with {', '.join(differ)}", tx_hash
    return pk, "duplicate", tx_hash


# The claim with its first audited outcome (applied or refused by the ledger), in one statement.
# A claim scoped to a bank (scope = its MSP id) counts only that bank's audit rows.
_REDELIVERY_SQL = (
    f"SELECT p.body_digest, w.tx_hash, w.status, w.result, w.reason, ("
    f"SELECT y.payment_id FROM {WebhookEvent._meta.db_table} y WHERE y.provider = p.provider "
    "AND y.event_id = p.event_id AND y.payment_id IS NOT NULL AND (p.scope = '' OR y.organisation_id = %s) "
    f"ORDER BY y.id LIMIT 1) FROM {ProcessedEvent._meta.db_table} p "
    f"LEFT JOIN {WebhookEvent._meta.db_table} w ON w.id = ("
    f"SELECT min(x.id) FROM {WebhookEvent._meta.db_table} x WHERE x.provider = p.provider "
    "AND x.event_id = p.event_id AND x.tx_hash IS NOT NULL AND x.status IN (%s, %s) "
    "AND (p.scope = '' OR x.organisation_id = %s)) "
    "WHERE p.provider = %s AND p.scope = %s AND p.event_id = %s"
)


def redelivery(d: Delivery, claim: dict[str, str], digest: str) -> WebhookOutcome:
    """Answer a delivery of an event claimed before: the first outcome again, or a conflict if
    the event id was used for a different payment. ``d.organisation`` is the claim's bank."""
    assert d.organisation is not None
    row = query_one(_REDELIVERY_SQL, [d.organisation.pk, DeliveryStatus.APPLIED.value, DeliveryStatus.REJECTED.value,
                                      d.organisation.pk, claim["provider"], claim["scope"], claim["event_id"]])
    if row is None:
        raise ProcessedEvent.DoesNotExist(f"claim {claim} vanished")
    processed_digest, tx_hash, status, result, reason, d.payment = row
    if processed_digest != digest:
        raise WebhookRefused(409, f"event id {claim['event_id']!r} was already used for a different payment")
    body: dict[str, Any] = {"status": "duplicate", "event_id": claim["event_id"]}
    http_status, reason_text = 200, "already processed"
    if tx_hash is not None:
        body.update(tx_hash=tx_hash, tx_url=f"/explorer/tx/{tx_hash}/", original_status=status)
        if status == DeliveryStatus.APPLIED:
            if isinstance(result, (str, bytes)):
                result = json.loads(result)  # JSON columns come back as text (Django's loaders)
            body.update(sale_summary(result))
        else:  # a refused sale stays refused: the ledger replays its idempotency key
            http_status, reason_text = 422, f"already rejected: {reason}"
            body.update(error=reason, retry=False)
    return d.record(status=DeliveryStatus.DUPLICATE, http_status=http_status, reason=reason_text,
                    tx_hash=body.get("tx_hash"), body=body)
