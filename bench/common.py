"""Shared set-up for benchmarks: a fresh PostgreSQL database and a migrated Django."""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlparse, urlunparse

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/gridcoin_bench"


def fresh_database() -> str:
    """Drop and recreate the bench database named by DATABASE_URL; returns the URL."""
    import psycopg

    url = os.environ.get("DATABASE_URL") or DEFAULT_URL
    parts = urlparse(url)
    if parts.scheme not in ("postgres", "postgresql"):
        sys.exit("benchmarks need PostgreSQL: set DATABASE_URL=postgres://...")
    name = parts.path.lstrip("/")
    admin = urlunparse(parts._replace(path="/postgres"))
    _close_django_connections()  # a previous benchmark in this process may hold one
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    return url


def _close_django_connections() -> None:
    from django.apps import apps

    if apps.ready:
        from django.db import connections

        connections.close_all()
        for conn in connections.all():
            if hasattr(conn, "close_pool"):  # pooled connections stay open until the pool closes
                conn.close_pool()


def setup_django(url: str) -> None:
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("GRIDCOIN_DATA_DIR", tempfile.mkdtemp(prefix="gridcoin-bench-"))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gridcoin.settings")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    os.environ["DEBUG"] = "0"
    for var in ("REDIS_URL", "MQTT_URL", "GRIDCOIN_BACKGROUND_SEALER"):
        os.environ.pop(var, None)
    if os.environ.get("BENCH_REDIS_URL"):  # websocket figures through the real Redis channel layer
        os.environ["REDIS_URL"] = os.environ["BENCH_REDIS_URL"]
    sys.path.insert(0, str(ROOT))
    import django
    from django.apps import apps

    if not apps.ready:
        django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def p95(samples: list[float]) -> float:
    if len(samples) < 2:
        return samples[0] if samples else 0.0
    return statistics.quantiles(samples, n=100)[94]


class Timer:
    def __enter__(self):
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self.start


def run_threads(worker, seconds: float, threads: int) -> tuple[int, float, list[float]]:
    """Run ``worker(i, stop, latencies)`` in ``threads`` threads released together, for
    ``seconds``; returns (operations, elapsed, latencies). Each thread closes its database
    connection when done."""
    stop = threading.Event()
    counts = [0] * threads
    latencies: list[list[float]] = [[] for _ in range(threads)]
    barrier = threading.Barrier(threads + 1)

    def body(i: int) -> None:
        from django.db import connection

        barrier.wait()
        try:
            counts[i] = worker(i, stop, latencies[i])
        finally:
            connection.close()

    pool = [threading.Thread(target=body, args=(i,)) for i in range(threads)]
    for t in pool:
        t.start()
    barrier.wait()
    start = time.perf_counter()
    time.sleep(seconds)
    stop.set()
    for t in pool:
        t.join()
    return sum(counts), time.perf_counter() - start, [x for part in latencies for x in part]
