"""Cumulative signed readings: the meter's signature is the ledger proposal's signature."""

from datetime import UTC, datetime, timedelta

import pytest

from accounts.services import energy_accounts_open
from ledger import services as ledger
from ledger.models import Account, Transaction
from ledger.readings import ReadingError, parse_reading, reading_payload
from meters.services import device_register_simulated, simulated_signer
from tests.ledger_helpers import make_member

T0 = datetime(2026, 11, 21, 18, 0, tzinfo=UTC)


@pytest.fixture
def meters(db):
    utility = make_member("utility", "utility")
    ledger.asset_create(code="k", name="Energy", scale=3, display_unit="kWh", issuer=utility.organisation)
    producer = make_member("sunfarm", "producer")
    energy_accounts_open(organisation=producer.organisation)
    light = device_register_simulated(organisation=utility.organisation, kind="street_light", name="Light",
                                      public_id="SL-9")
    panel = device_register_simulated(organisation=producer.organisation, kind="producer_meter", name="Panel",
                                      public_id="PM-9")
    utility.invoke("token", "mint", {"to": "device:SL-9", "asset": "k", "amount": 5_000})
    return light, panel


def send(device, counter, import_wh, export_wh, at):
    invoker = f"{device.organisation.msp_id}/{device.public_id}"
    payload = reading_payload(device_kind=device.kind, invoker=invoker, counter=counter, import_wh=import_wh,
                              export_wh=export_wh, timestamp=at)
    signature = simulated_signer(device).sign(payload)
    chaincode, function = ("generator", "mint") if device.kind == "producer_meter" else ("consumer", "burn")
    return ledger.invoke(chaincode=chaincode, function=function, invoker=device.identity,
                         args={"counter": counter, "import_wh": import_wh, "export_wh": export_wh,
                               "timestamp": at.isoformat()},
                         idempotency_key=f"reading:{counter}", signature=signature, proposed_at=at)


def balance(key):
    return Account.objects.get(key=key, asset_id="k").balance


def test_consumer_burns_register_deltas_and_a_lost_reading_loses_nothing(meters):
    light, _ = meters
    assert send(light, 1, 1_000, 0, T0).result["burned"] == 1_000
    # reading 2 is lost; reading 3 covers it
    third = send(light, 3, 2_500, 0, T0 + timedelta(minutes=10))
    assert third.ok and third.result["burned"] == 1_500
    assert balance("device:SL-9") == 2_500


def test_replayed_older_and_backwards_readings_are_refused_and_move_nothing(meters):
    light, _ = meters
    first = send(light, 5, 1_000, 0, T0)
    again = send(light, 5, 1_000, 0, T0)  # the same message delivered twice
    assert again.replayed and again.tx_hash == first.tx_hash
    older = send(light, 4, 1_200, 0, T0 + timedelta(minutes=1))
    assert not older.ok and "not after the last accepted 5" in older.reason
    backwards = send(light, 6, 900, 0, T0 + timedelta(minutes=2))
    assert not backwards.ok and "went backwards" in backwards.reason
    assert balance("device:SL-9") == 4_000


def test_a_forged_reading_is_recorded_as_rejected(meters):
    light, _ = meters
    at = T0
    result = ledger.invoke(chaincode="consumer", function="burn", invoker=light.identity,
                           args={"counter": 1, "import_wh": 4_000, "export_wh": 0, "timestamp": at.isoformat()},
                           idempotency_key="reading:1", signature=b"\x01" * 64, proposed_at=at)
    assert not result.ok and "signature" in result.reason
    assert balance("device:SL-9") == 5_000
    assert Transaction.objects.filter(pk=result.tx_id, idempotency_key=None).exists()


def test_producer_meter_mints_its_export_register(meters):
    _, panel = meters
    assert send(panel, 1, 0, 2_000, T0).result["wh"] == 2_000
    assert send(panel, 2, 0, 2_750, T0 + timedelta(minutes=5)).result["wh"] == 750
    assert balance("producer:sunfarm") == 2_750


@pytest.mark.parametrize("message, reason", [
    ([], "JSON object"),
    ({"meter": "", "counter": 1}, "public id"),
    ({"meter": "SL-9", "counter": -1, "import_wh": 0, "export_wh": 0}, "'counter'"),
    ({"meter": "SL-9", "counter": 1, "import_wh": 1.5, "export_wh": 0}, "'import_wh'"),
    ({"meter": "SL-9", "counter": 1, "import_wh": 1, "export_wh": 0, "timestamp": "yesterday"}, "timestamp"),
    ({"meter": "SL-9", "counter": 1, "import_wh": 1, "export_wh": 0, "timestamp": "2026-11-21T18:00:00"},
     "timezone"),
    ({"meter": "SL-9", "counter": 1, "import_wh": 1, "export_wh": 0, "timestamp": "2026-11-21T18:00:00+00:00",
      "signature": "not base64!"}, "base64"),
    ({"meter": "SL-9", "counter": 1, "import_wh": 1, "export_wh": 0, "timestamp": "2026-11-21T18:00:00+00:00",
      "signature": "AAAA"}, "64-byte"),
])
def test_malformed_readings_are_refused_with_a_reason(message, reason):
    with pytest.raises(ReadingError, match=reason):
        parse_reading(message)


def test_the_same_forged_reading_twice_is_answered_with_the_first_record(meters):
    light, _ = meters

    def forge():
        return ledger.invoke(chaincode="consumer", function="burn", invoker=light.identity,
                             args={"counter": 9, "import_wh": 4_000, "export_wh": 0, "timestamp": T0.isoformat()},
                             idempotency_key="reading:9", signature=b"\x02" * 64, proposed_at=T0)

    first, second = forge(), forge()
    assert not first.ok and second.replayed and second.tx_hash == first.tx_hash
    assert Transaction.objects.filter(tx_hash=first.tx_hash).count() == 1
