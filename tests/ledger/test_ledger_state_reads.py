"""World-state reads by key range (``span``) and of some members only (``fields``), and the
writes of new entries by COPY or from their history rows: the same answers as reading key by key."""

from __future__ import annotations

import pytest

from ledger import execution
from ledger.db import bound_cursor
from ledger.execution import LedgerError, state_rows, write_state, write_state_after_history
from ledger.models import StateEntry, StateWrite

pytestmark = pytest.mark.postgres

DIR = "units/st/2026-06-01T00:00:00+00:00"


@pytest.fixture
def entries(db):
    rows = [StateEntry(namespace="billing", key=f"{DIR}/hh-{n}", value={"unit": n, "endTime": "e", "meter": "m"},
                       version=1) for n in range(6)]
    rows += [
        StateEntry(namespace="billing", key=f"{DIR}/hh-gone", value=None, is_deleted=True, version=3),
        StateEntry(namespace="billing", key=f"{DIR}/hh-2/deeper", value={"unit": 99}, version=1),  # a subdirectory
        StateEntry(namespace="other", key=f"{DIR}/hh-3", value={"unit": 98}, version=1),  # another namespace
        StateEntry(namespace="billing", key=f"{DIR}/hh-list", value=[1, 2], version=1),  # not an object
    ]
    StateEntry.objects.bulk_create(rows)


ASKED = [f"{DIR}/hh-{n}" for n in (1, 2, 4)] + [f"{DIR}/hh-gone", f"{DIR}/hh-missing", f"{DIR}/hh-list",
                                               "bill/st/2026-06-01T00:00:00+00:00/hh-1"]


@pytest.mark.parametrize("bytewise", [True, False])
def test_a_range_read_answers_exactly_the_keys_asked(entries, monkeypatch, bytewise):
    monkeypatch.setattr(execution, "keys_sort_bytewise", lambda: bytewise)
    by_key = state_rows("billing", ASKED)
    assert state_rows("billing", ASKED, span=True) == by_key
    assert set(by_key) == {f"{DIR}/hh-1", f"{DIR}/hh-2", f"{DIR}/hh-4", f"{DIR}/hh-gone", f"{DIR}/hh-list"}
    assert by_key[f"{DIR}/hh-gone"] == (None, 3, True)
    fields = state_rows("billing", ASKED, span=True, fields=("unit", "endTime", "absent"))
    assert fields[f"{DIR}/hh-2"] == ({"unit": 2, "endTime": "e"}, 1, False)
    assert fields[f"{DIR}/hh-gone"] == ({}, 3, True)
    assert fields[f"{DIR}/hh-list"] == ({}, 1, False)
    assert set(fields) == set(by_key)


def test_this_database_orders_keys_by_code_point(db):
    assert execution.keys_sort_bytewise()


def test_new_entries_are_copied_and_existing_ones_upserted(entries):
    with bound_cursor() as cur:
        write_state(cur, [("billing", f"{DIR}/hh-1", '{"unit": 10}', False, 2),  # existing: upsert
                          ("billing", f"{DIR}/hh-new", '{"unit": 1}', False, 1),  # new: copy
                          ("billing", f"{DIR}/hh-new", '{"unit": 2}', False, 2),  # new, written twice: the last
                          ("billing", f"{DIR}/hh-gone", '{"unit": 3}', False, 4)])  # deleted entry: upsert
    got = {e.key: (e.value, e.version, e.is_deleted) for e in StateEntry.objects.filter(key__in=[
        f"{DIR}/hh-1", f"{DIR}/hh-new", f"{DIR}/hh-gone"])}
    assert got == {f"{DIR}/hh-1": ({"unit": 10}, 2, False), f"{DIR}/hh-new": ({"unit": 2}, 2, False),
                   f"{DIR}/hh-gone": ({"unit": 3}, 4, False)}


@pytest.fixture
def tx(db) -> int:
    """A recorded transaction for history rows to belong to."""
    import uuid

    from django.utils import timezone

    from ledger.models import Transaction
    from tests.ledger_helpers import make_member

    member = make_member(f"history-{uuid.uuid4().hex[:6]}", "utility")
    return Transaction.objects.create(chaincode="test", function="write", args={}, invoker_id=member.identity.pk,
                                      body_digest="0" * 64, proposed_at=timezone.now(), signature="s",
                                      status="VALID", reason="", events=[], tx_hash=uuid.uuid4().hex).pk


def _history_then_state(tx_id: int, rows: list[tuple]) -> None:
    from ledger.db import copy_rows

    with bound_cursor() as cur:
        copy_rows(cur, "ledger_statewrite", "transaction_id, namespace, key, value, is_delete, version",
                  [(tx_id, *row) for row in rows])
        write_state_after_history(cur, [tx_id], rows)


def _entries(keys: list[str]) -> dict:
    return {e.key: (e.value, e.version, e.is_deleted) for e in StateEntry.objects.filter(namespace="billing",
                                                                                       key__in=keys)}


def test_first_writes_of_keys_become_entries_copied_from_their_history_rows(entries, tx, monkeypatch):
    monkeypatch.setattr(execution, "write_state", lambda cur, rows: pytest.fail("values sent twice"))
    rows = [("billing", f"{DIR}/hh-new-{n}", f'{{"unit": {n}, "tariff": {{"kind": "v"}}}}', False, 1)
            for n in range(3)]
    rows.append(("billing", f"{DIR}/hh-never", None, True, 1))  # a delete of a key that had no entry
    _history_then_state(tx, rows)
    assert _entries([r[1] for r in rows]) == {
        **{f"{DIR}/hh-new-{n}": ({"unit": n, "tariff": {"kind": "v"}}, 1, False) for n in range(3)},
        f"{DIR}/hh-never": (None, 1, True)}
    assert StateWrite.objects.filter(transaction_id=tx).count() == 4


def test_rewrites_and_keys_written_twice_are_written_as_before(entries, tx):
    rows = [("billing", f"{DIR}/hh-new", '{"unit": 1}', False, 1), ("billing", f"{DIR}/hh-new", '{"unit": 2}', False, 2),
            ("billing", f"{DIR}/hh-1", '{"unit": 10}', False, 2)]
    _history_then_state(tx, rows)
    assert _entries([f"{DIR}/hh-new", f"{DIR}/hh-1"]) == {f"{DIR}/hh-new": ({"unit": 2}, 2, False),
                                                          f"{DIR}/hh-1": ({"unit": 10}, 2, False)}


def test_history_rows_that_are_not_the_writes_are_refused(entries, tx):
    from ledger.db import copy_rows

    with bound_cursor() as cur:
        copy_rows(cur, "ledger_statewrite", "transaction_id, namespace, key, value, is_delete, version",
                  [(tx, "billing", f"{DIR}/hh-other", '{"unit": 5}', False, 1)])
    with pytest.raises(LedgerError, match="2 history rows for 1 state writes"):
        _history_then_state(tx, [("billing", f"{DIR}/hh-new", '{"unit": 1}', False, 1)])


class _Reader:
    """Serves a fixed world state, recording what it was asked."""

    def __init__(self, rows):
        self.rows, self.asked = rows, []

    def states(self, namespace, keys, *, lock, span=False, fields=None):
        self.asked.append((list(keys), span, fields))
        return {k: (execution.project(self.rows[k][0], fields), *self.rows[k][1:]) for k in keys if k in self.rows}


def test_get_fields_answers_what_the_invocation_already_holds_and_locks_the_rest():
    from datetime import UTC, datetime

    from ledger.contracts import Context, Invoker

    reader = _Reader({"a/1": ({"unit": 1, "meter": "m"}, 4, False), "a/2": (None, 2, True),
                      "a/3": ({"unit": 3}, 1, False)})
    ctx = Context(chaincode="c", function="f", args={}, invoker=Invoker(1, "o/i", "o", 1, "utility"),
                  now=datetime(2026, 6, 1, tzinfo=UTC), reader=reader, namespace="n")
    ctx.put_state("a/3", {"unit": 30, "meter": "x"})
    got = ctx.get_fields(["a/1", "a/2", "a/3", "a/4"], ("unit",), span=True)
    assert got == {"a/1": {"unit": 1}, "a/2": None, "a/3": {"unit": 30}, "a/4": None}
    assert reader.asked == [(["a/1", "a/2", "a/4"], True, ("unit",))]
    assert ctx.effects.locked_versions == {("n", "a/1"): 4, ("n", "a/2"): 2, ("n", "a/4"): 0}
