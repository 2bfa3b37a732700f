"""How the ledger's batches use PostgreSQL: keyed lookups by index, heap-only balance updates."""

from __future__ import annotations

import uuid

import pytest
from django.db import connection, transaction

from ledger.db import keyed_lookups
from ledger.models import Account, AccountKind
from tests.ledger_helpers import make_member

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def setting(name: str) -> str:
    with connection.cursor() as cur:
        cur.execute(f"SHOW {name}")
        return cur.fetchone()[0]


@pytest.fixture
def accounts(db):
    """2,000 device accounts, analysed: enough for PostgreSQL to prefer hashing the table."""
    member = make_member(f"plans-{uuid.uuid4().hex[:6]}", "utility")
    from ledger import services as ledger

    ledger.asset_create(code="k", name="Energy", scale=3, display_unit="kWh", issuer=member.organisation)
    prefix = uuid.uuid4().hex[:6]
    Account.objects.bulk_create(Account(key=f"device:{prefix}-{n}", asset_id="k", organisation=member.organisation,
                                        kind=AccountKind.DEVICE) for n in range(2_000))
    with connection.cursor() as cur:
        cur.execute("ANALYZE ledger_account")
    return [f"device:{prefix}-{n}" for n in range(0, 2_000, 4)]


def plan(keys: list[str]) -> str:
    with connection.cursor() as cur:
        cur.execute("EXPLAIN SELECT a.id FROM ledger_account a JOIN unnest(%s::text[], %s::text[]) AS k(key, asset) "
                    "ON a.key = k.key AND a.asset_id = k.asset", [keys, ["k"] * len(keys)])
        return "\n".join(row[0] for row in cur.fetchall())


def test_inside_keyed_lookups_a_batch_of_keys_is_looked_up_by_index(accounts):
    with transaction.atomic(), keyed_lookups():
        inside = plan(accounts)
    assert "Index Scan" in inside and "Hash" not in inside and "Seq Scan on ledger_account" not in inside, inside


def test_keyed_lookups_restores_the_planner_settings(accounts):
    with transaction.atomic():
        with connection.cursor() as cur:
            cur.execute("SET LOCAL enable_seqscan = off")
        with keyed_lookups():
            assert (setting("enable_hashjoin"), setting("enable_mergejoin")) == ("off", "off")
        assert (setting("enable_hashjoin"), setting("enable_mergejoin"), setting("enable_seqscan")) == ("on", "on", "off")
    assert setting("enable_seqscan") == "on"  # and nothing outlives the transaction


def test_keyed_lookups_outside_a_transaction_is_one(accounts):
    with keyed_lookups():
        assert connection.in_atomic_block
        with keyed_lookups():  # nested: nothing to do
            assert setting("enable_hashjoin") == "off"
        assert setting("enable_hashjoin") == "off"
    assert not connection.in_atomic_block and setting("enable_hashjoin") == "on"


def test_balance_updates_stay_on_their_page(accounts):
    """fillfactor 50: a balance update writes no index entry (a heap-only tuple)."""
    with transaction.atomic(), connection.cursor() as cur:
        cur.execute("UPDATE ledger_account SET balance = balance + 1 WHERE key = ANY(%s)", [accounts])
        cur.execute("SELECT pg_stat_get_xact_tuples_updated('ledger_account'::regclass), "
                    "pg_stat_get_xact_tuples_hot_updated('ledger_account'::regclass)")
        updated, hot = cur.fetchone()
    assert updated == len(accounts)
    assert hot == updated


def test_a_batch_serialises_world_state_keys_by_advisory_lock_not_row_lock(db):
    """The batch reads world-state entries under their keys' advisory locks, which every
    writer takes first; it adds no row lock (a WAL record per key) on top."""
    import psycopg

    from ledger.batch import _Snapshot
    from ledger.models import StateEntry

    key = f"registers/PL-{uuid.uuid4().hex[:6]}"
    StateEntry.objects.create(namespace="devices", key=key, value={"counter": 1}, version=1)
    dsn = connection.get_connection_params()
    with transaction.atomic():
        snapshot = _Snapshot()
        snapshot.lock_state("devices", [key])
        assert snapshot.state[("devices", key)][0] == {"counter": 1}
        with psycopg.connect(**{k: v for k, v in dsn.items() if k in ("dbname", "user", "host", "port", "password")},
                             autocommit=True) as other:
            locked = other.execute("SELECT pg_try_advisory_xact_lock(hashtextextended(%s, 0))",
                                   [f"devices\x1f{key}"]).fetchone()[0]
            assert locked is False  # another writer of the key waits for this batch
            other.execute("BEGIN")
            row = other.execute("SELECT key FROM ledger_stateentry WHERE namespace = 'devices' AND key = %s "
                                "FOR UPDATE NOWAIT", [key]).fetchone()  # no row lock held by the batch
            assert row == (key,)
            other.execute("ROLLBACK")


def _lock_elsewhere(namespace: str, keys: list[str]) -> bool:
    """Whether another connection's transaction gets ``lock_state_keys`` within 200 ms."""
    from ledger.execution import lock_state_keys
    from tests.ledger_helpers import elsewhere

    return elsewhere(lambda: lock_state_keys(namespace, keys), lock_timeout_ms=200)[0]


def test_a_station_slot_of_40000_keys_takes_one_lock_per_directory(db):
    """A station's slot of bills for 20,000 households names 40,000 keys; one advisory lock per
    key would exhaust PostgreSQL's shared lock table ("out of shared memory"). The bulk writer
    locks the keys' directories instead: a writer of any one of the keys waits for it, a bulk or
    single writer of another station's slot does not."""
    from ledger.execution import lock_state_keys

    slot = "2026-06-01T02:30:00+00:00"
    keys = [f"{kind}/st-big/{slot}/hh-{n}" for kind in ("units", "bill") for n in range(20_000)]
    with transaction.atomic():
        lock_state_keys("billing", keys)
        with connection.cursor() as cur:
            cur.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()")
            assert cur.fetchone()[0] == 2
        assert _lock_elsewhere("billing", [f"bill/st-big/{slot}/hh-7"]) is False
        assert _lock_elsewhere("billing", [f"bill/st-big/{slot}/hh-{n}" for n in range(1000)]) is False
        assert _lock_elsewhere("billing", [f"bill/st-other/{slot}/hh-7"]) is True
        assert _lock_elsewhere("billing", [f"bill/st-other/{slot}/hh-{n}" for n in range(1000)]) is True
        assert _lock_elsewhere("devices", [f"bill/st-big/{slot}/hh-7"]) is True  # another namespace


def test_writers_of_a_few_hundred_keys_of_a_directory_wait_only_for_the_same_keys(db):
    """The gateway's batches: two batches of different meters' registers do not wait for each
    other; a writer of the whole directory waits for both."""
    from ledger.execution import lock_state_keys

    with transaction.atomic():
        lock_state_keys("devices", [f"registers/SL-{n}" for n in range(500)])
        assert _lock_elsewhere("devices", ["registers/SL-2"]) is False
        assert _lock_elsewhere("devices", [f"registers/SL-{n}" for n in range(500, 1000)]) is True
        assert _lock_elsewhere("devices", [f"registers/SL-{n}" for n in range(1000, 2000)]) is False  # bulk


def test_the_ledgers_statements_are_prepared_after_a_few_uses_and_never_replanned(db):
    """PostgreSQL stops parsing and planning a hot statement once psycopg has prepared it:
    that halved PostgreSQL's CPU per ``invoke``. Its generic plan is used from the first
    prepared execution on (no custom plan per execution, which cost a webhook ~0.9 ms).
    Django's own cursors are never prepared."""
    from ledger.db import bound_cursor

    marker = f"prepared-{uuid.uuid4().hex}"
    statement = f"SELECT count(*) FROM ledger_account WHERE key = ANY(%s) AND '{marker}' <> ''"
    for _ in range(8):
        with bound_cursor() as cur:
            cur.execute(statement, [["household:a", "household:b"]])
            assert cur.fetchone() == (0,)
    with connection.cursor() as cur:
        for _ in range(6):
            cur.execute(f"SELECT 1 FROM ledger_account WHERE '{marker}-django' <> %s LIMIT 1", [""])
        cur.execute("SELECT statement, generic_plans, custom_plans FROM pg_prepared_statements "
                    "WHERE statement LIKE %s", [f"%{marker}%"])
        prepared = cur.fetchall()
    assert len(prepared) == 1 and "-django" not in prepared[0][0], prepared
    assert prepared[0][1:] == (3, 0), prepared  # three prepared executions, each on the generic plan


def test_batch_queries_bind_their_parameters_on_the_server(db):
    import psycopg

    from ledger.db import bound_cursor

    with bound_cursor() as cur:
        assert isinstance(cur, psycopg.Cursor) and not isinstance(cur, psycopg.ClientCursor)
        cur.execute("SELECT %s::text[]", [["a'b", "c"]])
        assert cur.fetchone()[0] == ["a'b", "c"]


def test_world_state_lookups_are_never_prepared(db):
    """A generic plan prepared while world state was small would scan it sequentially for the rest
    of the connection's life, however large it grows: the key lookups are planned each time."""
    from ledger.execution import state_rows, state_versions

    with transaction.atomic():
        for n in range(12):  # well past the prepare threshold
            state_rows("plans", [f"k{n}", f"k{n + 1}"])
            state_versions("plans", [f"k{n}"])
        with connection.cursor() as cur:
            cur.execute("SELECT statement FROM pg_prepared_statements")
            prepared = [row[0] for row in cur.fetchall()]
    assert not [s for s in prepared if "FROM ledger_stateentry" in s], prepared
