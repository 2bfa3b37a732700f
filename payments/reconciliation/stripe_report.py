"""Stripe's itemized balance change report (``balance_change_from_activity.itemized``), CSV.

One row per balance transaction. Columns used (Stripe's names): ``balance_transaction_id``,
``created_utc`` (``YYYY-MM-DD HH:MM:SS``, UTC), ``currency`` (lower case), ``gross`` (decimal,
major units), ``reporting_category``, ``payment_intent_id``, and, when the report was run with
them, ``source_id``, ``charge_id``, ``fee``, ``net`` and the payment's metadata columns
``payment_metadata[payer]``, ``payment_metadata[payee]``, ``payment_metadata[chaincode]`` and
``payment_metadata[bank]`` (the processor organisation, as in the webhooks' metadata).
Rows of ``reporting_category`` ``charge`` are payments; refunds, disputes, fees and payouts are
kept as ``OTHER`` lines (reversals are not reconciled here). Read row by row (streamed).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import BinaryIO

from .statements import (
    OTHER,
    PAYMENT,
    CappedReader,
    StatementError,
    StatementHeader,
    StatementLine,
    StatementReader,
    currency_of,
    minor_units,
    party_of,
    reference_of,
)

MAX_BYTES = 512 * 1024 * 1024
MAX_LINES = 1_000_000
REQUIRED = ("balance_transaction_id", "created_utc", "currency", "gross", "reporting_category", "payment_intent_id")
PAYER, PAYEE, CHAINCODE = "payment_metadata[payer]", "payment_metadata[payee]", "payment_metadata[chaincode]"
PROCESSOR = "payment_metadata[bank]"
_MAX_FIELD = 1024


class StripeReportReader(StatementReader):
    def __init__(self, stream: BinaryIO, *, max_bytes: int = MAX_BYTES, max_lines: int = MAX_LINES):
        self._stream = CappedReader(stream, max_bytes)
        self._max_lines = max_lines
        self.header = StatementHeader()

    def lines(self) -> Iterator[StatementLine]:
        text = io.TextIOWrapper(io.BufferedReader(self._stream), encoding="utf-8-sig", newline="")
        try:
            yield from self._rows(csv.reader(text, strict=True))
        except UnicodeDecodeError:
            raise StatementError("the report is not UTF-8 text") from None
        except csv.Error as exc:
            raise StatementError(f"the report is not valid CSV: {exc}") from None

    def _rows(self, reader) -> Iterator[StatementLine]:  # type: ignore[no-untyped-def]
        columns = next(reader, None)
        if not columns:
            raise StatementError("the report is empty")
        missing = [c for c in REQUIRED if c not in columns]
        if missing:
            raise StatementError(f"not a Stripe balance change report: missing column(s) {', '.join(missing)}")
        index = {name: n for n, name in enumerate(columns)}
        first = last = None
        count = 0
        for row in reader:
            if not any(row):
                continue
            count += 1
            where = f"row {count + 1}"
            if count > self._max_lines:
                raise StatementError(f"the report has more than {self._max_lines:,} lines")
            if len(row) != len(columns):
                raise StatementError(f"{where}: {len(row)} fields, the header has {len(columns)}")
            if any(len(value) > _MAX_FIELD for value in row):
                raise StatementError(f"{where}: a field is longer than {_MAX_FIELD} characters")
            line = self._line(count, where, row, index)
            first = line.booked_at if first is None else min(first, line.booked_at)  # type: ignore[type-var]
            last = line.booked_at if last is None else max(last, line.booked_at)  # type: ignore[type-var]
            yield line
        # The report's interval is a parameter of the report run, not a column: the lines span it
        # (created_utc has whole seconds; the end is exclusive).
        self.header.period_start = first
        self.header.period_end = None if last is None else last + timedelta(seconds=1)

    @staticmethod
    def _line(count: int, where: str, row: list[str], index: dict[str, int]) -> StatementLine:
        def get(name: str) -> str:
            return row[index[name]].strip() if name in index else ""

        currency = currency_of(get("currency"), where=where)
        gross = minor_units(get("gross"), currency, where=where)
        try:
            booked_at = datetime.fromisoformat(get("created_utc")).replace(tzinfo=UTC)
        except ValueError:
            raise StatementError(f"{where}: created_utc {get('created_utc')!r} is not YYYY-MM-DD HH:MM:SS") from None
        category = get("reporting_category")
        intent = get("payment_intent_id")
        kind, note = PAYMENT, ""
        if category != "charge":
            kind, note = OTHER, f"reporting category {category or 'missing'}, not a payment"
        elif not intent:
            kind, note = OTHER, "charge without a PaymentIntent (not created through Checkout or PaymentIntents)"
        elif gross <= 0:
            raise StatementError(f"{where}: a charge with gross {get('gross')}")
        return StatementLine(
            line_no=count, kind=kind,
            reference=reference_of(intent, where=where, name="payment_intent_id") if intent else "",
            source_ref=reference_of(get("balance_transaction_id"), where=where, name="balance_transaction_id"),
            amount=abs(gross), currency=currency, booked_at=booked_at,
            payer=party_of(get(PAYER), where=where, name=PAYER), payee=party_of(get(PAYEE), where=where, name=PAYEE),
            chaincode=party_of(get(CHAINCODE), where=where, name=CHAINCODE),
            processor=party_of(get(PROCESSOR), where=where, name=PROCESSOR), note=note,
        )
