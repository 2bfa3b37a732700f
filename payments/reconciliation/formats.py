"""Which reader reads which statement: the bank's camt.053, the processor's Stripe report."""

from __future__ import annotations

from typing import BinaryIO

from .camt053 import Camt053Reader
from .statements import StatementReader
from .stripe_report import StripeReportReader

BANK, STRIPE = "bank", "stripe"  # payments.models.Provider values (kept pure: no model import)


def statement_reader(provider: str, stream: BinaryIO, *, max_bytes: int | None = None) -> StatementReader:
    kwargs = {} if max_bytes is None else {"max_bytes": max_bytes}
    if provider == BANK:
        return Camt053Reader(stream, **kwargs)
    if provider == STRIPE:
        return StripeReportReader(stream, **kwargs)
    raise ValueError(f"no statement format for provider {provider!r}")
