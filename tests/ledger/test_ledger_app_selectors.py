"""The ledger's words for apps (``ledger.keys``) and the selectors apps read the energy
chaincodes' accounts and world state through (``ledger.selectors``): the keys are the ones the
chaincodes write, and each selector answers from what the chaincodes did."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.services import energy_accounts_open
from iot_gateway.fleet import simulated_meter
from iot_gateway.services import readings_ingest
from ledger import keys, selectors
from ledger.db import sql_in
from ledger.models import Account, StateEntry
from meters import services as meter_services
from tests.ledger_helpers import make_member
from tests.meters_world import MeterWorld, build_meter_world

# --- keys (pure) ------------------------------------------------------------------------------


def test_account_keys_name_each_holder():
    assert keys.producer_account("sunfarm") == "producer:sunfarm"
    assert keys.utility_account("kseb", 3) == "utility:kseb:3"
    assert keys.household_account("hh-alice") == "household:hh-alice"
    assert keys.device_account("SL-0001") == "device:SL-0001"
    assert keys.credit_account("hh-alice", "kseb") == "credit:hh-alice@kseb"


def test_a_meter_moves_its_owners_account_if_it_produces_else_its_own():
    assert keys.meter_account(kind="producer_meter", public_id="PM-1", msp_id="sunfarm") == "producer:sunfarm"
    assert keys.meter_account(kind="street_light", public_id="SL-1", msp_id="kseb") == "device:SL-1"
    assert keys.registers_namespace("producer_meter") == "generator"
    assert keys.registers_namespace("household_meter") == "devices"


def test_state_keys_round_trip_and_refuse_other_keys():
    assert keys.device_of_windows_key(keys.windows_key("SL-1")) == "SL-1"
    assert keys.device_of_registers_key(keys.registers_key("HM-1")) == "HM-1"
    assert keys.device_of_windows_key(keys.registers_key("SL-1")) is None
    assert keys.device_of_registers_key("kseb/retail/INR") is None
    assert keys.price_key_parts(keys.price_key("kseb", "retail", "INR")) == ("kseb", "retail", "INR")
    assert keys.price_key_parts("registers/SL-1") is None


# --- selectors over what the chaincodes wrote ---------------------------------------------------

@pytest.fixture
def mw(settings) -> MeterWorld:
    return build_meter_world(settings)


@pytest.fixture
def panel(mw):
    producer = make_member("sunfarm", "producer")
    energy_accounts_open(organisation=producer.organisation)
    return meter_services.device_register_simulated(organisation=producer.organisation, kind="producer_meter",
                                                    name="Panel", public_id="PM-0001")


def fund_window(mw, wh: int) -> dict:
    start = timezone.now()
    meter_services.device_fund(user=mw.alice.user, public_id="SL-0001", amount_wh=wh, idempotency_key="w",
                               window_start=start, window_end=start + timedelta(hours=2))
    return StateEntry.objects.get(namespace="devices", key="windows/SL-0001").value


@pytest.mark.django_db
def test_balances_by_key_in_an_asset(mw):
    found = selectors.balances(["household:hh-alice", "device:SL-0001", "device:NOPE"])
    assert found == {"household:hh-alice": 3_799, "device:SL-0001": 0}
    assert selectors.balances(["household:hh-alice"], asset="INR") == {}
    assert selectors.balances([]) == {}


@pytest.mark.django_db
def test_device_windows_are_the_ones_the_resident_chaincode_keeps(mw):
    windows = fund_window(mw, 500)
    assert selectors.device_windows(["SL-0001", "HM-ALICE"]) == {"SL-0001": windows}
    assert selectors.device_windows() == {"SL-0001": windows}
    assert selectors.device_windows([]) == {}
    assert selectors.world_state("devices", [keys.windows_key("SL-0001")]) == {"windows/SL-0001": windows}
    assert selectors.world_state("generator", [keys.windows_key("SL-0001")]) == {}


@pytest.mark.django_db
def test_meter_registers_come_from_each_meters_own_namespace(mw, panel):
    fund_window(mw, 500)
    now = timezone.now()
    light, producer = simulated_meter(mw.light), simulated_meter(panel)
    light.add_energy(import_wh=40)
    producer.add_energy(export_wh=700)
    outcomes = readings_ingest([light.next_reading(now), producer.next_reading(now)], received_via="http")
    assert [o.status for o in outcomes] == ["applied", "applied"]
    found = selectors.meter_registers([("SL-0001", "street_light"), ("PM-0001", "producer_meter"),
                                       ("HM-ALICE", "household_meter")])
    assert {p: (r["counter"], r["import_wh"], r["export_wh"]) for p, r in found.items()} == {
        "SL-0001": (1, 40, 0), "PM-0001": (1, 0, 700)}
    # asked in the wrong namespace, a producer's registers are not found
    assert selectors.meter_registers([("PM-0001", "street_light")]) == {}


@pytest.mark.django_db
def test_price_schedules_as_the_pricing_chaincode_keeps_them(mw):
    from wallet.services import price_set

    price_set(user=mw.uma.user, kind="retail", currency="INR", price=3_000, effective_from=timezone.now(),
              idempotency_key="p")
    key = keys.price_key(mw.uma.organisation.msp_id, "retail", "INR")
    (entry,) = selectors.price_schedule_entries([key])[key]
    assert entry["price"] == 3_000
    assert list(selectors.price_schedule_entries()) == [key]


# --- one statement over an app's own device query ------------------------------------------------

DEVICES = "SELECT d.id, d.public_id, d.kind, d.state, d.identity_id FROM meters_device d WHERE {where}"


@pytest.mark.django_db
def test_devices_with_identities_carry_the_apps_columns_and_the_identity(mw):
    where, params = sql_in("d.public_id", ["SL-0001", "HM-ALICE", "NOPE"])
    rows = [(row[:5], selectors.IdentityColumns(*row[5:]))
            for row in selectors.devices_with_identities(DEVICES.format(where=where), params)]
    identities = {row[1]: columns.identity() for row, columns in rows}
    assert set(identities) == {"SL-0001", "HM-ALICE"}
    alice_meter = identities["HM-ALICE"]
    assert alice_meter == mw.meter.identity and alice_meter.qualified_name == f"{mw.alice.organisation.msp_id}/HM-ALICE"
    assert bytes(alice_meter.public_key) == bytes(mw.meter.identity.public_key) and alice_meter.revoked_at is None
    (row, columns) = next(r for r in rows if r[0][1] == "SL-0001")
    assert row == (mw.light.pk, "SL-0001", "street_light", "active", mw.light.identity_id)
    assert (columns.msp_id, columns.org_type) == (mw.uma.organisation.msp_id, "utility")


@pytest.mark.django_db
def test_a_revoked_identity_changes_its_columns(mw):
    where, params = sql_in("d.public_id", ["HM-ALICE"])
    (before,) = selectors.devices_with_identities(DEVICES.format(where=where), params)
    identity = mw.meter.identity
    identity.revoked_at = timezone.now()  # as the admin does: there is no revocation service yet
    identity.save(update_fields=["revoked_at"])
    (after,) = selectors.devices_with_identities(DEVICES.format(where=where), params)
    before_identity, after_identity = (selectors.IdentityColumns(*row[5:]) for row in (before, after))
    assert before != after and before_identity.revoked_at is None
    assert after_identity.identity().revoked_at is not None and before[:5] == after[:5]


@pytest.mark.django_db
def test_devices_balance_and_windows_follow_the_meter_account(mw, panel):
    windows = fund_window(mw, 500)
    mw.uma.invoke("token", "mint", {"to": "producer:sunfarm", "asset": "k", "amount": 1_234})
    Account.objects.filter(key="device:HM-ALICE").delete()  # a device without an account holds 0
    where, params = sql_in("d.public_id", ["SL-0001", "PM-0001", "HM-ALICE"])
    rows = selectors.devices_balance_and_windows(
        f"SELECT d.public_id, d.kind, d.organisation_id FROM meters_device d WHERE {where}", params)
    assert sorted(rows) == [("HM-ALICE", 0, []), ("PM-0001", 1_234, []), ("SL-0001", 500, windows)]
