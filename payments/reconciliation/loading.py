"""Putting a statement's lines into a staging table, from which ``matching`` writes each line
into ``payments_reconciliationline`` once, already sorted (an ``UPDATE`` of every stored line
after the load would write each row a second time, with its index entries).

The staging table is a temporary table of the loading connection: unlogged, unindexed, gone
with the connection if the worker dies, in which case the next attempt reads the statement again
(``lines_clear`` then removes anything a previous attempt left). On PostgreSQL the lines go in
by binary ``COPY`` (one round trip per chunk, no text formatting of numbers and dates), elsewhere
by ``executemany``. Chunks are committed one by one so the run's progress can be written
between them."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from itertools import islice

from django.db import connection

from .models import ReconciliationLine
from .statements import StatementLine

CHUNK = 10_000
TABLE = ReconciliationLine._meta.db_table
STAGING = "reconciliation_staging"
COLUMNS = ("line_no", "kind", "reference", "source_ref", "amount", "currency", "payer", "payee", "chaincode",
           "processor", "booked_at", "note")
_TYPES = ("int4", "text", "text", "text", "int8", "text", "text", "text", "text", "text", "timestamptz", "text")
_SQL_TYPES = ("integer", "text", "text", "text", "bigint", "text", "text", "text", "text", "text", "timestamp",
              "text")


def _chunks(lines: Iterable[StatementLine], size: int) -> Iterator[list[StatementLine]]:
    it = iter(lines)
    while chunk := list(islice(it, size)):
        yield chunk


def lines_clear(run_id: int) -> None:
    with connection.cursor() as cur:
        cur.execute(f"DELETE FROM {TABLE} WHERE run_id = %s", [run_id])


def staging_drop() -> None:
    with connection.cursor() as cur:
        cur.execute(f"DROP TABLE IF EXISTS {STAGING}")


def _staging_create() -> None:
    staging_drop()  # left by an earlier run on this (pooled) connection that died mid-way
    postgres = connection.vendor == "postgresql"
    types = ["timestamptz" if t == "timestamp" and postgres else t for t in _SQL_TYPES]
    columns = ", ".join(f"{name} {sql_type}" for name, sql_type in zip(COLUMNS, types, strict=True))
    with connection.cursor() as cur:
        cur.execute(f"CREATE TEMPORARY TABLE {STAGING} ({columns})")


def lines_stage(lines: Iterable[StatementLine], *, after_chunk: Callable[[int], None], chunk: int = CHUNK) -> int:
    """Stage every line; ``after_chunk(lines so far)`` is called between chunks. Returns the count."""
    _staging_create()
    total = 0
    postgres = connection.vendor == "postgresql"
    adapt = connection.ops.adapt_datetimefield_value
    for part in _chunks(lines, chunk):
        with connection.cursor() as cur:
            if postgres:
                with cur.copy(f"COPY {STAGING} FROM STDIN (FORMAT BINARY)") as copy:
                    copy.set_types(_TYPES)
                    for line in part:
                        copy.write_row((line.line_no, line.kind, line.reference, line.source_ref, line.amount,
                                        line.currency, line.payer, line.payee, line.chaincode, line.processor,
                                        line.booked_at, line.note))
            else:
                cur.executemany(f"INSERT INTO {STAGING} VALUES ({', '.join(['%s'] * len(COLUMNS))})", [
                    (line.line_no, line.kind, line.reference, line.source_ref, line.amount, line.currency,
                     line.payer, line.payee, line.chaincode, line.processor, adapt(line.booked_at), line.note)
                    for line in part])
        total += len(part)
        after_chunk(total)
    if postgres:
        with connection.cursor() as cur:
            # Temporary tables are never analysed by autovacuum: without statistics the planner
            # takes the staged lines for a handful and joins them by nested loops.
            cur.execute(f"ANALYZE {STAGING}")
    return total
