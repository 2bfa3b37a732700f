"""Raw statements on payments' own tables, and model instances for the rows they read.

Statements run on every delivery go through the ledger's server-bound cursor: prepared after a
few uses (no client-side quoting, no planning per delivery)."""

from __future__ import annotations

from typing import Any, TypeVar

from django.db import connection, models

from ledger.db import bound_cursor

_Model = TypeVar("_Model", bound=models.Model)


def query_all(sql: str, params: list[Any]) -> list[tuple]:
    with bound_cursor() as cur:
        cur.execute(sql, params)
        return cur.fetchall()


def query_one(sql: str, params: list[Any]) -> tuple | None:
    with bound_cursor() as cur:
        cur.execute(sql, params)
        return cur.fetchone()


def loaded(model: type[_Model], **values: Any) -> _Model:
    """A model instance for a row read with raw SQL (as if the ORM had loaded it)."""
    instance = model(**values)
    instance._state.adding = False
    instance._state.db = connection.alias
    return instance
