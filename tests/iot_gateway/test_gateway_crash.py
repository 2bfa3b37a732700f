"""A gateway (``run_gateway``, i.e. ``iot_gateway.supervisor.gateway_serve`` with one worker)
killed (SIGKILL) in the middle of its batches and restarted applies every reading
exactly once: messages are acknowledged only after their batch committed, the persistent MQTT
session hands the unacknowledged ones to the restarted gateway, and the ledger's idempotency
keys turn a reading committed just before the kill into a replay."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from iot_gateway.models import MeterReading
from iot_gateway.mqtt import address, end_sessions, make_client, meter_topic
from ledger.models import Transaction
from tests.iot_gateway.test_gateway_ingest import T0, balance, fleet  # noqa: F401  (fixture)

pytestmark = [pytest.mark.mqtt, pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

ROOT = Path(__file__).resolve().parents[2]
N = 300


def database_url_of_tests() -> str:
    s = connection.settings_dict
    auth = s["USER"] + (f":{s['PASSWORD']}" if s["PASSWORD"] else "")
    return f"postgres://{auth}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"


def start_gateway(client_id: str, meter: str, log: Path) -> subprocess.Popen:
    env = {**os.environ, "DATABASE_URL": database_url_of_tests(), "MQTT_URL": settings.MQTT_URL,
           "GRIDCOIN_DATA_DIR": str(settings.DATA_DIR), "GRIDCOIN_KEK": settings.GRIDCOIN_KEK,
           "GRIDCOIN_ORDERER_KEY": settings.GRIDCOIN_ORDERER_KEY, "GRIDCOIN_DB_POOL_MAX": "4",
           "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        [sys.executable, "manage.py", "run_gateway", "--client-id", client_id, "--meter", meter,
         "--batch-size", "25", "--batch-timeout", "0.02"],
        cwd=ROOT, env=env, stdout=log.open("a"), stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 30
    while "subscribed" not in log.read_text().split("gateway started")[-1]:
        assert process.poll() is None and time.monotonic() < deadline, log.read_text()
        time.sleep(0.05)
    log.write_text(log.read_text() + "gateway started\n")
    return process


def shut_down(gateway: subprocess.Popen, publisher, client_ids: list[str], *, timeout: float) -> None:
    """Stop a gateway process (SIGTERM, killed after ``timeout``), disconnect the test's
    publisher and end the gateway's persistent sessions."""
    gateway.send_signal(signal.SIGTERM)
    try:
        gateway.wait(timeout)
    except subprocess.TimeoutExpired:
        gateway.kill()
    publisher.disconnect()
    publisher.loop_stop()
    end_sessions(settings.MQTT_URL, client_ids)


def wait_for(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


def test_a_gateway_killed_mid_batch_applies_every_reading_exactly_once(fleet, tmp_path):  # noqa: F811
    light, meter = fleet["light"], fleet["light_meter"]
    fleet["utility"].invoke("token", "mint", {"to": light.account_key, "asset": "k", "amount": 1_000_000})
    start_balance = balance(light.account_key)
    rng = random.Random(4)
    readings, total = [], 0
    for n in range(1, N + 1):
        total += rng.randint(1, 50)
        readings.append(meter.reading(counter=n, import_wh=total, export_wh=0, timestamp=T0 + timedelta(seconds=n)))
    (tmp_path / "gateway.log").write_text("")
    client_id = f"gw-crash-{uuid.uuid4().hex[:10]}"
    gateway = start_gateway(client_id, light.public_id, tmp_path / "gateway.log")
    publisher = make_client(settings.MQTT_URL)
    publisher.connect(*address(publisher))
    publisher.loop_start()
    try:
        infos = [publisher.publish(meter_topic(light.public_id, "readings"), json.dumps(r), qos=1) for r in readings]
        for info in infos:
            info.wait_for_publish(10)
        applied = MeterReading.objects.filter(device=light, status="applied")
        wait_for(lambda: applied.count() >= N // 3, 30, "a third of the readings")
        gateway.send_signal(signal.SIGKILL)
        gateway.wait(10)
        killed_at = applied.count()
        assert killed_at < N, "the gateway finished before it was killed; kill it earlier"
        gateway = start_gateway(client_id, light.public_id, tmp_path / "gateway.log")
        wait_for(lambda: applied.count() >= N, 60, "every reading")
        time.sleep(0.3)  # anything delivered twice shows up as a replay, never as a second burn
    finally:
        shut_down(gateway, publisher, [client_id], timeout=10)
    replays = MeterReading.objects.filter(device=light, status="replayed").count()
    print(f"killed after {killed_at} of {N} readings applied; {replays} redelivered as replays")
    assert applied.count() == N
    assert sorted(applied.values_list("counter", flat=True)) == list(range(1, N + 1))
    burns = Transaction.objects.filter(invoker=light.identity, chaincode="consumer", function="burn", status="valid")
    assert burns.count() == N
    assert balance(light.account_key) == start_balance - total
    assert not MeterReading.objects.filter(device=light, status="rejected").exists()
