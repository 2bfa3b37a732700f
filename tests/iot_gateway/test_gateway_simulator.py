"""SimulatedMeter (pure), a device's simulated meter (iot_gateway.fleet) and simulate_meters: registers advance exactly, a relay that is off
stops consumption, readings verify against the meter's key."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import call_command

from iot_gateway.fleet import fleet_devices, simulated_meter
from iot_gateway.models import MeterReading
from iot_gateway.services import readings_ingest
from iot_gateway.simulator import SimulatedMeter, reading_publication, relay_from_payload
from ledger.crypto import generate_private_key, public_bytes
from ledger.readings import parse_reading
from tests.iot_gateway.test_gateway_ingest import fleet  # noqa: F401  (fixture)

T0 = datetime(2026, 11, 21, 18, 0, tzinfo=UTC)


def meter(kind="street_light", power_w=120) -> SimulatedMeter:
    return SimulatedMeter(public_id="SL-X", kind=kind, invoker="u/SL-X", signer=generate_private_key(), power_w=power_w)


def test_registers_advance_in_whole_wh_without_losing_fractions():
    m = meter(power_w=100)
    m.advance(T0)
    for n in range(1, 37):  # 36 × 100 s at 100 W = 1 Wh exactly... in 100 s steps of 2.78 Wh
        m.advance(T0 + timedelta(seconds=100 * n))
    assert m.import_wh == 100  # 3600 s at 100 W
    assert m.export_wh == 0


def test_a_relay_that_is_off_stops_consumption_and_on_resumes_it():
    m = meter(power_w=1_000)
    first = m.next_reading(T0)
    assert m.relay_command(b"off")
    m.advance(T0 + timedelta(hours=1))
    assert m.import_wh == 0
    assert m.relay_command('{"relay": "on"}')
    second = m.next_reading(T0 + timedelta(hours=2))
    assert (first["counter"], second["counter"], second["import_wh"]) == (1, 2, 1_000)
    assert not m.relay_command(b"maybe") and m.relay == "on"


def test_a_producer_exports_whatever_its_relay():
    m = meter(kind="producer_meter", power_w=5_000)
    m.advance(T0)
    m.relay_command("off")
    reading = m.next_reading(T0 + timedelta(minutes=12))
    assert (reading["import_wh"], reading["export_wh"]) == (0, 1_000)


def test_readings_parse_and_carry_the_meter_signature():
    reading = parse_reading(meter().next_reading(T0))
    assert reading.counter == 1 and len(reading.signature) == 64 and reading.timestamp == T0


def test_a_reading_is_published_on_its_meters_readings_topic_as_json():
    reading = meter().next_reading(T0)
    topic, payload = reading_publication(reading)
    assert topic == "gridcoin/v1/meters/SL-X/readings" and json.loads(payload) == reading


@pytest.mark.django_db
def test_a_devices_simulated_meter_resumes_where_the_ledger_left_it(fleet):  # noqa: F811
    light = fleet["light"]
    first = simulated_meter(light)
    assert (first.counter, first.import_wh, first.invoker) == (0, 0, light.identity.qualified_name)
    first.add_energy(import_wh=70)
    (applied,) = readings_ingest([first.next_reading(T0)], received_via="http")
    assert applied.status == "applied"
    again = simulated_meter(light)
    assert (again.counter, again.import_wh, again.export_wh) == (1, 70, 0)
    assert public_bytes(again.signer) == bytes(light.identity.public_key)


@pytest.mark.parametrize("payload, relay", [(b"on", "on"), (b" OFF\n", "off"), (b'{"relay":"off"}', "off"),
                                            (b"{bad", None), (b"1", None)])
def test_relay_payloads(payload, relay):
    assert relay_from_payload(payload) == relay


@pytest.mark.django_db(transaction=True)
def test_simulate_meters_in_process_registers_a_fleet_and_its_readings_apply(fleet):  # noqa: F811
    call_command("simulate_meters", households=0, street_lights=2, producers=1, rate=20, seconds=0.5,
                 in_process=True, prefix="TSIM")
    devices = fleet_devices(street_lights=2, producers=1, prefix="TSIM")
    assert [d.public_id for d in devices] == ["TSIM-SL-0001", "TSIM-SL-0002", "TSIM-PM-0001"]
    rows = MeterReading.objects.filter(device__in=devices)
    assert rows.exists() and not rows.exclude(status="applied").exists()
    # a second run resumes at the ledger's last counter: nothing is refused as a replay
    call_command("simulate_meters", households=0, street_lights=2, producers=1, rate=20, seconds=0.3,
                 in_process=True, prefix="TSIM")
    assert not rows.exclude(status="applied").exists()
