"""World-state reads by key range (``span``) and of some members only (``fields``), and the
writes of new entries by COPY: the same answers as reading key by key."""

from __future__ import annotations

import pytest

from ledger import execution
from ledger.db import bound_cursor
from ledger.execution import state_rows, write_state
from ledger.models import StateEntry

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
