"""Database plumbing shared by the ledger and the apps that batch through it: server-side bound
cursors, array conditions, and the planner settings for keyed lookups. Nothing here knows a table."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from django.db import InterfaceError, OperationalError, connection, transaction

logger = logging.getLogger(__name__)


def sql_in(column: str, values: list) -> tuple[str, list]:
    """A raw-SQL condition ``column`` in ``values`` and its parameters, for ``bound_cursor``: one
    binary array parameter on PostgreSQL (the statement text does not grow with the list), a
    placeholder list elsewhere."""
    if connection.vendor == "postgresql":
        return f"{column} = ANY(%b)", [list(values)]
    return f"{column} IN ({','.join(['%s'] * len(values))})", list(values)


@contextmanager
def bound_cursor() -> Iterator:
    """A cursor for a batch's raw SQL (``%s`` placeholders). On PostgreSQL a psycopg cursor on
    Django's connection with server-side binding: parameters (arrays of a thousand keys) go
    to the server as parameters, where Django's cursor quotes them into the statement text in
    Python, which cost more CPU than the queries; a statement is prepared on its fifth use on
    a connection (``prepare_threshold`` in settings). Elsewhere Django's cursor."""
    if connection.vendor != "postgresql":
        with connection.cursor() as cur:
            yield cur
        return
    connection.ensure_connection()
    with connection.wrap_database_errors, psycopg.Cursor(connection.connection) as cur:
        yield cur


_PLAN_SETTINGS = {"enable_hashjoin": "off", "enable_mergejoin": "off", "enable_seqscan": "off"}


@contextmanager
def keyed_lookups() -> Iterator[None]:
    """A transaction (or a part of one) in which PostgreSQL joins by nested loops over indexes.

    A batch looks up a few hundred keys (accounts, devices, state entries) in tables of any
    size. PostgreSQL's planner often hashes the whole table instead: right after bulk loads its
    statistics are stale, and a join on an expression (an account key built from a device id)
    has no estimate. A hashed plan grows with the table; a keyed lookup grows with the batch.

    Outside a transaction the block is one (``transaction.atomic``) and the settings end with
    it; inside one they are put back when the block ends (``set_config(..., true)`` lasts at
    most until the transaction ends, and a rollback undoes it). Nested blocks cost nothing."""
    if connection.vendor != "postgresql" or connection.__dict__.get("_keyed_lookups", False):
        with transaction.atomic():
            yield
        return
    owner = not connection.in_atomic_block
    with transaction.atomic():
        with connection.cursor() as cur:
            cur.execute(f"SELECT {', '.join(f'current_setting({s!r})' for s in _PLAN_SETTINGS)}, "
                        f"{', '.join(f'set_config({s!r}, {v!r}, true)' for s, v in _PLAN_SETTINGS.items())}")
            previous = cur.fetchone()[:len(_PLAN_SETTINGS)]
        connection.__dict__["_keyed_lookups"] = True
        try:
            yield
        finally:
            connection.__dict__["_keyed_lookups"] = False
        if not owner:  # the transaction goes on: put the settings back
            with connection.cursor() as cur:
                cur.execute("SELECT " + ", ".join(f"set_config({s!r}, %s, true)" for s in _PLAN_SETTINGS),
                            list(previous))


def sqlstate(exc: BaseException) -> str | None:
    """The SQLSTATE of a database error Django wrapped (``None`` for anything else)."""
    cause = exc.__cause__
    return getattr(cause, "sqlstate", None) or getattr(cause, "pgcode", None)


def constraint_name(exc: BaseException) -> str | None:
    """The constraint a wrapped IntegrityError names, where the driver reports it."""
    diag = getattr(exc.__cause__, "diag", None)
    return getattr(diag, "constraint_name", None)


def copy_rows(cur, table: str, columns: str, rows: list[tuple]) -> None:
    """``COPY table (columns) FROM STDIN`` on a psycopg cursor: one round trip, rows formatted
    by psycopg's C code. Constraint and trigger checks are those of INSERT (statement triggers
    see the COPY)."""
    if not rows:
        return
    with cur.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)


def pool_drop_dead_connections(error: BaseException | None = None) -> None:
    """After a database error that may mean the server restarted or failed over: test the
    idle connections of this process's pool now (an empty query each) and replace the dead
    ones. Left alone, a restart's dead connections are handed out one at a time, and each
    fails the request, batch or step that draws it. Nothing for errors that leave connections
    alive (a serialization failure, a deadlock, a timeout) or without a pool; never on the hot
    path."""
    if error is not None and not _connection_lost(error):
        return
    pool = getattr(connection, "pool", None)
    if pool is None:
        return
    try:
        pool.check()
    except Exception:  # the server may still be away: the pool keeps trying in the background
        logger.warning("could not check the database pool's idle connections", exc_info=True)


def _connection_lost(error: BaseException) -> bool:
    """A connection failure: no SQLSTATE (refused, closed under us), class 08 (connection
    exception) or 57P (the server shutting down or starting)."""
    if not isinstance(error, OperationalError | InterfaceError | psycopg.OperationalError | psycopg.InterfaceError):
        return False
    cause = error if isinstance(error, psycopg.Error) else error.__cause__
    state = getattr(cause, "sqlstate", None)
    return state is None or state.startswith(("08", "57P"))
