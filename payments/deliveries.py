"""A webhook delivery and its audit: every delivery, accepted or not, leaves exactly one
``WebhookEvent`` row, written by whichever exit the delivery takes (``guarded``).

Status codes (see payments/README.md):
200 applied / duplicate / ignored / recorded; 400 malformed; 401 not authentic or not fresh;
409 the event id was already used for a different payment, the payment was reported before
with other facts, or a reversal names a payment not credited yet (retry later); 413 the body is
too large; 422 the ledger refused the sale or reversal, or a reversal exceeds its payment
(final: redelivering replays the refusal, so do not retry); 503 no secret configured.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.db import connection
from django.utils import timezone

from ledger import services as ledger
from ledger.models import Organisation

from .models import DeliveryStatus, Payment, PaymentState, WebhookEvent
from .notices import NoticeError, PaymentNotice
from .rows import loaded, query_one
from .signing import SignatureError

logger = logging.getLogger(__name__)

MAX_AUDIT_BODY = 16_384
MAX_BODY_BYTES = 65_536


@dataclass(frozen=True)
class WebhookOutcome:
    http_status: int
    body: dict[str, Any]
    audit: dict[str, Any]  # the audit row's columns, as inserted

    @property
    def event(self) -> WebhookEvent:
        """The audit row (built on demand: the endpoint itself needs only status and body)."""
        return loaded(WebhookEvent, **self.audit)

    @property
    def applied(self) -> bool:
        return self.audit["status"] == DeliveryStatus.APPLIED


class WebhookRefused(Exception):
    def __init__(self, http_status: int, message: str):
        super().__init__(message)
        self.http_status = http_status
        self.message = message


_AUDIT_COLUMNS = ("provider", "organisation_id", "event_id", "event_type", "payer", "payee", "amount", "currency",
                  "status", "reason", "http_status", "body", "signature_header", "received_at", "tx_hash", "payment_id")
# Raw SQL: one audit row per delivery is on the hot path, and the ORM's insert machinery costs
# more CPU than the insert.
_AUDIT_INSERT = (f"INSERT INTO {WebhookEvent._meta.db_table} ({', '.join(_AUDIT_COLUMNS)}, result) "
                 f"VALUES ({', '.join(['%s'] * len(_AUDIT_COLUMNS))}, %s) RETURNING id")


# The credit's outcome on its payment row, written by the audit row's statement (no round
# trip of its own on the hot path).
_SETTLE = (f"UPDATE {Payment._meta.db_table} SET state = %s, reason = %s, credit_tx_hash = %s, credited_at = %s "
           "WHERE id = %s")
_SETTLE_AND_AUDIT = f"WITH settled AS ({_SETTLE}) {_AUDIT_INSERT}"


@dataclass(frozen=True)
class Settlement:
    """The ledger's answer to a payment's credit, recorded on the payment's row."""

    payment: int
    tx_hash: str
    ok: bool
    reason: str = ""

    def params(self) -> list[Any]:
        state = PaymentState.CREDITED if self.ok else PaymentState.FAILED
        return [state.value, self.reason, self.tx_hash, timezone.now() if self.ok else None, self.payment]


def payment_settle(settlement: Settlement) -> None:
    _execute(_SETTLE, settlement.params())


def _execute(sql: str, params: list[Any]) -> None:
    with connection.cursor() as cur:
        cur.execute(sql, params)


def _audit_insert(values: dict[str, Any], result: Any, settlement: Settlement | None = None) -> int:
    params = [*(values[column] for column in _AUDIT_COLUMNS), None if result is None else json.dumps(result)]
    if settlement is not None and connection.vendor == "postgresql":
        row = query_one(_SETTLE_AND_AUDIT, [*settlement.params(), *params])
    else:
        if settlement is not None:
            _execute(_SETTLE, settlement.params())
        row = query_one(_AUDIT_INSERT, params)
    assert row is not None  # RETURNING always yields the new row
    return row[0]


@dataclass
class Delivery:
    """Collects what is known about a delivery so that every exit writes one audit row."""

    provider: str
    raw_body: bytes
    signature_header: str
    organisation: Organisation | None = None
    event_id: str | None = None
    event_type: str = ""
    notice: PaymentNotice | None = None
    payment: int | None = None  # the Payment row the delivery matched
    payment_key: str = ""  # its processor id (PaymentIntent id, end-to-end id), for the answer

    def forget(self) -> None:
        """Back to what is known before the body is read (the delivery is answered afresh)."""
        self.organisation, self.event_id, self.event_type, self.notice = None, None, "", None
        self.payment, self.payment_key = None, ""

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
            "received_at": timezone.now(), "tx_hash": tx_hash, "payment_id": self.payment,
        }

    def record(self, *, status: str, http_status: int, body: dict[str, Any], reason: str = "",
               tx_hash: str | None = None, result: Any = None, settlement: Settlement | None = None) -> WebhookOutcome:
        """Insert the delivery's audit row, in the caller's transaction if there is one: an
        applied sale's row commits or rolls back with the sale (and ``settlement`` with both)."""
        if self.payment is not None:
            body.setdefault("payment_id", self.payment_key)
        values = self.audit_values(status=status, http_status=http_status, reason=reason, tx_hash=tx_hash)
        values["id"] = _audit_insert(values, result, settlement)
        values["result"] = result
        return WebhookOutcome(http_status=http_status, body=body, audit=values)

    def refuse(self, http_status: int, message: str) -> WebhookOutcome:
        body = {"status": "rejected", "error": message}
        if self.event_id:
            body["event_id"] = self.event_id
        return self.record(status=DeliveryStatus.REJECTED, http_status=http_status, body=body, reason=message)


def audit_text(value: Any, limit: int) -> str | None:
    """An unvalidated string, made storable for the audit (PostgreSQL text refuses NUL)."""
    return value[:limit].replace("\x00", "\ufffd") if isinstance(value, str) else None


def sale_summary(result: Any) -> dict[str, Any]:
    """What a response tells of the sale, from the ledger's result."""
    if not isinstance(result, dict):
        return {}
    return {k: result[k] for k in ("wh", "price", "charged", "credit", "currency", "account", "campaign", "group",
                                   "matched_wh", "outstanding", "cleared") if k in result}


def guarded(receive: Callable[[Delivery], WebhookOutcome], delivery: Delivery) -> WebhookOutcome:
    """Run a provider's ``receive``, turning every refusal into its status code and audit row.
    An unexpected error is audited as a 500 (nothing was applied) and raised."""
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
