"""50 concurrent fundings from one resident whose balance covers 20: exactly 20 succeed."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from ledger.models import Account, Transaction
from meters import services
from tests.meters_world import build_meter_world

ATTEMPTS, COVERED, EACH = 50, 20, 100


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("windowed", [False, True], ids=["plain", "window"])
def test_fifty_concurrent_fundings_of_which_twenty_are_covered(settings, windowed):
    mw = build_meter_world(settings)
    household = Account.objects.get(key="household:hh-charlie", asset_id="k")
    # Charlie's 1.901 kWh become exactly 20 fundings' worth.
    topped = mw.uma.invoke("token", "mint", {"to": household.key, "asset": "k", "amount": COVERED * EACH - household.balance})
    assert topped.ok, topped.reason
    now = timezone.now()
    window = {"window_start": now + timedelta(minutes=1), "window_end": now + timedelta(hours=2)} if windowed else {}
    barrier = threading.Barrier(ATTEMPTS)
    outcomes: list[str] = []
    lock = threading.Lock()

    def attempt(n: int) -> None:
        try:
            barrier.wait()
            try:
                services.device_fund(user=mw.charlie.user, public_id="SL-0001", amount_wh=EACH,
                                     idempotency_key=f"c-{n}", **window)
                outcome = "ok"
            except services.FundingRejected as exc:
                outcome = f"rejected: {exc}"
            except services.FundingError as exc:
                outcome = f"refused: {exc}"
            with lock:
                outcomes.append(outcome)
        finally:
            connection.close()

    threads = [threading.Thread(target=attempt, args=(n,)) for n in range(ATTEMPTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert len(outcomes) == ATTEMPTS
    assert outcomes.count("ok") == COVERED, outcomes
    assert all("insufficient funds" in o or "Not enough coins" in o for o in outcomes if o != "ok")
    assert Account.objects.get(key="household:hh-charlie", asset_id="k").balance == 0
    assert Account.objects.get(key="device:SL-0001", asset_id="k").balance == COVERED * EACH
    assert Transaction.objects.filter(chaincode="resident", function="fund", status="valid").count() == COVERED
