"""``run_gateway --workers 2`` (``iot_gateway.supervisor.gateway_serve``): two processes share
the readings through an MQTT 5 shared subscription, each with its own persistent session. Every
reading is applied at most once and no energy is lost, also when one worker is SIGKILLed mid-run
and restarted by the first (its ``WorkerSupervisor``)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from datetime import timedelta

import pytest
from django.conf import settings

from iot_gateway.models import MeterReading
from iot_gateway.mqtt import address, make_client, meter_topic
from ledger import services as ledger
from ledger.models import Transaction
from meters.services import device_register_simulated
from tests.iot_gateway.test_gateway_crash import ROOT, database_url_of_tests, shut_down, wait_for
from tests.iot_gateway.test_gateway_ingest import T0, balance, meter_for
from tests.ledger_helpers import make_member

pytestmark = [pytest.mark.mqtt, pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

LIGHTS = 12
READINGS = 15


def children_of(pid: int) -> list[int]:
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    if int(f.read().rsplit(")", 1)[1].split()[1]) == pid:
                        out.append(int(entry))
            except (OSError, IndexError, ValueError):
                continue
    return out


def test_two_workers_share_the_readings_and_survive_a_killed_worker(tmp_path):
    suffix = uuid.uuid4().hex[:6].upper()
    utility = make_member(f"utility-w{suffix}".lower(), "utility")
    ledger.asset_create(code="k", name="Energy", scale=3, display_unit="kWh", issuer=utility.organisation)
    lights = [device_register_simulated(organisation=utility.organisation, kind="street_light", name=f"W{n}",
                                        public_id=f"SL-W{suffix}{n}") for n in range(LIGHTS)]
    for light in lights:
        utility.invoke("token", "mint", {"to": light.account_key, "asset": "k", "amount": 1_000_000})
    meters = {light.public_id: meter_for(light) for light in lights}
    log = tmp_path / "gateway.log"
    env = {**os.environ, "DATABASE_URL": database_url_of_tests(), "MQTT_URL": settings.MQTT_URL,
           "GRIDCOIN_DATA_DIR": str(settings.DATA_DIR), "GRIDCOIN_KEK": settings.GRIDCOIN_KEK,
           "GRIDCOIN_ORDERER_KEY": settings.GRIDCOIN_ORDERER_KEY, "GRIDCOIN_DB_POOL_MAX": "4",
           "PYTHONUNBUFFERED": "1", "LOG_LEVEL": "INFO"}
    group = f"gw-workers-{uuid.uuid4().hex[:8]}"
    command = [sys.executable, "manage.py", "run_gateway", "--client-id", group, "--workers", "2",
               "--batch-size", "10", "--batch-timeout", "0.02"]
    for light in lights:
        command += ["--meter", light.public_id]
    gateway = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT)
    publisher = make_client(settings.MQTT_URL)
    try:
        wait_for(lambda: "with 2 workers" in log.read_text() or gateway.poll() is not None, 60, "two workers")
        assert gateway.poll() is None, log.read_text()
        [worker] = children_of(gateway.pid)
        publisher.connect(*address(publisher))
        publisher.loop_start()
        infos = []
        for counter in range(1, READINGS + 1):  # each meter's cumulative register: 10 Wh per reading
            for light in lights:
                reading = meters[light.public_id].reading(counter=counter, import_wh=10 * counter, export_wh=0,
                                                          timestamp=T0 + timedelta(minutes=counter))
                infos.append(publisher.publish(meter_topic(light.public_id, "readings"), json.dumps(reading), qos=1))
            if counter == READINGS // 2:
                for info in infos:
                    info.wait_for_publish(10)
                wait_for(lambda: MeterReading.objects.filter(device__in=lights).count() >= LIGHTS * 3, 30,
                         "some readings")
                os.kill(worker, signal.SIGKILL)  # the first worker restarts it on its session
        for info in infos:
            info.wait_for_publish(10)
        wait_for(lambda: MeterReading.objects.filter(device__in=lights).count() >= LIGHTS * READINGS, 90,
                 "every reading")
        time.sleep(0.3)
        text = log.read_text()
        assert f"{group}-1 committed" in text and f"{group}-2 committed" in text, text  # both took readings
        assert "worker 2 exited" in text, text
    finally:
        shut_down(gateway, publisher, [f"{group}-1", f"{group}-2"], timeout=30)
    assert children_of(gateway.pid) == []
    for light in lights:
        rows = MeterReading.objects.filter(device=light)
        applied = sorted(rows.filter(status="applied").values_list("counter", flat=True))
        assert len(applied) == len(set(applied))  # never twice
        assert applied[-1] == READINGS  # the last cumulative register reached the ledger ...
        assert balance(light.account_key) == 1_000_000 - 10 * READINGS  # ... so no energy was lost
        burns = Transaction.objects.filter(invoker=light.identity, chaincode="consumer", status="valid")
        assert burns.count() == len(applied)
        for status, reason in rows.exclude(status="applied").values_list("status", "reason"):
            # split between workers, a meter's older reading may arrive after a newer one
            assert status == "replayed" or "older" in reason or "counter" in reason, (status, reason)
