"""PostgreSQL restarted under load (``pg_ctl restart -m fast``: every session cut, open
transactions rolled back). The web process (daphne), the sealer and the gateway run as their
own processes against a throw-away cluster while a bank sends webhooks, a resident funds a
device and the device's meter publishes readings over MQTT. Clients retry what was not
acknowledged, as a bank and a meter do. Afterwards: every operation is in the ledger exactly
once, the sealer has sealed everything, the gateway applied every reading, the chain verifies,
the web process answers at the first try again, and no process was restarted.

Where the restart lands in the sealer's loop is chance; the one place it used to stay broken
(a connection cut between its transactions) has a test of its own at the end."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.conf import settings
from django.core.signals import got_request_exception
from django.db import OperationalError, connection

from iot_gateway.mqtt import address, end_sessions, make_client, meter_topic
from iot_gateway.simulator import SimulatedMeter
from ledger.models import Transaction
from ledger.sealing import SealerLoop
from payments.signing import signature_header
from payments.testing import BANK_SECRET, PAID_AT
from tests.system.faults import PORT_BASE, PostgresCluster, free_port, port_answers, post, wait_until

ROOT = Path(__file__).resolve().parents[2]
WEBHOOKS, FUNDINGS, READINGS = 40, 40, 120
FUND_WH, READING_WH = 10, 5
HOUSEHOLD_STOCK = 100_000  # Wh minted to the household before the load, so fundings never wait for webhooks
DEVICE_STOCK = 100_000
T0 = datetime(2026, 11, 21, 18, 0, tzinfo=UTC)

SEED = """
import json, sys
import django
django.setup()
from django.test import Client
from ledger.chaincodes.energy import household_account
from meters.models import DeviceKind
from meters.services import device_register_simulated, simulated_signer
from payments.testing import build_market
public_id, household_stock, device_stock = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
market = build_market(username="resident")
light = device_register_simulated(organisation=market.utility, kind=DeviceKind.STREET_LIGHT, name="Quay light",
                                  public_id=public_id)
market.operate("token", "mint", {"to": household_account(market.household.msp_id), "asset": "k",
                                 "amount": household_stock})
market.operate("token", "mint", {"to": light.account_key, "asset": "k", "amount": device_stock})
client = Client()
client.force_login(market.resident)
print(json.dumps({"session": client.cookies["sessionid"].value, "household": market.household.msp_id,
                  "utility": market.utility.msp_id, "bank": market.bank.msp_id, "device_account": light.account_key,
                  "household_account": household_account(market.household.msp_id),
                  "invoker": f"{light.organisation.msp_id}/{light.public_id}",
                  "seed": simulated_signer(light).private_bytes_raw().hex()}))
"""


def django_env(database_url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "MQTT_URL", "GRIDCOIN_ENV")}
    env.update(DATABASE_URL=database_url, GRIDCOIN_DATA_DIR=str(settings.DATA_DIR), GRIDCOIN_KEK=settings.GRIDCOIN_KEK,
               GRIDCOIN_ORDERER_KEY=settings.GRIDCOIN_ORDERER_KEY, GRIDCOIN_DB_POOL_MAX="8",
               GRIDCOIN_BACKGROUND_SEALER="0", GRIDCOIN_BACKGROUND_SCHEDULER="0", PYTHONUNBUFFERED="1",
               DJANGO_SETTINGS_MODULE="gridcoin.settings", **extra)
    return env


class Processes:
    """The stack's long-running processes, each logging to its own file."""

    def __init__(self, directory: Path):
        self.directory = directory
        self.running: dict[str, subprocess.Popen] = {}

    def start(self, name: str, argv: list[str], env: dict[str, str]) -> subprocess.Popen:
        log = (self.directory / f"{name}.log").open("w")
        self.running[name] = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        return self.running[name]

    def log(self, name: str) -> str:
        return (self.directory / f"{name}.log").read_text(errors="replace")

    def logs(self) -> str:
        return "\n".join(f"--- {name} ---\n{self.log(name)[-4000:]}" for name in self.running)

    def stop_all(self) -> None:
        for process in self.running.values():
            if process.poll() is None:
                process.terminate()
        for process in self.running.values():
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()


class Load:
    """The clients: each operation retried until acknowledged, counting the attempts that were not."""

    def __init__(self, web: str, seeded: dict, meter: SimulatedMeter, publisher):
        self.web, self.seeded, self.meter, self.publisher = web, seeded, meter, publisher
        self.failed_attempts = {"webhook": 0, "funding": 0}
        self.acknowledged = {"webhook": [], "funding": []}
        # Each kind of load stops half way until the restart begins, so all three are in flight
        # through it however fast each one runs on the machine of the day.
        self.halfway = {"webhook": threading.Event(), "funding": threading.Event(), "readings": threading.Event()}
        self.resume = threading.Event()
        csrf = secrets.token_hex(16)  # 32 characters: Django takes it as the unmasked secret
        self.resident = {"Cookie": f"sessionid={seeded['session']}; csrftoken={csrf}", "X-CSRFToken": csrf,
                         "Content-Type": "application/json"}

    def webhook(self, event_id: str) -> int:
        raw = json.dumps({"id": event_id, "bank": self.seeded["bank"], "payer": self.seeded["household"],
                          "payee": self.seeded["utility"], "chaincode": "retail-seller", "amount": 800,
                          "currency": "INR", "created": PAID_AT}).encode()
        header = signature_header([BANK_SECRET], int(time.time()), raw)
        return post(f"{self.web}/webhooks/bank/", raw,
                    {"Content-Type": "application/json", "GridCoin-Signature": header})

    def funding(self, key: str, public_id: str) -> int:
        return post(f"{self.web}/api/v1/devices/{public_id}/fund/", json.dumps({"amount_wh": FUND_WH}).encode(),
                    {**self.resident, "Idempotency-Key": key})

    def until_acknowledged(self, kind: str, send, ok_status: int, ident: str) -> None:
        deadline = time.monotonic() + 60
        while True:
            try:
                status = send()
                if status == ok_status:
                    self.acknowledged[kind].append(ident)
                    return
                assert status >= 500, f"{kind} {ident}: refused with {status}"
            except OSError:  # refused or cut: nothing was acknowledged
                pass
            self.failed_attempts[kind] += 1
            assert time.monotonic() < deadline, f"{kind} {ident} was never acknowledged"
            time.sleep(0.1)

    def _half_way(self, kind: str, index: int, count: int) -> None:
        if index == count // 2:
            self.halfway[kind].set()
            assert self.resume.wait(120), f"{kind}: the restart never began"

    def webhooks(self, ids: list[str]) -> None:
        for index, event_id in enumerate(ids):
            self._half_way("webhook", index, len(ids))
            self.until_acknowledged("webhook", lambda e=event_id: self.webhook(e), 200, event_id)
            time.sleep(0.05)

    def fundings(self, keys: list[str], public_id: str) -> None:
        for index, key in enumerate(keys):
            self._half_way("funding", index, len(keys))
            self.until_acknowledged("funding", lambda k=key: self.funding(k, public_id), 201, key)
            time.sleep(0.05)

    def readings(self, count: int) -> None:
        """QoS 1: the broker has it once the publish is acknowledged; the gateway's persistent
        session keeps it until the gateway committed it."""
        for counter in range(1, count + 1):
            self._half_way("readings", counter - 1, count)
            reading = self.meter.reading(counter=counter, import_wh=READING_WH * counter, export_wh=0,
                                         timestamp=T0 + timedelta(seconds=counter))
            info = self.publisher.publish(meter_topic(self.meter.public_id, "readings"), json.dumps(reading), qos=1)
            info.wait_for_publish(10)
            time.sleep(0.03)


def scalar(url: str, sql: str, params: tuple = ()):
    with psycopg.connect(url, autocommit=True) as conn:
        return conn.execute(sql, params).fetchone()[0]


@pytest.fixture
def cluster():
    directory = Path(tempfile.mkdtemp(prefix="gridcoin-pg-fault-"))
    cluster = None
    try:
        cluster = PostgresCluster(directory, free_port(PORT_BASE + 50))
        cluster.create()
        cluster.start()
        yield cluster
    finally:
        if cluster is not None:
            cluster.stop()
        shutil.rmtree(directory, ignore_errors=True)


@pytest.mark.postgres
@pytest.mark.mqtt
def test_the_stack_recovers_from_a_postgres_restart_under_load_and_loses_nothing(cluster, tmp_path):
    database = "gridcoin_fault"
    cluster.create_database(database)
    url = cluster.url(database)
    env = django_env(url)
    manage = [sys.executable, "manage.py"]
    subprocess.run([*manage, "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=env, check=True, timeout=120)
    public_id = f"SL-PG{uuid.uuid4().hex[:6].upper()}"
    seeded = json.loads(subprocess.run([sys.executable, "-c", SEED, public_id, str(HOUSEHOLD_STOCK), str(DEVICE_STOCK)],
                                       cwd=ROOT, env=env, check=True, timeout=120, capture_output=True,
                                       text=True).stdout.strip().splitlines()[-1])

    processes = Processes(tmp_path)
    web_port = free_port(PORT_BASE + 60)
    web = f"http://127.0.0.1:{web_port}"
    gateway_id = f"gw-pgfault-{uuid.uuid4().hex[:8]}"
    meter = SimulatedMeter(public_id=public_id, kind="street_light", invoker=seeded["invoker"],
                           signer=Ed25519PrivateKey.from_private_bytes(bytes.fromhex(seeded["seed"])))
    publisher = make_client(settings.MQTT_URL)
    try:
        processes.start("web", [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(web_port),
                                "gridcoin.asgi:application"], env)
        processes.start("sealer", [*manage, "run_sealer", "--poll", "0.05"], env)
        processes.start("gateway", [*manage, "run_gateway", "--client-id", gateway_id, "--meter", public_id,
                                    "--batch-size", "20", "--batch-timeout", "0.02"],
                        django_env(url, MQTT_URL=settings.MQTT_URL))
        wait_until(lambda: port_answers(web_port), 30, "the web process")
        wait_until(lambda: "subscribed" in processes.log("gateway"), 30, "the gateway's subscription")
        publisher.connect(*address(publisher))
        publisher.loop_start()

        def applied() -> int:
            return scalar(url, "SELECT count(*) FROM iot_gateway_meterreading r JOIN meters_device d ON d.id = r.device_id"
                               " WHERE d.public_id = %s AND r.status = 'applied'", (public_id,))

        load = Load(web, seeded, meter, publisher)
        threads = [  # daemons: a failed test does not wait for a load paused half way
            threading.Thread(target=load.webhooks, args=([f"evt-{n}" for n in range(WEBHOOKS)],), daemon=True),
            threading.Thread(target=load.fundings, args=([f"fund-{n}" for n in range(FUNDINGS)], public_id),
                             daemon=True),
            threading.Thread(target=load.readings, args=(READINGS,), daemon=True),
        ]
        for thread in threads:
            thread.start()
        wait_until(lambda: all(e.is_set() for e in load.halfway.values()), 60, "half of every kind of load")
        load.resume.set()
        cluster.restart()
        restarted_with = {kind: len(done) for kind, done in load.acknowledged.items()}
        restarted_with["readings"] = applied()
        for thread in threads:
            thread.join(90)
        assert not any(t.is_alive() for t in threads), processes.logs()
        assert (restarted_with["webhook"] < WEBHOOKS and restarted_with["funding"] < FUNDINGS
                and restarted_with["readings"] < READINGS), "the load finished before the restart; restart earlier"

        wait_until(lambda: applied() >= READINGS, 60, "the gateway to apply every reading", every=0.2)
        wait_until(lambda: scalar(url, "SELECT count(*) FROM ledger_unsealedtransaction") == 0
                   and scalar(url, "SELECT count(*) FROM ledger_transaction WHERE block_id IS NULL") == 0,
                   30, "the sealer to seal everything", every=0.2)

        # The web process answers at the first try again: its pool holds no dead connections.
        for n in range(5):
            assert load.webhook(f"evt-after-{n}") == 200
            assert load.funding(f"fund-after-{n}", public_id) == 201
        wait_until(lambda: scalar(url, "SELECT count(*) FROM ledger_unsealedtransaction") == 0, 30,
                   "the sealer to seal the last transactions", every=0.2)

        stopped = {name: p.returncode for name, p in processes.running.items() if p.poll() is not None}
        assert not stopped, f"processes exited: {stopped}\n{processes.logs()}"
    finally:
        publisher.disconnect()
        publisher.loop_stop()
        processes.stop_all()
        end_sessions(settings.MQTT_URL, [gateway_id])

    print(f"restarted after {restarted_with}; attempts refused or cut: {load.failed_attempts}")
    webhooks, fundings = WEBHOOKS + 5, FUNDINGS + 5
    assert len(load.acknowledged["webhook"]) == WEBHOOKS and len(load.acknowledged["funding"]) == FUNDINGS
    # Exactly once: one valid transaction per webhook and per funding, one applied reading per counter.
    assert scalar(url, "SELECT count(*) FROM ledger_transaction WHERE idempotency_key LIKE 'payment:bank:%%' "
                       "AND status = 'valid'") == webhooks
    assert scalar(url, "SELECT count(*) FROM payments_processedevent") == webhooks
    assert scalar(url, "SELECT count(*) FROM payments_payment WHERE state = 'credited'") == webhooks
    assert scalar(url, "SELECT count(*) FROM ledger_transaction WHERE chaincode = 'resident' AND function = 'fund' "
                       "AND status = 'valid'") == fundings
    counters = scalar(url, "SELECT array_agg(r.counter ORDER BY r.counter) FROM iot_gateway_meterreading r "
                           "JOIN meters_device d ON d.id = r.device_id WHERE d.public_id = %s AND r.status = 'applied'",
                      (public_id,))
    assert counters == list(range(1, READINGS + 1))
    # ... and so the balances: 800 paise buy 1 kWh at the market's retail price.
    household = scalar(url, "SELECT balance FROM ledger_account WHERE key = %s AND asset_id = 'k'",
                       (seeded["household_account"],))
    assert household == HOUSEHOLD_STOCK + 1_000 * webhooks - FUND_WH * fundings
    device = scalar(url, "SELECT balance FROM ledger_account WHERE key = %s AND asset_id = 'k'",
                    (seeded["device_account"],))
    assert device == DEVICE_STOCK + FUND_WH * fundings - READING_WH * READINGS
    verified = subprocess.run([*manage, "ledger_verify"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert verified.returncode == 0, verified.stdout + verified.stderr


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_sealer_whose_connection_is_cut_between_its_transactions_seals_again(network, settings, caplog):
    """The server ends the sealer's session (as a restart does) while it is idle; its next
    statement, the lease's renewal, runs outside a transaction and fails. The step after that
    connects anew instead of failing on the same dead connection for ever."""
    settings.GRIDCOIN_BLOCK_TIMEOUT = 0
    loop = SealerLoop(holder="cut-sealer")
    network.mint("household:hh-alice", 10)
    assert loop.step_or_recover() is True
    network.mint("household:hh-alice", 20)
    terminate_backends([connection.connection.info.backend_pid])
    loop._lease_until = 0.0  # the renewal is due: the next step starts outside a transaction
    assert loop.step_or_recover() is False
    assert "sealer step failed" in caplog.text
    assert loop.step_or_recover() is True
    assert not Transaction.objects.filter(block__isnull=True).exists()



def terminate_backends(pids: list[int]) -> None:
    """End these sessions from the server's side, as a restart ends every session."""
    s = connection.settings_dict
    with psycopg.connect(host=s["HOST"] or "127.0.0.1", port=s["PORT"] or 5432, user=s["USER"],
                         password=s["PASSWORD"] or None, dbname=s["NAME"], autocommit=True) as admin:
        for pid in pids:
            assert admin.execute("SELECT pg_terminate_backend(%s)", (pid,)).fetchone()[0]


def request_failed_with(cause: Exception) -> None:
    """What Django does when a view fails on the database: the signal, inside the ``except``."""
    try:
        raise OperationalError(str(cause)) from cause
    except OperationalError:
        got_request_exception.send(sender=None, request=None)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_request_failed_by_a_dead_connection_replaces_the_pools_other_dead_ones(monkeypatch):
    """Three idle connections in the pool die (a restart); the first request to draw one fails
    and Django signals it. The pool's other dead connections are replaced then, so the
    requests after it draw live ones instead of failing one by one. An error that leaves
    connections alive (a serialization failure) costs no check."""
    pool = connection.pool
    assert pool is not None, "the PostgreSQL settings configure a connection pool"
    checks = []
    with monkeypatch.context() as patched:
        patched.setattr(pool, "check", lambda: checks.append(1))
        request_failed_with(psycopg.errors.SerializationFailure("could not serialize access"))
    assert checks == []
    idle = [pool.getconn() for _ in range(3)]
    pids = [conn.info.backend_pid for conn in idle]
    for conn in idle:
        pool.putconn(conn)
    terminate_backends(pids)
    request_failed_with(psycopg.errors.AdminShutdown("terminating connection due to administrator command"))
    drawn = [pool.getconn(timeout=10) for _ in range(3)]
    try:
        for conn in drawn:
            conn.execute("SELECT 1")
            conn.commit()
    finally:
        for conn in drawn:
            pool.putconn(conn)
