"""A payment notice: what a bank (or Stripe) tells us about money that moved, validated into
the arguments of a seller chaincode. Pure: no ORM; the services check the organisations."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

SELLER_CHAINCODES = ("retail-seller", "wholesale-seller")
MAX_AMOUNT = 10**12  # minor units; far above any real payment, far below a bigint
_EVENT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:\-]{0,199}")
_MSP_ID = re.compile(r"[-a-zA-Z0-9_]{1,64}")
_CURRENCY = re.compile(r"[A-Z]{3}")
# ISO 4217 minor-unit exponents that are not 2, for amounts written as decimals in major units
# (camt XML, Stripe reports); Stripe's zero- and three-decimal lists agree with ISO.
_ZERO_DECIMAL = frozenset(["BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "MGA", "PYG", "RWF", "UGX", "VND",
                           "VUV", "XAF", "XOF", "XPF"])
_THREE_DECIMAL = frozenset(["BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"])


class NoticeError(ValueError):
    """The notice is malformed; the message is safe to show to the sender."""


@dataclass(frozen=True)
class PaymentFacts:
    """What a report says of a payment: the key it is claimed under and the sale it pays for."""

    provider: str
    scope: str
    payment_id: str
    chaincode: str
    payer: str
    payee: str
    amount: int
    currency: str
    created: datetime

    @property
    def idempotency_key(self) -> str:
        return f"payment:{self.provider}:{self.scope}:{self.payment_id}"

    def params(self) -> list[Any]:
        return [self.provider, self.scope, self.payment_id, self.chaincode, self.payer, self.payee, self.amount,
                self.currency, self.created]


@dataclass(frozen=True)
class PaymentNotice:
    event_id: str
    bank: str
    payer: str
    payee: str
    chaincode: str
    amount: int  # minor units
    currency: str
    paid_at: datetime
    payment_id: str = ""  # the processor's payment id (PaymentIntent, end-to-end id); "" = the event id

    def facts(self, *, provider: str, scope: str) -> PaymentFacts:
        return PaymentFacts(provider=provider, scope=scope, payment_id=self.payment_id or self.event_id,
                            chaincode=self.chaincode, payer=self.payer, payee=self.payee, amount=self.amount,
                            currency=self.currency, created=self.paid_at)

    def chaincode_args(self) -> dict[str, Any]:
        return {"event_id": self.event_id, "payer": self.payer, "payee": self.payee, "amount": self.amount,
                "currency": self.currency, "paid_at": self.paid_at.isoformat()}


@dataclass(frozen=True)
class ReturnNotice:
    """A bank's debit of an earlier credit (a return or recall): reverse ``amount`` of it."""

    event_id: str  # the notification's id: the reversal's id
    end_to_end_id: str  # the returned payment
    amount: int
    currency: str
    reason: str


def minor_exponent(currency: str) -> int:
    """How many decimals of ``currency``'s major unit make one minor unit (2 for INR, 0 for JPY)."""
    return 0 if currency in _ZERO_DECIMAL else 3 if currency in _THREE_DECIMAL else 2


def parse_json_object(body: bytes) -> dict[str, Any]:
    try:
        data = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise NoticeError(f"body is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise NoticeError("body must be a JSON object")
    return data


def event_id_of(value: Any, name: str = "id") -> str:
    if not isinstance(value, str) or not _EVENT_ID.fullmatch(value):
        raise NoticeError(f"{name!r} must be 1-200 characters of letters, digits and _ . : - (starting with a letter or digit)")
    return value


def msp_id_of(name: str, value: Any) -> str:
    if not isinstance(value, str) or not _MSP_ID.fullmatch(value):
        raise NoticeError(f"{name!r} must be an organisation msp id (letters, digits, - and _, at most 64)")
    return value


def amount_of(value: Any) -> int:
    """Minor units as a JSON integer: never a float (10.5 or 1e3), a string or a boolean."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise NoticeError("'amount' must be an integer number of minor units (e.g. paise), not "
                          f"{type(value).__name__}")
    if value <= 0:
        raise NoticeError("'amount' must be positive")
    if value > MAX_AMOUNT:
        raise NoticeError(f"'amount' must be at most {MAX_AMOUNT}")
    return value


def currency_of(value: Any) -> str:
    if not isinstance(value, str) or not _CURRENCY.fullmatch(value.upper()):
        raise NoticeError("'currency' must be a three-letter ISO 4217 code, e.g. INR")
    return value.upper()


def chaincode_of(value: Any) -> str:
    if value not in SELLER_CHAINCODES:
        raise NoticeError(f"'chaincode' must be one of {', '.join(SELLER_CHAINCODES)}")
    return value


def moment_of(value: Any) -> datetime:
    """Unix seconds (integer) or ISO 8601 with a timezone → aware UTC datetime."""
    if isinstance(value, bool):
        raise NoticeError("'created' must be unix seconds or an ISO 8601 time with a timezone")
    if isinstance(value, int):
        try:
            moment = datetime.fromtimestamp(value, tz=UTC)
        except (OverflowError, OSError, ValueError):
            raise NoticeError("'created' is out of range") from None
    elif isinstance(value, str) and len(value) <= 40:
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            raise NoticeError("'created' must be unix seconds or an ISO 8601 time with a timezone") from None
        if moment.tzinfo is None:
            raise NoticeError("'created' must carry a timezone")
        moment = moment.astimezone(UTC)
    else:
        raise NoticeError("'created' must be unix seconds or an ISO 8601 time with a timezone")
    if not 2000 <= moment.year <= 2200:
        raise NoticeError("'created' is out of range")
    return moment


BANK_FIELDS = ("id", "bank", "payer", "payee", "chaincode", "amount", "currency", "created")


def bank_notice_from(data: dict[str, Any]) -> PaymentNotice:
    missing = [name for name in BANK_FIELDS if data.get(name) is None]
    if missing:
        raise NoticeError(f"missing field{'s' if len(missing) > 1 else ''}: {', '.join(missing)}")
    end_to_end = data.get("end_to_end_id")
    return PaymentNotice(
        payment_id="" if end_to_end is None else event_id_of(end_to_end, "end_to_end_id"),
        event_id=event_id_of(data["id"]), bank=msp_id_of("bank", data["bank"]),
        payer=msp_id_of("payer", data["payer"]), payee=msp_id_of("payee", data["payee"]),
        chaincode=chaincode_of(data["chaincode"]), amount=amount_of(data["amount"]),
        currency=currency_of(data["currency"]), paid_at=moment_of(data["created"]),
    )


def stripe_notice_from(*, event_id: Any, amount: Any, currency: Any, created: Any,
                       metadata: Any, payment_id: Any) -> PaymentNotice:
    """Stripe objects carry the GridCoin routing in ``metadata``: payer, payee, chaincode and
    bank (the processor organisation whose service identity reports the payment)."""
    if not isinstance(metadata, dict):
        raise NoticeError("the payment has no metadata")
    missing = [name for name in ("payer", "payee", "chaincode", "bank") if not metadata.get(name)]
    if missing:
        raise NoticeError(f"metadata lacks {', '.join(missing)}")
    if amount is None or currency is None or created is None:
        raise NoticeError("the payment lacks amount, currency or created")
    return PaymentNotice(
        payment_id=event_id_of(payment_id, "payment_intent"),
        event_id=event_id_of(event_id), bank=msp_id_of("bank", metadata["bank"]),
        payer=msp_id_of("payer", metadata["payer"]), payee=msp_id_of("payee", metadata["payee"]),
        chaincode=chaincode_of(metadata["chaincode"]), amount=amount_of(amount),
        currency=currency_of(currency), paid_at=moment_of(created),
    )


RETURN_FIELDS = ("id", "bank", "return_of", "amount", "currency")


def return_notice_from(data: dict[str, Any]) -> ReturnNotice:
    """A bank's return of an earlier credit, as JSON: ``return_of`` is the payment's end-to-end id."""
    missing = [name for name in RETURN_FIELDS if data.get(name) is None]
    if missing:
        raise NoticeError(f"missing field{'s' if len(missing) > 1 else ''}: {', '.join(missing)}")
    msp_id_of("bank", data["bank"])
    reason = data.get("reason", "")
    return ReturnNotice(event_id=event_id_of(data["id"]), end_to_end_id=event_id_of(data["return_of"], "return_of"),
                        amount=amount_of(data["amount"]), currency=currency_of(data["currency"]),
                        reason=reason[:200] if isinstance(reason, str) else "")
