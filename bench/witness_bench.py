"""Witness benchmark (issue 16), on PostgreSQL in one run:

1. proofs served per second through the deployed server (daphne as in the Procfile, on a free
   loopback port, HTTP/1.1 keep-alive, one connection per thread, an API token with
   ``ledger:read``): global-log inclusion proofs and consistency proofs between random sizes of a
   log of BENCH_LOG_TX transactions (default 100,000) in blocks of 500;
2. the baseline: the same proofs computed in this process (``ledger.log``: the stored subtree
   hashes fetched in one query each), same threads; their ratio;
3. sealing-to-cosigned latency: three witnesses (bank, charity, auditor) run as threads of this
   process, each talking only HTTP to the server and polling every BENCH_WITNESS_INTERVAL seconds
   (default 0.5); a block is sealed, and the time until its checkpoint holds all three
   cosignatures is measured, BENCH_LATENCY_BLOCKS times (default 40). Target: p95 <= 2 s;
4. the standalone verifier against the same server's read API (``python -m verifier --api``, its
   own process, only its package on the path, the orderer key pinned): the whole ledger checked
   as an outsider holding an auditor's token would, in tx/s.
"""

from __future__ import annotations

import http.client
import json
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from bench import common
from bench.common import fresh_database, p95, setup_django

THREADS = int(os.environ.get("BENCH_THREADS", "8"))
SECONDS = float(os.environ.get("BENCH_SECONDS", "10"))
LOG_TX = int(os.environ.get("BENCH_LOG_TX", "100000"))
INTERVAL = float(os.environ.get("BENCH_WITNESS_INTERVAL", "0.5"))
LATENCY_BLOCKS = int(os.environ.get("BENCH_LATENCY_BLOCKS", "40"))
PREFIX = "/api/v1/ledger/"


def build():
    """A utility, a reader with an API token, LOG_TX sealed mints in blocks of 500."""
    from django.contrib.auth import get_user_model

    from accounts.services import api_token_create, membership_create
    from ledger import services as ledger
    from ledger.batch import Request, invoke_batch
    from ledger.models import Transaction
    from ledger.sealing import lease_acquire, seal_next_block
    from tests.ledger_helpers import make_member

    utility = make_member("bench-utility", "utility")
    ledger.asset_create(code="k", name="Energy coin", scale=3, display_unit="kWh", issuer=utility.organisation)
    ledger.account_open(key="bench:0", asset="k", organisation=utility.organisation)
    for start in range(0, LOG_TX, 2000):
        invoke_batch([Request("token", "mint", {"to": "bench:0", "asset": "k", "amount": 1}, utility.identity,
                              f"bench-mint-{n}", signer=utility.key) for n in range(start, min(LOG_TX, start + 2000))])
    assert lease_acquire(holder="bench", seconds=3600)
    while seal_next_block(holder="bench", max_tx=500, force=True):
        pass
    user = get_user_model().objects.create_user(username="bench-reader", password=None)
    membership_create(user=user, organisation=utility.organisation)
    _, token = api_token_create(user=user, organisation=utility.organisation, name="bench", scopes=["ledger:read"])
    # The log holds the sealed transactions only: the reader's membership above is a
    # configuration transaction still waiting for its block.
    hashes = list(Transaction.objects.filter(block__isnull=False).order_by("id").values_list("tx_hash", flat=True))
    return utility, token, hashes


def _queries(rng: random.Random, hashes: list[str], size: int):
    """Alternately an inclusion proof of a random transaction in a random tree holding it, and
    a consistency proof between two random sizes."""
    while True:
        index = rng.randrange(size)
        yield "inclusion", {"tx": hashes[index], "tree_size": rng.randint(index + 1, size)}
        first = rng.randint(1, size)
        yield "consistency", {"first": first, "second": rng.randint(first, size)}


def bench_in_process(hashes: list[str], size: int) -> tuple[float, int]:
    from django.db import connection

    from ledger import log
    from ledger.models import Transaction

    def worker(i, stop, _latencies) -> int:
        rng, done = random.Random(i), 0
        queries = _queries(rng, hashes, size)
        try:
            while not stop.is_set():
                kind, params = next(queries)
                if kind == "inclusion":
                    tx = Transaction.objects.select_related("block").get(tx_hash=params["tx"])
                    log.inclusion_proof(tx, params["tree_size"])
                else:
                    log.consistency_proof(params["first"], params["second"])
                done += 1
        finally:
            connection.close()
        return done

    ops, elapsed, _ = common.run_threads(worker, SECONDS, THREADS)
    return ops / elapsed, ops


def bench_http(port: int, token: str, hashes: list[str], size: int) -> tuple[float, int, float]:
    import urllib.parse

    def worker(i, stop, latencies) -> int:
        rng, done = random.Random(100 + i), 0
        queries = _queries(rng, hashes, size)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
        try:
            while not stop.is_set():
                kind, params = next(queries)
                started = time.perf_counter()
                conn.request("GET", f"{PREFIX}proofs/{kind}/?{urllib.parse.urlencode(params)}", headers=headers)
                response = conn.getresponse()
                body = response.read()
                assert response.status == 200, (response.status, body[:200])
                latencies.append(time.perf_counter() - started)
                done += 1
        finally:
            conn.close()
        return done

    ops, elapsed, latencies = common.run_threads(worker, SECONDS, THREADS)
    return ops / elapsed, ops, p95(latencies)


def bench_cosigned_latency(port: int, token: str, utility) -> list[float]:
    """Seal a block, then wait until all three witnesses' cosignatures of its checkpoint are
    stored; repeated LATENCY_BLOCKS times with a pause so witnesses are at random phases."""
    from django.core.management import call_command

    from ledger import services as ledger
    from ledger.models import Cosignature
    from ledger.sealing import lease_acquire, seal_next_block
    from ledger.witness_client import HttpTransport, Witness, load_or_create_key, run

    state = Path(tempfile.mkdtemp(prefix="gridcoin-bench-witnesses-"))
    api = f"http://127.0.0.1:{port}{PREFIX}"
    stopped = threading.Event()
    witnesses = []
    for msp_id, org_type in (("bench-bank", "bank"), ("bench-charity", "charity"), ("bench-audit", "auditor")):
        ledger.organisation_create(msp_id=msp_id, name=msp_id, org_type=org_type)
        key = load_or_create_key(state / msp_id / "witness.key")
        call_command("witness_register", org=msp_id, public_key=key.public_key().public_bytes_raw().hex(),
                     stdout=open(os.devnull, "w"))  # noqa: SIM115
        witnesses.append(Witness(org=msp_id, transport=HttpTransport(api, token), key=key, state_dir=state / msp_id))
    threads = [threading.Thread(target=run, args=[w], kwargs={"interval": INTERVAL, "stopped": stopped}, daemon=True)
               for w in witnesses]
    for t in threads:
        t.start()
    rng = random.Random(7)
    samples = []
    assert lease_acquire(holder="bench", seconds=3600)
    try:
        # The first round pins the orderer key and signs the latest checkpoint: not measured.
        _wait_cosigned(seal_one(utility, seal_next_block), Cosignature, timeout=30)
        for _ in range(LATENCY_BLOCKS):
            time.sleep(rng.uniform(0, INTERVAL))
            number = seal_one(utility, seal_next_block)
            started = time.perf_counter()
            _wait_cosigned(number, Cosignature, timeout=30)
            samples.append(time.perf_counter() - started)
    finally:
        stopped.set()
        for t in threads:
            t.join(timeout=5)
        alarms = [w.name for w in witnesses if w.alarmed]
        shutil.rmtree(state, ignore_errors=True)
    assert not alarms, f"witnesses raised an alarm on an honest log: {alarms}"
    return samples


def seal_one(utility, seal_next_block) -> int:
    result = utility.invoke("token", "mint", {"to": "bench:0", "asset": "k", "amount": 1})
    assert result.ok, result.reason
    block = seal_next_block(holder="bench", force=True)
    assert block is not None
    return block.number


def _wait_cosigned(number: int, cosignature_model, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while cosignature_model.objects.filter(checkpoint__number=number).count() < 3:
        if time.monotonic() > deadline:
            raise RuntimeError(f"block {number} was not cosigned by three witnesses within {timeout} s")
        time.sleep(0.005)


def verify_through_api(port: int, token: str) -> tuple[float, int, str]:
    """``python -m verifier --api`` against the server; returns the seconds, the transactions it
    checked and what it printed."""
    from ledger.sealing import orderer_public_hex

    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    env["PYTHONPATH"] = str(common.ROOT / "verifier")
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "verifier", "--api", f"http://127.0.0.1:{port}{PREFIX}",
                           "--token", token, "--orderer-key", orderer_public_hex()],
                          env=env, cwd=tempfile.gettempdir(), capture_output=True, text=True, timeout=3600)
    seconds = time.perf_counter() - started
    assert done.returncode == 0, (done.stdout + done.stderr)[-2000:]
    found = re.search(r"(\d+) transactions", done.stdout)
    assert found, done.stdout
    return seconds, int(found.group(1)), done.stdout.strip()


def main() -> None:
    from bench.payments_bench import start_daphne, stop_daphne

    url = fresh_database()
    setup_django(url)
    print(f"witness benchmark on PostgreSQL, {THREADS} threads, {SECONDS:.0f} s per phase, a log of {LOG_TX:,} tx")
    utility, token, hashes = build()
    size = len(hashes)
    local, _ = bench_in_process(hashes, size)
    print(f"  proofs computed in process (inclusion + consistency):      {local:10,.0f} /s")
    server, port = start_daphne()
    try:
        served, _, latency = bench_http(port, token, hashes, size)
        print(f"  proofs served through daphne (HTTP keep-alive, token):     {served:10,.0f} /s  (p95 {latency * 1000:.1f} ms)")
        print(f"  ratio served / in process:                                  {served / local:10.2f}x")
        samples = bench_cosigned_latency(port, token, utility)
        api_seconds, api_tx, said = verify_through_api(port, token)
    finally:
        stop_daphne(server)
    print(f"  sealed -> cosigned by 3 witnesses (poll {INTERVAL} s), {len(samples)} blocks: "
          f"p50 {statistics.median(samples) * 1000:.0f} ms, p95 {p95(samples) * 1000:.0f} ms, "
          f"max {max(samples) * 1000:.0f} ms  (target p95 <= 2,000 ms)")
    print(f"  standalone verifier through the API (--api, pinned key): {api_tx / api_seconds:10,.0f} tx/s "
          f"({api_tx:,} transactions in {api_seconds:.1f} s)")
    print(f"    {said}")
    print(json.dumps({"proofs_in_process": round(local), "proofs_served": round(served),
                      "verifier_api_tx_per_s": round(api_tx / api_seconds),
                      "cosigned_p50_ms": round(statistics.median(samples) * 1000),
                      "cosigned_p95_ms": round(p95(samples) * 1000)}))


if __name__ == "__main__":
    main()
