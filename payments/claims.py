"""Claiming a provider's event id, and answering a redelivery of one claimed before.

The claim (``ProcessedEvent``, unique per provider, scope and event id) is inserted in the same
database transaction as the ledger invocation it allows, so a redelivery, even a concurrent
one, changes nothing: a concurrent claimer's uncommitted row makes the insert wait for its
outcome (unique index), and exactly one delivery of an event proceeds."""

from __future__ import annotations

import json
from typing import Any

from django.db import connection
from django.utils import timezone

from .deliveries import Delivery, WebhookOutcome, WebhookRefused, sale_summary
from .models import BankSecret, DeliveryStatus, ProcessedEvent, WebhookEvent
from .rows import query_all, query_one

_CLAIM_INSERT = (f"INSERT INTO {ProcessedEvent._meta.db_table} (provider, scope, event_id, body_digest, processed_at) "
                 "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (provider, scope, event_id) DO NOTHING RETURNING id")
_SECRET_ACTIVE = f"SELECT count(*) FROM {BankSecret._meta.db_table} WHERE id = %s AND nonce = %s AND active"
_CLAIM_AND_SECRET = f"WITH claim AS ({_CLAIM_INSERT}) SELECT (SELECT id FROM claim), ({_SECRET_ACTIVE})"


def claim_event(claim: dict[str, str], digest: str, *, secret: BankSecret | None = None) -> tuple[bool, bool]:
    """Insert the event's claim unless it exists, and confirm that ``secret`` (if any) is still
    this row, with this nonce, and active. Returns (claimed, secret active); on PostgreSQL one
    prepared statement."""
    params = [claim["provider"], claim["scope"], claim["event_id"], digest, timezone.now()]
    secret_params = [None, None] if secret is None else [secret.pk, bytes(secret.nonce)]
    if connection.vendor == "postgresql":
        row = query_one(_CLAIM_AND_SECRET, [*params, *secret_params])
        assert row is not None  # a SELECT without FROM yields one row
        return row[0] is not None, bool(row[1])
    claimed = query_one(_CLAIM_INSERT, params) is not None
    active = query_all(_SECRET_ACTIVE, secret_params)[0][0]
    return claimed, bool(active)


# The claim with its first audited outcome (applied or refused by the ledger), in one statement.
# A claim scoped to a bank (scope = its MSP id) counts only that bank's audit rows.
_REDELIVERY_SQL = (
    f"SELECT p.body_digest, w.tx_hash, w.status, w.result, w.reason FROM {ProcessedEvent._meta.db_table} p "
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
    row = query_one(_REDELIVERY_SQL, [DeliveryStatus.APPLIED.value, DeliveryStatus.REJECTED.value, d.organisation.pk,
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
            body.update(sale_summary(result))
        else:  # a refused sale stays refused: the ledger replays its idempotency key
            http_status, reason_text = 422, f"already rejected: {reason}"
            body.update(error=reason, retry=False)
    return d.record(status=DeliveryStatus.DUPLICATE, http_status=http_status, reason=reason_text,
                    tx_hash=body.get("tx_hash"), body=body)
