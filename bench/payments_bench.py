"""Payments benchmark (issue 3), on PostgreSQL in one run:

1. direct ``invoke`` of retail-seller.sell as the bank's service identity (16 threads): the
   baseline, no HTTP, no signature check, no claim, no audit;
2. signed bank webhooks end to end through the Django test client (request, HMAC check,
   parsing, claim, invoke, audit row, JSON response), 16 threads, ~20% redeliveries;
3. their ratio (target: webhook overhead <= 2x direct invoke), webhooks/s (target >= 300) and
   the p95 latency of one webhook;
4. the same signed webhooks through the deployed ASGI server: daphne started as in the
   Procfile, on a free loopback port, posted to over HTTP/1.1 keep-alive connections, one per
   thread (the bench process's threads share the machine with the server).

Each phase first does WARMUP untimed operations of its own kind on the main thread (sales
under their own ids, counted by the exactly-once check like the others). Without it the
webhook phase paid, inside its timed window, one-time process costs that the direct phase
never meets: importing the whole URLconf on the first request (admin, DRF, every app's
views), about 5-10% of a 10 s phase; the direct phase gets the same warm-up.
"""

from __future__ import annotations

import http.client
import os
import random
import socket
import subprocess
import sys
import threading
import time

from bench import common
from bench.common import fresh_database, p95, setup_django

THREADS = int(os.environ.get("BENCH_THREADS", "16"))
SECONDS = float(os.environ.get("BENCH_SECONDS", "10"))
HOUSEHOLDS = int(os.environ.get("BENCH_HOUSEHOLDS", "256"))
DUPLICATES = float(os.environ.get("BENCH_DUPLICATES", "0.2"))
WARMUP = int(os.environ.get("BENCH_WARMUP", "20"))


def run_threads(worker, seconds: float) -> tuple[int, float, list[float]]:
    return common.run_threads(worker, seconds, THREADS)


def build():
    from payments.testing import build_market

    market = build_market(stock=10**12 // 16)
    from ledger import services as ledger
    from ledger.keys import credit_account

    homes = [market.household] + [market.add_household(f"hh-bench-{n}") for n in range(HOUSEHOLDS - 1)]
    for home in homes:  # the webhook path opens these on first use; the direct baseline cannot
        ledger.account_open(key=credit_account(home.msp_id, market.utility.msp_id), asset="INR", organisation=home)
    return market, homes


def bench_direct(market, homes) -> tuple[float, int, float]:
    from ledger import services as ledger
    from payments.sales import bank_invoker
    from payments.testing import PAID_AT

    identity, signer = bank_invoker(market.bank)

    def sale(rng: random.Random, event_id: str, latencies: list[float]) -> None:
        home = rng.choice(homes)
        args = {"event_id": event_id, "payer": home.msp_id, "payee": market.utility.msp_id,
                "amount": 4 * rng.randint(25, 500), "currency": "INR", "paid_at": PAID_AT}
        started = time.perf_counter()
        result = ledger.invoke(chaincode="retail-seller", function="sell", args=args, invoker=identity,
                               idempotency_key=f"direct:{args['event_id']}", signer=signer)
        latencies.append(time.perf_counter() - started)
        assert result.ok, result.reason

    def worker(i: int, stop: threading.Event, latencies: list[float]) -> int:
        rng = random.Random(i)
        done = 0
        while not stop.is_set():
            sale(rng, f"direct-{i}-{done}", latencies)
            done += 1
        return done

    warm = random.Random(-1)
    for n in range(WARMUP):
        sale(warm, f"direct-warm-{n}", [])

    ops, elapsed, latencies = run_threads(worker, SECONDS)
    return ops / elapsed, ops, p95(latencies)


def _next_delivery(rng: random.Random, event_id: str, sent: list[dict], market, homes) -> tuple[bool, bytes, str]:
    """A new event, or (DUPLICATES of the time) a redelivery of one sent before, re-signed as banks
    do: (whether it is a redelivery, raw body, signature header)."""
    redelivery = bool(sent) and rng.random() < DUPLICATES
    if redelivery:
        body = rng.choice(sent)
    else:
        home = rng.choice(homes)
        body = market.notification(id=event_id, payer=home.msp_id, amount=4 * rng.randint(25, 500))
        sent.append(body)
    raw, header = market.signed(body)
    return redelivery, raw, header


def bench_webhooks(market, homes) -> tuple[float, int, float, int]:
    from django.test import Client

    from payments.testing import post_bank_webhook

    duplicates = [0] * THREADS

    def delivery(rng: random.Random, event_id: str, client: Client, sent: list[dict],
                 latencies: list[float]) -> bool:
        """One delivery: a new event, or (DUPLICATES of the time) a redelivery of one sent before."""
        redelivery, raw, header = _next_delivery(rng, event_id, sent, market, homes)
        started = time.perf_counter()
        response = post_bank_webhook(raw, header, client=client)
        latencies.append(time.perf_counter() - started)
        expected = "duplicate" if redelivery else "applied"
        assert response.status_code == 200 and response.json()["status"] == expected, response.content
        return redelivery

    def worker(i: int, stop: threading.Event, latencies: list[float]) -> int:
        rng = random.Random(1000 + i)
        client = Client()
        sent: list[dict] = []
        done = 0
        while not stop.is_set():
            duplicates[i] += delivery(rng, f"wh-{i}-{done}", client, sent, latencies)
            done += 1
        return done

    warm, warm_client, warm_sent = random.Random(-1), Client(), []
    for n in range(WARMUP):
        delivery(warm, f"wh-warm-{n}", warm_client, warm_sent, [])

    ops, elapsed, latencies = run_threads(worker, SECONDS)
    return ops / elapsed, ops, p95(latencies), sum(duplicates)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_daphne() -> tuple[subprocess.Popen, int]:
    """The Procfile's web process (``daphne ... gridcoin.asgi:application``) on a loopback port,
    with this process's environment (the bench database, data directory and keys)."""
    port = _free_port()
    daphne = os.path.join(os.path.dirname(sys.executable), "daphne")
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "GRIDCOIN_BACKGROUND_SEALER": "0", "DEBUG": "0"}
    server = subprocess.Popen([daphne, "--bind", "127.0.0.1", "--port", str(port), "--proxy-headers",
                               "gridcoin.asgi:application"], cwd=str(common.ROOT), env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"daphne exited: {server.stderr.read().decode()[-2000:] if server.stderr else ''}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return server, port
        except OSError:
            time.sleep(0.2)
    server.kill()
    raise RuntimeError("daphne did not listen within 60 s")


def stop_daphne(server: subprocess.Popen) -> None:
    server.terminate()
    try:
        server.wait(timeout=20)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()


def bench_webhooks_http(market, homes, port: int) -> tuple[float, int, float, int]:
    duplicates = [0] * THREADS

    def delivery(rng: random.Random, event_id: str, conn: http.client.HTTPConnection, sent: list[dict],
                 latencies: list[float]) -> bool:
        redelivery, raw, header = _next_delivery(rng, event_id, sent, market, homes)
        started = time.perf_counter()
        conn.request("POST", "/webhooks/bank/", body=raw,
                     headers={"Content-Type": "application/json", "GridCoin-Signature": header})
        response = conn.getresponse()
        content = response.read()
        latencies.append(time.perf_counter() - started)
        expected = b'"duplicate"' if redelivery else b'"applied"'
        assert response.status == 200 and expected in content, content
        return redelivery

    def worker(i: int, stop: threading.Event, latencies: list[float]) -> int:
        rng = random.Random(2000 + i)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        sent: list[dict] = []
        done = 0
        try:
            while not stop.is_set():
                duplicates[i] += delivery(rng, f"wh-http-{i}-{done}", conn, sent, latencies)
                done += 1
        finally:
            conn.close()
        return done

    warm, warm_conn, warm_sent = random.Random(-2), http.client.HTTPConnection("127.0.0.1", port, timeout=30), []
    for n in range(WARMUP):
        delivery(warm, f"wh-http-warm-{n}", warm_conn, warm_sent, [])
    warm_conn.close()

    ops, elapsed, latencies = run_threads(worker, SECONDS)
    return ops / elapsed, ops, p95(latencies), sum(duplicates)


def check_exactly_once() -> tuple[int, int]:
    from ledger.models import Transaction
    from payments.models import ProcessedEvent, WebhookEvent

    applied = WebhookEvent.objects.filter(status="applied").count()
    # A sale's key is its payment's (payment:bank:<bank>:<end-to-end id, here the event id>).
    txs = Transaction.objects.filter(idempotency_key__regex=r"^payment:bank:[^:]+:wh-").count()
    assert applied == txs == ProcessedEvent.objects.count(), (applied, txs)
    return applied, WebhookEvent.objects.count()


def main() -> None:
    url = fresh_database()
    setup_django(url)
    print(f"payments benchmark on PostgreSQL, {THREADS} threads, {SECONDS:.0f} s per phase, "
          f"{HOUSEHOLDS} households, {DUPLICATES:.0%} redeliveries")
    market, homes = build()
    direct, direct_ops, direct_p95 = bench_direct(market, homes)
    print(f"  direct invoke of retail-seller.sell (signed, hashed):       {direct:10,.0f} tx/s  ({direct_ops:,} tx, "
          f"p95 {direct_p95 * 1000:.1f} ms)")
    hooks, hook_ops, hook_p95, dups = bench_webhooks(market, homes)
    print(f"  signed webhooks end to end (test client, {dups / max(hook_ops, 1):.0%} duplicates):  {hooks:10,.0f} /s"
          f"    ({hook_ops:,} deliveries)  (target >= 300)")
    print(f"  overhead direct invoke / webhook:                           {direct / hooks:10.2f}x  (target <= 2x)")
    print(f"  webhook latency p95:                                        {hook_p95 * 1000:10.1f} ms")
    server, port = start_daphne()
    try:
        http_rate, http_ops, http_p95, http_dups = bench_webhooks_http(market, homes, port)
    finally:
        stop_daphne(server)
    print(f"  signed webhooks through daphne over loopback HTTP ({http_dups / max(http_ops, 1):.0%} duplicates): "
          f"{http_rate:10,.0f} /s    ({http_ops:,} deliveries, p95 {http_p95 * 1000:.1f} ms)")
    print(f"  overhead direct invoke / webhook over HTTP:                 {direct / http_rate:10.2f}x")
    applied, audited = check_exactly_once()
    print(f"  exactly once: {applied:,} events applied, {audited:,} deliveries audited")


if __name__ == "__main__":
    main()
