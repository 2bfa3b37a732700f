"""Frequency-billing benchmark (issue 15), on PostgreSQL in one run:

1. set-up, untimed: BENCH_STATIONS stations (default 10) serving BENCH_HOUSEHOLDS households in
   all (default 10,000), the grid's frequency for each of a Kolkata day's 96 slots (spread over
   every band of the CERC 2014 vector, the default tariff), and every household's units in every
   slot, recorded from meter readings by ``initStationUnits`` (one invocation per station and slot,
   the stations shared among the worker processes of step 2);
2. timed: the whole day billed through the real chaincode path, one ``initStationBill``
   invocation per station and slot through ``ledger.services.invoke`` as the billing task does
   (signed, hashed, every bill a state write on the ledger), the station slots shared among
   BENCH_BILLING_WORKERS worker processes (default one per core), forked as Celery's prefork pool
   forks its workers, each with its own database connection; slot-bills per second and the peak
   resident memory of all the processes meanwhile (the sum of their peaks);
3. the baseline: the same pricing as ONE set-based SQL statement over the same frequency and unit
   records in world state, writing each priced bill as JSON into a table keyed like the ledger's;
4. untimed checks: the two agree (total and a sample of bills field by field), and, with
   BENCH_VERIFY=1 (the default), the ledger is sealed and ``ledger_verify`` replays it clean.

Targets: ≥ 20,000 slot-bills/s, chaincode / SQL ≤ 3×, ≤ 500 MB.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import time
from datetime import date

from bench.charity_bench import peak_mb, peak_reset
from bench.common import fresh_database, setup_django

HOUSEHOLDS = int(os.environ.get("BENCH_HOUSEHOLDS", "10000"))
STATIONS = int(os.environ.get("BENCH_STATIONS", "10"))
VERIFY = os.environ.get("BENCH_VERIFY", "1") != "0"
WORKERS = int(os.environ.get("BENCH_BILLING_WORKERS", str(os.cpu_count() or 2)))
DAY = date(2026, 6, 1)
SAMPLE = 2000


def _member(msp: str, org_type: str):
    from ledger import services as ledger
    from ledger.crypto import generate_private_key, public_bytes

    org = ledger.organisation_create(msp_id=msp, name=msp, org_type=org_type)
    key = generate_private_key()
    return ledger.identity_register(organisation=org, name="operator", public_key=public_bytes(key)), key


def _invoke(member, function: str, args: dict, key: str):
    from ledger import services as ledger

    identity, signer = member
    result = ledger.invoke(chaincode="energy-billing", function=function, args=args, invoker=identity,
                           idempotency_key=key, signer=signer)
    assert result.ok, result.reason
    return result.result


def _tx(*parts) -> str:
    return hashlib.sha256("/".join(map(str, parts)).encode()).hexdigest()


def build() -> dict:
    """Grid, utility, distributor, stations, 96 frequencies and every household's units."""
    from ledger.chaincodes import billing_math as bm

    grid, distributor = _member("grid", "grid"), _member("distributor", "distributor")
    _member("utility", "utility")
    stations = {f"st-{s:02d}": [f"hh-{n:05d}" for n in range(s, HOUSEHOLDS, STATIONS)] for s in range(STATIONS)}
    for station, societies in stations.items():
        _invoke(distributor, "registerStation", {"stationId": station, "societies": societies}, f"station-{station}")
    slots = bm.day_slots(DAY, "Asia/Kolkata")
    rng = random.Random(15)
    for n, (start, end) in enumerate(slots):
        # Around 50 Hz, with excursions into every band of the vector (49.60–50.10 Hz).
        avg = 4960 + n % 51 if n % 4 == 0 else rng.randint(4985, 5008)
        _invoke(grid, "initFreq", {"startTime": start.isoformat(), "endTime": end.isoformat(), "avgFreq": avg},
                f"freq-{n}")
    started = time.perf_counter()
    _forked(_record_units, [(distributor, list(stations.items())[w::WORKERS], slots, w == 0, started)
                            for w in range(WORKERS)])
    return {"distributor": distributor, "stations": stations, "slots": slots}


def _record_units(distributor, stations: list[tuple[str, list[str]]], slots, report: bool, started: float) -> None:
    """Every household's units of ``stations`` in every slot, slot by slot (random, but the same
    for a station on every run)."""
    rngs = {station: random.Random(f"units-{station}") for station, _ in stations}
    imported = {s: 0 for _, societies in stations for s in societies}
    exported = dict(imported)
    for n, (start, end) in enumerate(slots):
        solar = 24 <= n % 96 < 64  # midday: some households export
        for station, societies in stations:
            rng, units = rngs[station], []
            for society in societies:
                first = {"counter": n, "import_wh": imported[society], "export_wh": exported[society],
                         "tx": _tx(society, n)}
                imported[society] += rng.randint(0, 900)
                if solar and society[-1] in "02468":
                    exported[society] += rng.randint(0, 1500)
                last = {"counter": n + 1, "import_wh": imported[society], "export_wh": exported[society],
                        "tx": _tx(society, n + 1)}
                units.append({"societyId": society, "meter": f"HM-{society}", "from": first, "to": last,
                              "unit": (last["import_wh"] - first["import_wh"]) - (last["export_wh"] - first["export_wh"])})
            _invoke(distributor, "initStationUnits", {"stationId": station, "startTime": start.isoformat(),
                                                      "endTime": end.isoformat(), "units": units},
                    f"units-{station}-{n}")
        if report and n % 24 == 23:
            print(f"billing: set-up, units of {n + 1} slots recorded ({time.perf_counter() - started:.0f} s)",
                  flush=True)


def _forked(target, shares: list[tuple], ready=None) -> tuple[list, float]:
    """``target(*share)`` in a forked process per share, each with its own database connection
    (this process's are closed first: a child must not share them or their pool): their results
    in the order they finish (or the first failure, raised) and when they started
    (``time.perf_counter``). With ``ready`` (a barrier of len(shares) + 1), the children wait on
    it once connected, and they start when this process has joined it."""
    import multiprocessing

    from bench.common import _close_django_connections

    _close_django_connections()
    context = multiprocessing.get_context("fork")
    results = context.Queue()

    def run(share: tuple) -> None:
        from django.db import connection

        from gridcoin.celery import worker_gc_settle

        try:
            worker_gc_settle()  # as a Celery pool process does when it starts
            peak_reset()
            connection.ensure_connection()
            if ready is not None:
                ready.wait()
            results.put(target(*share))
        except BaseException as exc:  # reported by the parent
            import traceback

            results.put(RuntimeError(f"worker process failed: {exc!r}\n{traceback.format_exc()}"))
        finally:
            connection.close()

    children = [context.Process(target=run, args=(share,), daemon=True) for share in shares]
    for child in children:
        child.start()
    if ready is not None:
        ready.wait()
    started = time.perf_counter()
    outcomes = [results.get() for _ in children]
    for child in children:
        child.join()
    for outcome in outcomes:
        if isinstance(outcome, BaseException):
            raise outcome
    return outcomes, started


def backend_cpu() -> float | None:
    """CPU seconds PostgreSQL's backend for this thread's connection has used, where the server
    runs on this machine (its /proc is readable); None elsewhere. With the process's own CPU time
    it gives a cost per bill that other load on the machine hardly changes, unlike wall time."""
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute("SELECT pg_backend_pid()")
        pid = cur.fetchone()[0]
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _bill(world: dict, pairs: list[tuple[int, str]]) -> tuple[int, int, float, float | None, float]:
    """One billing worker's share: the ``initStationBill`` invocations of ``pairs`` (slot number,
    station) in order; (slot-bills, paise, CPU seconds, its backend's CPU seconds, peak MB)."""
    first, cpu = backend_cpu(), time.process_time()
    bills = amount = 0
    slots, stations = world["slots"], world["stations"]
    for n, station in pairs:
        start, end = slots[n]
        result = _invoke(world["distributor"], "initStationBill",
                         {"stationId": station, "startTime": start.isoformat(), "endTime": end.isoformat()},
                         f"bill-{station}-{n}")
        assert result["billed"] == len(stations[station]), result
        bills += result["billed"]
        amount += result["amount"]
    cpu, last = time.process_time() - cpu, backend_cpu()
    return bills, amount, cpu, None if first is None or last is None else last - first, peak_mb()


def bench_chaincode(world) -> tuple[float, int, int, float, tuple[float, float | None]]:
    """(seconds, slot-bills, total paise, peak MB of all processes, (CPU seconds of the workers,
    of their PostgreSQL backends)) for the day billed by ``initStationBill``, one invocation per
    station and slot shared among WORKERS forked worker processes, as Celery's prefork pool runs
    billing tasks: each its own database connection and a disjoint share of the station slots
    (every WORKERS-th of them, slot by slot), timed from when all are connected. Peak memory is
    the sum of every process's peak resident set (this one's included; pages a worker shares with
    it are counted in both, so the sum overstates what the machine spends)."""
    import multiprocessing

    pairs = [(n, station) for n in range(len(world["slots"])) for station in world["stations"]]
    ready = multiprocessing.get_context("fork").Barrier(WORKERS + 1)
    peak_reset()
    reports, started = _forked(_bill, [(world, pairs[w::WORKERS]) for w in range(WORKERS)], ready=ready)
    seconds = time.perf_counter() - started
    backends = [r[3] for r in reports]
    server = None if any(b is None for b in backends) else sum(backends)
    return (seconds, sum(r[0] for r in reports), sum(r[1] for r in reports), peak_mb() + sum(r[4] for r in reports),
            (sum(r[2] for r in reports), server))


def _vector_sql(tariff: dict) -> str:
    """The CASE expression of a frequency_vector tariff over ``f`` (centi-hertz), from its data."""
    bands = tariff["bands"]
    arms = [f"WHEN f >= {int(bands[0]['below'])} THEN {int(tariff['above_rate'])}"]
    arms += [f"WHEN f >= {int(b['from'])} THEN {int(b['base'])} + {int(b['step'])} * ({int(b['below'])} - f)"
             for b in bands]
    return f"CASE {' '.join(arms)} ELSE {int(tariff['floor_rate'])} END"


def bench_sql() -> tuple[float, int, int, float | None]:
    """(seconds, bills, total paise, CPU seconds of its PostgreSQL backend): one INSERT ... SELECT
    pricing every unit record of world state at its slot's frequency and writing the bill as
    JSON, keyed like the ledger's bills."""
    from django.db import connection

    from ledger.chaincodes import billing_math as bm
    from ledger.models import StateEntry

    tariff = bm.CERC_2014
    state = StateEntry._meta.db_table
    with connection.cursor() as cur:
        cur.execute("DROP TABLE IF EXISTS bench_sql_bill")
        cur.execute("CREATE TABLE bench_sql_bill (key text PRIMARY KEY, value jsonb NOT NULL)")
        first = backend_cpu()
        started = time.perf_counter()
        cur.execute(f"""
            INSERT INTO bench_sql_bill (key, value)
            SELECT 'bill/' || u.station || '/' || u.slot || '/' || u.society,
                   jsonb_build_object('societyId', u.society, 'stationId', u.station, 'startTime', u.slot,
                                      'endTime', u.slot_end, 'avgFreq', p.f, 'unit', u.unit, 'rate', p.rate,
                                      'amount', sign(u.unit * p.rate) * ((abs(u.unit * p.rate) + 50000) / 100000),
                                      'currency', 'INR',
                                      'tariff', jsonb_build_object('effective_from', %s::text, 'kind', %s::text))
            FROM (SELECT value->>'stationId' AS station, value->>'societyId' AS society,
                         value->>'startTime' AS slot, value->>'endTime' AS slot_end,
                         (value->>'unit')::bigint AS unit
                  FROM {state}
                  WHERE namespace = 'billing' AND key LIKE 'units/%%' AND NOT is_deleted) AS u
            JOIN (SELECT key, f, {_vector_sql(tariff)}::bigint AS rate
                  FROM (SELECT key, (value->>'avgFreq')::int AS f FROM {state}
                        WHERE namespace = 'billing' AND key LIKE 'freq/%%' AND NOT is_deleted) AS q) AS p
              ON p.key = 'freq/' || u.slot
        """, [tariff["effective_from"], tariff["kind"]])
        seconds = time.perf_counter() - started
        last = backend_cpu()
        cur.execute("SELECT count(*), coalesce(sum((value->>'amount')::bigint), 0) FROM bench_sql_bill")
        count, total = cur.fetchone()
    return seconds, count, int(total), None if first is None or last is None else last - first


def check_agreement(chaincode_total: int, sql_total: int) -> int:
    """The ledger's bills equal the SQL's: count, total, and a sample field by field."""
    from django.db import connection

    from ledger.models import StateEntry

    state = StateEntry._meta.db_table
    with connection.cursor() as cur:
        cur.execute(f"SELECT count(*), sum((value->>'amount')::bigint) FROM {state} "
                    "WHERE namespace = 'billing' AND key LIKE 'bill/%%' AND NOT is_deleted")
        count, ledger_total = cur.fetchone()
        assert count == HOUSEHOLDS * 96, count
        assert ledger_total == chaincode_total == sql_total, (ledger_total, chaincode_total, sql_total)
        cur.execute(f"""
            SELECT s.key, s.value, b.value FROM (SELECT key, value FROM bench_sql_bill ORDER BY random()
                                                 LIMIT {SAMPLE}) AS s
            LEFT JOIN {state} b ON b.namespace = 'billing' AND b.key = s.key""")
        rows = cur.fetchall()
    fields = ("societyId", "stationId", "startTime", "endTime", "avgFreq", "unit", "rate", "amount", "currency",
              "tariff")
    for key, sql_bill, ledger_bill in rows:
        assert ledger_bill is not None, key
        sql_bill = sql_bill if isinstance(sql_bill, dict) else json.loads(sql_bill)
        ledger_bill = ledger_bill if isinstance(ledger_bill, dict) else json.loads(ledger_bill)
        assert {f: sql_bill[f] for f in fields} == {f: ledger_bill[f] for f in fields}, (key, sql_bill, ledger_bill)
    return len(rows)


def verify() -> tuple[float, int]:
    from ledger.sealing import lease_acquire, seal_next_block
    from ledger.verify import verify_chain

    assert lease_acquire(holder="bench", seconds=3600)
    while seal_next_block(holder="bench", force=True):
        pass
    report = verify_chain(check_signatures=True)
    assert report.ok, report.problems[:3]
    return report.seconds, report.transactions


def main() -> None:
    url = fresh_database()
    setup_django(url)
    stations = f"{STATIONS} station{'s' if STATIONS > 1 else ''}"
    print(f"billing: {HOUSEHOLDS:,} households at {stations}, one day (96 slots)", flush=True)
    started = time.perf_counter()
    world = build()
    print(f"billing: set-up {time.perf_counter() - started:.0f} s (untimed)", flush=True)
    load = os.getloadavg()[0]
    seconds, bills, total, peak, (cpu, server) = bench_chaincode(world)
    sql_seconds, sql_bills, sql_total, sql_server = bench_sql()
    # The machine may be shared: its load says how far the wall times can be trusted.
    print(f"billing: load average {load:.2f} before billing, {os.getloadavg()[0]:.2f} after the SQL", flush=True)
    assert sql_bills == bills, (sql_bills, bills)
    sampled = check_agreement(total, sql_total)
    ratio = seconds / sql_seconds
    print(f"billing: {bills:,} slot-bills by {len(world['slots']) * STATIONS:,} initStationBill invocations "
          f"({WORKERS} worker process{'es' if WORKERS > 1 else ''}) {seconds:.2f} s: {bills / seconds:,.0f} slot-bills/s [target ≥ 20,000], "
          f"peak memory {peak:.0f} MB (sum over processes) [target ≤ 500]", flush=True)
    print(f"billing: the same pricing as one SQL statement {sql_seconds:.2f} s ({sql_bills / sql_seconds:,.0f}/s); "
          f"chaincode / SQL {ratio:.2f}× [target ≤ 3]; totals agree ({total:,} paise), "
          f"{sampled:,} sampled bills identical", flush=True)
    if server is not None and sql_server is not None:
        # Wall time moves with whatever else the machine runs; CPU per bill hardly does.
        print(f"billing: CPU per slot-bill: chaincode {cpu / bills * 1e6:.1f} µs Python + {server / bills * 1e6:.1f} µs "
              f"PostgreSQL; SQL statement {sql_server / sql_bills * 1e6:.1f} µs PostgreSQL", flush=True)
    if VERIFY:
        verified, transactions = verify()
        print(f"billing: sealed, ledger_verify clean ({transactions:,} transactions, {verified:.1f} s)", flush=True)


if __name__ == "__main__":
    main()
