"""What a statement says, whatever its format: one ``StatementLine`` per settled transaction.
Pure: no ORM. Amounts arrive as decimal text in major units (``100.00``) and leave as integer
minor units, refused when they do not convert exactly (the ledger never rounds money)."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import BinaryIO

from ..notices import MAX_AMOUNT, minor_exponent

_AMOUNT = re.compile(r"-?[0-9]{1,15}(?:\.[0-9]{1,6})?")
_CURRENCY = re.compile(r"[A-Z]{3}")
_REFERENCE = re.compile(r"[!-~]{1,255}")  # printable ASCII without spaces, as payment ids are
_PARTY = re.compile(r"[-a-zA-Z0-9_]{1,64}")

PAYMENT = "payment"  # a settled incoming payment: reconciled against the ledger
OTHER = "other"  # fees, payouts, refunds, debits, pending entries: listed, not reconciled


class StatementError(ValueError):
    """The statement is malformed or hostile; the message is safe to show to whoever sent it.
    Nothing is stored or moved when a statement is refused."""


@dataclass(frozen=True, slots=True)
class StatementLine:
    line_no: int  # 1-based position among the statement's lines
    kind: str  # PAYMENT | OTHER
    reference: str  # the payment id: the bank's end-to-end id, Stripe's PaymentIntent id
    source_ref: str  # the statement's own id of the line (AcctSvcrRef, balance_transaction_id)
    amount: int  # minor units, positive
    currency: str
    booked_at: datetime | None
    payer: str = ""
    payee: str = ""
    chaincode: str = ""  # the seller chaincode, when the statement says it
    processor: str = ""  # Stripe: the processor organisation that invokes (metadata ``bank``)
    note: str = ""  # why a line is OTHER


@dataclass
class StatementHeader:
    """Filled in while the statement is read (camt.053 puts it before the entries)."""

    statement_id: str = ""
    period_start: datetime | None = None
    period_end: datetime | None = None
    extra: dict[str, str] = field(default_factory=dict)


def minor_units(text: str, currency: str, *, where: str) -> int:
    """``"100.50"`` EUR -> 10050; refuses signs, fractions of the minor unit and absurd sizes."""
    if not _AMOUNT.fullmatch(text or ""):
        raise StatementError(f"{where}: amount {text!r} is not a decimal number")
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise StatementError(f"{where}: amount {text!r} is not a decimal number") from None
    exponent = minor_exponent(currency)
    scaled = value.scaleb(exponent)
    if scaled != scaled.to_integral_value():
        raise StatementError(f"{where}: amount {text} {currency} has more than {exponent} decimals")
    minor = int(scaled)
    if abs(minor) > MAX_AMOUNT:
        raise StatementError(f"{where}: amount {text} {currency} is out of range")
    return minor


def major_units(amount: int, currency: str) -> str:
    """10050 INR -> ``"100.50"``: for showing amounts as the statement wrote them."""
    return str(Decimal(amount).scaleb(-minor_exponent(currency)))


def currency_of(text: str, *, where: str) -> str:
    code = (text or "").strip().upper()
    if not _CURRENCY.fullmatch(code):
        raise StatementError(f"{where}: currency {text!r} is not an ISO 4217 code")
    return code


def reference_of(text: str, *, where: str, name: str) -> str:
    value = (text or "").strip()
    if not _REFERENCE.fullmatch(value):
        raise StatementError(f"{where}: {name} {value[:40]!r} must be 1-255 printable characters without spaces")
    return value


def party_of(text: str, *, where: str, name: str) -> str:
    """An organisation's msp id, or "" when the statement does not name the party."""
    value = (text or "").strip()
    if value and not _PARTY.fullmatch(value):
        raise StatementError(f"{where}: {name} {value[:40]!r} is not an organisation id")
    return value


class CappedReader(io.RawIOBase):
    """A binary stream that refuses to be read past ``limit`` bytes, so a huge upload is
    refused while it streams instead of after it filled memory or disk."""

    def __init__(self, stream: BinaryIO, limit: int):
        super().__init__()
        self._stream = stream
        self._limit = limit
        self.consumed = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[no-untyped-def]
        wanted = min(len(buffer), self._limit + 1 - self.consumed)
        data = self._stream.read(wanted) if wanted > 0 else b""
        self.consumed += len(data)
        if self.consumed > self._limit:
            raise StatementError(f"the statement is larger than {self._limit:,} bytes")
        buffer[: len(data)] = data
        return len(data)


class StatementReader:
    """What every format's reader offers: the header (complete once ``lines`` is exhausted) and
    the lines, streamed; ``bytes_read`` for progress."""

    header: StatementHeader
    _stream: CappedReader

    @property
    def bytes_read(self) -> int:
        return self._stream.consumed

    def lines(self) -> Iterator[StatementLine]:  # pragma: no cover - interface
        raise NotImplementedError
