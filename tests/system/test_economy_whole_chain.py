"""Seed 002 end to end on PostgreSQL, every coin through chaincode and the bank's webhooks:
a producer's meter mints 10 kWh → the bank reports the utility paid the producer → the bank
reports a resident paid the utility → the resident funds a street light for a window → the
light burns → the window ends → the unspent remainder returns. Then the chain verifies and
coins are conserved (minted − burned = sum of holdings)."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.db.models import Sum
from django.utils import timezone

from ledger import services as ledger
from ledger.models import Account, Transaction
from ledger.readings import reading_payload
from ledger.sealing import lease_acquire, seal_next_block
from meters.services import device_fund, device_register_simulated, simulated_signer, windows_settle_due
from payments.testing import build_market


def meter_reading(device, counter: int, *, import_wh: int = 0, export_wh: int = 0, at=None):
    """What the meter sends: cumulative registers, signed by its own key."""
    at = at or timezone.now()
    invoker = f"{device.organisation.msp_id}/{device.public_id}"
    payload = reading_payload(device_kind=device.kind, invoker=invoker, counter=counter, import_wh=import_wh,
                              export_wh=export_wh, timestamp=at)
    chaincode, function = ("generator", "mint") if device.kind == "producer_meter" else ("consumer", "burn")
    return ledger.invoke(chaincode=chaincode, function=function, invoker=device.identity,
                         args={"counter": counter, "import_wh": import_wh, "export_wh": export_wh,
                               "timestamp": at.isoformat()},
                         idempotency_key=f"reading:{counter}", signature=simulated_signer(device).sign(payload),
                         proposed_at=at)


def k(key: str) -> int:
    return Account.objects.get(key=key, asset_id="k").balance


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_the_whole_economy_on_postgresql():
    market = build_market(stock=0)  # the utility starts with no coins: everything is bought
    utility, producer, household = market.utility.msp_id, market.producer.msp_id, market.household.msp_id
    panel = device_register_simulated(organisation=market.producer, kind="producer_meter", name="Array",
                                      public_id="PM-CHAIN")
    light = device_register_simulated(organisation=market.utility, kind="street_light", name="Beach Road",
                                      public_id="SL-CHAIN")

    # 1. The producer's meter reports 10 kWh exported: 10 k minted to the producer.
    minted = meter_reading(panel, 1, export_wh=10_000)
    assert minted.ok and k(f"producer:{producer}") == 10_000

    # 2. The bank reports the utility paid the producer ₹50.00 at ₹5.00/kWh wholesale → 10 kWh.
    wholesale = market.deliver(market.notification(payer=utility, payee=producer, chaincode="wholesale-seller",
                                                   amount=5_000))
    assert wholesale.status_code == 200 and wholesale.json()["wh"] == 10_000
    assert k(f"producer:{producer}") == 0
    assert Account.objects.filter(key__startswith=f"utility:{utility}:").aggregate(s=Sum("balance"))["s"] == 10_000

    # 3. The bank reports the resident paid the utility ₹40.00 at ₹8.00/kWh retail → 5 kWh.
    retail = market.deliver(market.notification(payer=household, payee=utility, amount=4_000))
    assert retail.status_code == 200 and retail.json()["wh"] == 5_000
    assert k(f"household:{household}") == 5_000

    # 4. The resident funds the street light with 3 kWh for tonight's window.
    now = timezone.now()
    funded = device_fund(user=market.resident, public_id="SL-CHAIN", amount_wh=3_000, window_start=now,
                         window_end=now + timedelta(hours=1), idempotency_key="chain-fund")
    assert funded.relay == "on" and funded.balance_wh == 3_000
    assert k(f"household:{household}") == 2_000

    # 5. Inside the window the light burns 1.2 kWh (its meter's cumulative import register).
    burned = meter_reading(light, 1, import_wh=1_200, at=now + timedelta(minutes=30))
    assert burned.ok and burned.result["burned"] == 1_200 and burned.result["relay"] == "on"

    # 6. The window ends: the unspent 1.8 kWh go back to the resident, and the light goes dark.
    settled = windows_settle_due(now=now + timedelta(hours=1, minutes=1))
    assert [r.ok for r in settled] == [True]
    assert settled[0].result["returned"][0]["returned"] == 1_800 and settled[0].result["relay"] == "off"
    assert k("device:SL-CHAIN") == 0
    assert k(f"household:{household}") == 3_800

    # Coins are conserved: minted − burned = everything held outside issuance.
    holdings = Account.objects.filter(asset_id="k").exclude(kind="issuance").aggregate(s=Sum("balance"))["s"]
    assert holdings == 10_000 - 1_200 == -k("issuance")
    assert Transaction.objects.filter(status="rejected").count() == 0

    # Seal everything and replay the chain from genesis.
    assert lease_acquire(holder="chain")
    while seal_next_block(holder="chain", force=True):
        pass
    out = io.StringIO()
    call_command("ledger_verify", stdout=out)
    assert "ledger OK" in out.getvalue()
