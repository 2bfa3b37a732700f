"""iot_gateway.services.readings_ingest: signed cumulative readings → burn / mint, every
reading kept with its outcome; forged, replayed, out-of-order, malformed, unknown meters;
counter gaps; batches from many meters; announcements after commit."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from accounts.services import energy_accounts_open
from iot_gateway.fleet import simulated_meter
from iot_gateway.models import MeterReading
from iot_gateway.services import meter_statuses_record, readings_ingest
from iot_gateway.simulator import SimulatedMeter
from ledger import services as ledger
from ledger.crypto import generate_private_key
from ledger.models import Account
from meters import live
from meters.services import device_register_simulated, device_retire
from tests.ledger_helpers import make_member

T0 = datetime(2026, 11, 21, 18, 0, tzinfo=UTC)


def meter_for(device) -> SimulatedMeter:
    return simulated_meter(device)


@pytest.fixture
def fleet(db):
    """A utility street light holding 5 kWh and a producer's solar meter, with unique ids."""
    suffix = uuid.uuid4().hex[:6].upper()
    utility = make_member(f"utility-{suffix}".lower(), "utility")
    ledger.asset_create(code="k", name="Energy", scale=3, display_unit="kWh", issuer=utility.organisation)
    producer = make_member(f"sun-{suffix}".lower(), "producer")
    energy_accounts_open(organisation=producer.organisation)
    light = device_register_simulated(organisation=utility.organisation, kind="street_light", name="Light",
                                      public_id=f"SL-{suffix}")
    panel = device_register_simulated(organisation=producer.organisation, kind="producer_meter", name="Panel",
                                      public_id=f"PM-{suffix}")
    utility.invoke("token", "mint", {"to": light.account_key, "asset": "k", "amount": 5_000})
    return {"utility": utility, "producer": producer, "light": light, "panel": panel,
            "light_meter": meter_for(light), "panel_meter": meter_for(panel)}


def balance(key: str) -> int:
    return Account.objects.get(key=key, asset_id="k").balance


def statuses(device) -> list[tuple[int | None, str]]:
    return list(MeterReading.objects.filter(device=device).order_by("id").values_list("counter", "status"))


def test_a_reading_burns_its_register_delta_and_is_kept(fleet):
    light, meter = fleet["light"], fleet["light_meter"]
    [outcome] = readings_ingest([meter.reading(counter=1, import_wh=1_200, export_wh=0, timestamp=T0)],
                                received_via="mqtt")
    assert (outcome.status, outcome.reason, outcome.result["burned"]) == ("applied", "", 1_200)
    assert balance(light.account_key) == 3_800
    row = MeterReading.objects.get(device=light)
    assert (row.counter, row.import_wh, row.export_wh, row.status, row.received_via, row.tx_hash) == (
        1, 1_200, 0, "applied", "mqtt", outcome.tx_hash)
    assert row.timestamp == T0


def test_producer_meter_mints_export_deltas(fleet):
    panel, meter = fleet["panel"], fleet["panel_meter"]
    producer_account = f"producer:{fleet['producer'].organisation.msp_id}"
    readings_ingest([meter.reading(counter=1, import_wh=0, export_wh=2_000, timestamp=T0),
                     meter.reading(counter=2, import_wh=0, export_wh=2_750, timestamp=T0 + timedelta(minutes=5))],
                    received_via="http")
    assert balance(producer_account) == 2_750
    assert statuses(panel) == [(1, "applied"), (2, "applied")]


def test_forged_readings_are_rejected_and_move_nothing(fleet):
    light, meter = fleet["light"], fleet["light_meter"]
    altered = meter.reading(counter=1, import_wh=100, export_wh=0, timestamp=T0) | {"import_wh": 4_000}
    impostor = SimulatedMeter(public_id=light.public_id, kind=light.kind, invoker=meter.invoker,
                              signer=generate_private_key())
    wrong_key = impostor.reading(counter=1, import_wh=4_000, export_wh=0, timestamp=T0)
    outcomes = readings_ingest([altered, wrong_key], received_via="mqtt")
    assert [o.status for o in outcomes] == ["rejected", "rejected"]
    assert all("signature" in o.reason for o in outcomes)
    assert balance(light.account_key) == 5_000
    assert statuses(light) == [(1, "rejected"), (1, "rejected")]
    # the genuine reading with that counter is still accepted afterwards
    [genuine] = readings_ingest([meter.reading(counter=1, import_wh=100, export_wh=0, timestamp=T0)],
                                received_via="mqtt")
    assert genuine.status == "applied" and balance(light.account_key) == 4_900


def test_the_same_reading_twice_burns_once(fleet):
    light, meter = fleet["light"], fleet["light_meter"]
    message = meter.reading(counter=7, import_wh=1_000, export_wh=0, timestamp=T0)
    first = readings_ingest([message], received_via="mqtt")[0]
    again = readings_ingest([message, dict(message)], received_via="mqtt")
    assert first.status == "applied"
    assert [o.status for o in again] == ["replayed", "replayed"]
    assert {o.tx_hash for o in again} == {first.tx_hash}
    assert balance(light.account_key) == 4_000
    assert statuses(light) == [(7, "applied"), (7, "replayed"), (7, "replayed")]


def test_an_older_counter_is_rejected_and_kept_with_the_reason(fleet):
    light, meter = fleet["light"], fleet["light_meter"]
    readings_ingest([meter.reading(counter=5, import_wh=1_000, export_wh=0, timestamp=T0)], received_via="mqtt")
    [older] = readings_ingest([meter.reading(counter=4, import_wh=800, export_wh=0, timestamp=T0 - timedelta(minutes=1))],
                              received_via="mqtt")
    assert older.status == "rejected" and "not after the last accepted 5" in older.reason
    [backwards] = readings_ingest([meter.reading(counter=6, import_wh=900, export_wh=0, timestamp=T0 + timedelta(1))],
                                  received_via="mqtt")
    assert backwards.status == "rejected" and "went backwards" in backwards.reason
    row = MeterReading.objects.get(device=light, counter=4)
    assert row.status == "rejected" and "replayed or out of order" in row.reason
    assert balance(light.account_key) == 4_000


def test_within_a_batch_each_meters_readings_apply_in_counter_order(fleet):
    light, meter = fleet["light"], fleet["light_meter"]
    second = meter.reading(counter=2, import_wh=300, export_wh=0, timestamp=T0 + timedelta(minutes=1))
    first = meter.reading(counter=1, import_wh=100, export_wh=0, timestamp=T0)
    outcomes = readings_ingest([second, first], received_via="mqtt")
    assert [(o.counter, o.status) for o in outcomes] == [(2, "applied"), (1, "applied")]
    assert [o.result["burned"] for o in outcomes] == [200, 100]
    assert balance(light.account_key) == 4_700


def test_lost_readings_lose_no_energy(fleet):
    light, meter = fleet["light"], fleet["light_meter"]
    sent = [meter.next_reading(T0 + timedelta(minutes=n)) for n in range(0, 100, 10)]  # 10 readings
    delivered = [sent[0], sent[3], sent[4], sent[9]]  # 1, 4, 5, 10 arrive; the rest are lost
    outcomes = readings_ingest(delivered, received_via="mqtt")
    assert all(o.status == "applied" for o in outcomes)
    assert sum(o.result["burned"] for o in outcomes) == sent[9]["import_wh"] > 0
    assert balance(light.account_key) == 5_000 - sent[9]["import_wh"]


@pytest.mark.parametrize("mutate, reason", [
    (lambda m: "not a reading", "JSON object"),
    (lambda m: {k: v for k, v in m.items() if k != "meter"}, "public id"),
    (lambda m: m | {"counter": -1}, "'counter'"),
    (lambda m: m | {"counter": "7"}, "'counter'"),
    (lambda m: m | {"import_wh": 1.5}, "'import_wh'"),
    (lambda m: m | {"export_wh": None}, "'export_wh'"),
    (lambda m: m | {"timestamp": "yesterday"}, "timestamp"),
    (lambda m: m | {"timestamp": "2026-11-21T18:00:00"}, "timezone"),
    (lambda m: m | {"signature": "not base64!"}, "base64"),
    (lambda m: m | {"signature": "AAAA"}, "64-byte"),
])
def test_malformed_readings_are_kept_with_the_reason_and_do_not_abort_the_batch(fleet, mutate, reason):
    light, meter = fleet["light"], fleet["light_meter"]
    bad = mutate(meter.reading(counter=1, import_wh=100, export_wh=0, timestamp=T0))
    good = meter.reading(counter=2, import_wh=250, export_wh=0, timestamp=T0 + timedelta(minutes=1))
    outcomes = readings_ingest([bad, good], received_via="mqtt")
    assert outcomes[0].status == "rejected" and reason in outcomes[0].reason
    assert outcomes[1].status == "applied" and balance(light.account_key) == 4_750
    rows = list(MeterReading.objects.order_by("id").values_list("status", "reason"))
    assert rows[0] == ("rejected", outcomes[0].reason) and rows[1] == ("applied", "")


def test_unknown_and_retired_meters_are_rejected(fleet):
    light, meter = fleet["light"], fleet["light_meter"]
    ghost = meter.reading(counter=1, import_wh=1, export_wh=0, timestamp=T0) | {"meter": "NO-SUCH-METER"}
    [unknown] = readings_ingest([ghost], received_via="http")
    assert unknown.status == "rejected" and "no device 'NO-SUCH-METER'" in unknown.reason
    assert MeterReading.objects.get(meter="NO-SUCH-METER").device is None
    device_retire(device=light)
    [retired] = readings_ingest([meter.reading(counter=1, import_wh=1, export_wh=0, timestamp=T0)], received_via="http")
    assert retired.status == "rejected" and "retired" in retired.reason
    assert balance(light.account_key) == 5_000


def test_a_batch_from_many_meters_and_one_announcement_per_device(fleet, django_capture_on_commit_callbacks):
    light, panel = fleet["light"], fleet["panel"]
    announced = []
    relays = []
    live.relay_publisher_register(publisher := lambda public_id, relay: relays.append((public_id, relay)))
    try:
        messages = []
        for n in range(1, 6):
            messages.append(fleet["light_meter"].reading(counter=n, import_wh=1_000 * n, export_wh=0,
                                                         timestamp=T0 + timedelta(minutes=n)))
            messages.append(fleet["panel_meter"].reading(counter=n, import_wh=0, export_wh=500 * n,
                                                         timestamp=T0 + timedelta(minutes=n)))
        original = live.devices_state_changed

        def spy(consumption_by_id):
            announced.extend(consumption_by_id.items())
            return original(consumption_by_id)

        live.devices_state_changed = spy
        try:
            with django_capture_on_commit_callbacks(execute=True):
                outcomes = readings_ingest(messages, received_via="mqtt")
        finally:
            live.devices_state_changed = original
    finally:
        live.relay_publisher_unregister(publisher)
    assert all(o.status == "applied" for o in outcomes)
    assert balance(light.account_key) == 0  # 5 kWh burned: the relay goes off
    by_device = dict(announced)
    assert sorted(by_device) == sorted([light.public_id, panel.public_id]) and len(announced) == 2
    assert by_device[light.public_id] | {} == {"counter": 5, "import_wh": 5_000, "export_wh": 0, "burned": 5_000,
                                               "shortfall": 0,
                                               "timestamp": (T0 + timedelta(minutes=5)).isoformat()}
    assert (light.public_id, "off") in relays


def test_meter_statuses_are_recorded_for_known_meters(fleet):
    light = fleet["light"]
    assert meter_statuses_record({light.public_id: True, "NO-SUCH": False}) == 1
    assert meter_statuses_record({light.public_id: False}) == 1
    assert light.mqtt_status.online is False


def test_a_device_changed_between_batches_is_read_afresh(fleet):
    """The gateway reuses what it built for an unchanged device row, never a stale one: a
    meter key replaced, or revoked, after a batch counts from the next batch on."""
    from ledger.crypto import public_bytes
    from ledger.models import Identity

    light, meter = fleet["light"], fleet["light_meter"]
    [first] = readings_ingest([meter.reading(counter=1, import_wh=100, export_wh=0, timestamp=T0)], received_via="mqtt")
    assert first.status == "applied"
    Identity.objects.filter(pk=light.identity_id).update(public_key=public_bytes(generate_private_key()))
    [forged] = readings_ingest([meter.reading(counter=2, import_wh=200, export_wh=0,
                                              timestamp=T0 + timedelta(minutes=1))], received_via="mqtt")
    assert forged.status == "rejected" and "signature" in forged.reason
    Identity.objects.filter(pk=light.identity_id).update(public_key=public_bytes(meter.signer),
                                                         revoked_at=datetime.now(UTC))
    [revoked] = readings_ingest([meter.reading(counter=3, import_wh=300, export_wh=0,
                                               timestamp=T0 + timedelta(minutes=2))], received_via="mqtt")
    assert revoked.status == "rejected" and "revoked" in revoked.reason
    assert balance(light.account_key) == 5_000 - 100
