"""Putting a statement's lines into ``payments_reconciliationline``: COPY on PostgreSQL (one
round trip per chunk instead of one INSERT per line), ``bulk_create`` elsewhere. Chunks are
committed one by one so the run's progress can be written between them; a load cut short is
deleted and redone by the next attempt (``lines_clear``)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from itertools import islice

from django.db import connection

from .models import Outcome, ReconciliationLine
from .statements import PAYMENT, StatementLine

CHUNK = 10_000
TABLE = ReconciliationLine._meta.db_table
COLUMNS = ("run_id", "line_no", "kind", "reference", "source_ref", "amount", "currency", "payer", "payee",
           "chaincode", "processor", "booked_at", "outcome", "reason")


def _row(run_id: int, line: StatementLine) -> tuple:
    outcome, reason = (Outcome.PENDING.value, "") if line.kind == PAYMENT else (Outcome.IGNORED.value, line.note)
    return (run_id, line.line_no, line.kind, line.reference, line.source_ref, line.amount, line.currency,
            line.payer, line.payee, line.chaincode, line.processor, line.booked_at, outcome, reason)


def _chunks(lines: Iterable[StatementLine], size: int) -> Iterator[list[StatementLine]]:
    it = iter(lines)
    while chunk := list(islice(it, size)):
        yield chunk


def lines_clear(run_id: int) -> None:
    with connection.cursor() as cur:
        cur.execute(f"DELETE FROM {TABLE} WHERE run_id = %s", [run_id])


def lines_load(run_id: int, lines: Iterable[StatementLine], *, after_chunk: Callable[[int], None],
               chunk: int = CHUNK) -> int:
    """Insert every line; ``after_chunk(lines so far)`` is called between chunks. Returns the count."""
    total = 0
    for part in _chunks(lines, chunk):
        if connection.vendor == "postgresql":
            with connection.cursor() as cur, cur.copy(f"COPY {TABLE} ({', '.join(COLUMNS)}) FROM STDIN") as copy:
                for line in part:
                    copy.write_row(_row(run_id, line))
        else:
            ReconciliationLine.objects.bulk_create(
                [ReconciliationLine(**dict(zip(COLUMNS, _row(run_id, line), strict=True))) for line in part])
        total += len(part)
        after_chunk(total)
    return total
