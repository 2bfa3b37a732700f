"""Device registration, simulated meter keys, device state from ledger data."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from ledger import services as ledger
from ledger.crypto import generate_private_key, public_bytes
from ledger.models import Account, Identity, OrgType, StateEntry
from meters import selectors, services
from meters.models import Device, DeviceKind, EnrolmentState
from tests.meters_world import MeterWorld, build_meter_world

pytestmark = pytest.mark.django_db


@pytest.fixture
def mw(settings) -> MeterWorld:
    return build_meter_world(settings)


def test_register_creates_identity_and_device_account(mw):
    key = generate_private_key()
    device = services.device_register(organisation=mw.uma.organisation, kind=DeviceKind.STADIUM_LIGHTS,
                                      name="Stadium", public_id="ST-0001", public_key=public_bytes(key),
                                      latitude="9.1", longitude="76.2")
    identity = Identity.objects.get(pk=device.identity_id)
    assert identity.kind == "device" and identity.name == "ST-0001"
    assert bytes(identity.public_key) == public_bytes(key)
    assert identity.organisation == mw.uma.organisation
    account = Account.objects.get(key="device:ST-0001", asset_id="k")
    assert account.kind == "device" and account.organisation == mw.uma.organisation and account.balance == 0
    assert device.is_public and device.state == EnrolmentState.ACTIVE and not hasattr(device, "simulated_key")


def test_household_meter_is_not_public(mw):
    assert not mw.meter.is_public and mw.light.is_public
    assert list(selectors.public_devices()) == [mw.light]  # retired and household devices are not listed


def test_duplicate_public_id_is_refused(mw):
    with pytest.raises(services.DeviceError, match="already registered"):
        services.device_register_simulated(organisation=mw.uma.organisation, kind=DeviceKind.STREET_LIGHT,
                                           name="Twin", public_id="SL-0001")
    assert Device.objects.filter(public_id="SL-0001").count() == 1


def test_producer_meter_opens_the_producers_account_and_mints(mw):
    producer = ledger.organisation_create(msp_id="sunfarm", name="SunFarm", org_type=OrgType.PRODUCER)
    device = services.device_register_simulated(organisation=producer, kind=DeviceKind.PRODUCER_METER,
                                                name="Array", public_id="PM-0001")
    assert Account.objects.filter(key="producer:sunfarm", asset_id="k").exists()
    assert not Account.objects.filter(key="device:PM-0001").exists()
    minted = ledger.invoke(chaincode="generator", function="mint", args={"amount": 2500},
                           invoker=device.identity, idempotency_key="m1", signer=services.simulated_signer(device))
    assert minted.ok, minted.reason
    assert selectors.device_state(device).balance == 2500


def test_producer_meter_needs_a_producer(mw):
    with pytest.raises(services.DeviceError, match="producer organisation"):
        services.device_register_simulated(organisation=mw.uma.organisation, kind=DeviceKind.PRODUCER_METER,
                                           name="Array", public_id="PM-0002")
    assert not Device.objects.filter(public_id="PM-0002").exists()


def test_simulated_key_is_sealed_and_signs_for_the_device(mw, settings):
    stored = mw.light.simulated_key
    assert bytes(stored.ciphertext) != services.simulated_signer(mw.light).private_bytes_raw()
    assert public_bytes(services.simulated_signer(mw.light)) == bytes(mw.light.identity.public_key)
    settings.GRIDCOIN_KEK = "A" * 43 + "="  # another key-encryption key cannot open it
    with pytest.raises(ValueError):
        services.simulated_signer(mw.light)


def test_device_state_follows_ledger_data(mw):
    now = timezone.now()
    assert selectors.device_state(mw.light, now).relay == "off"
    start, end = now + timedelta(hours=1), now + timedelta(hours=3)
    services.device_fund(user=mw.alice.user, public_id="SL-0001", amount_wh=700, window_start=start, window_end=end,
                         idempotency_key="w")
    state = selectors.device_state(mw.light, now)
    assert (state.balance, state.reserved, state.spendable, state.relay) == (700, 700, 0, "off")
    inside = selectors.device_state(mw.light, start + timedelta(minutes=1))
    assert (inside.spendable, inside.relay) == (700, "on")
    assert inside.windows[0].active and inside.windows[0].remaining == 700
    services.device_fund(user=mw.alice.user, public_id="SL-0001", amount_wh=300, idempotency_key="free")
    state = selectors.device_state(mw.light, now)
    assert (state.balance, state.reserved, state.spendable, state.relay) == (1000, 700, 300, "on")
    entry = StateEntry.objects.get(namespace="devices", key="windows/SL-0001")
    assert state.raw_windows == entry.value


def test_consumer_burn_with_the_meters_key_turns_the_relay_off(mw):
    services.device_fund(user=mw.alice.user, public_id="HM-ALICE", amount_wh=200, idempotency_key="hm")
    burned = ledger.invoke(chaincode="consumer", function="burn", args={"amount": 250}, invoker=mw.meter.identity,
                           idempotency_key="b1", signer=services.simulated_signer(mw.meter))
    assert burned.ok and burned.result["burned"] == 200 and burned.result["shortfall"] == 50
    assert selectors.device_state(mw.meter).relay == "off"
