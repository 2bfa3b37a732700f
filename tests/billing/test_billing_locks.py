"""What a bill locks: the records every station's slot reads (configuration, tariffs, station,
frequency) are locked for reading, so two slots are billed at once, while a change of any of them
waits for the bills that rest on it. A contract that reads a key for reading and then writes it
takes the writer's lock and versions the write from the current entry."""

from __future__ import annotations

import uuid

import pytest
from django.db import transaction

from ledger.contracts import Context, Contract, registry
from ledger.models import StateEntry, StateWrite
from tests.ledger_helpers import elsewhere, make_member

from .world import STATION, T0, build_billing_world, slot

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_two_station_slots_are_billed_at_once_and_what_they_rest_on_waits_for_them():
    bw = build_billing_world()
    bw.freq(T0, 5000)
    bw.unit(T0, 1000)
    bw.unit(T0, -400, society="hh-bob")
    bw.unit(T0, 700, society="hh-carol", station="st-south")
    with transaction.atomic():  # the north station's bill, not yet committed
        assert bw.ok("distributor", "initStationBill", {"stationId": STATION} | slot(T0))["billed"] == 2
        done, south = elsewhere(lambda: bw.invoke(bw.rival, "initStationBill", {"stationId": "st-south"} | slot(T0)))
        assert done and south.ok and south.result["billed"] == 1
        assert elsewhere(lambda: bw.invoke("grid", "initFreq", slot(T0) | {"avgFreq": 4990}))[0] is False
        assert elsewhere(lambda: bw.invoke("utility", "configure", {"dues_threshold": 1}))[0] is False
        assert elsewhere(lambda: bw.invoke("distributor", "registerStation",
                                           {"stationId": STATION, "societies": ["hh-alice"]}))[0] is False
    # Committed: the frequency can change now (and the next bill of the slot prices by it).
    assert elsewhere(lambda: bw.invoke("grid", "initFreq", slot(T0) | {"avgFreq": 4990}))[1].ok


@pytest.fixture
def counter_contract():
    """A chaincode that reads a counter for reading only, then writes it after all."""
    contract = Contract(f"test-counter-{uuid.uuid4().hex[:12]}", "registered by test_billing_locks")

    @contract.function()
    def bump(ctx: Context) -> dict:
        value = ctx.get_states(["counter"], shared=True)["counter"] or {"n": 0}
        ctx.put_state("counter", {"n": value["n"] + 1})
        return {"n": value["n"] + 1}

    @contract.function()
    def look(ctx: Context) -> dict:
        return ctx.get_states(["counter"], shared=True)["counter"] or {"n": 0}

    registry.register(contract)
    yield contract
    registry._contracts.pop(contract.name, None)


def test_a_key_read_for_reading_and_then_written_takes_the_writers_lock(counter_contract):
    member = make_member("counter-one", "utility")
    name = counter_contract.name
    assert member.invoke(name, "bump", {}).result == {"n": 1}
    with transaction.atomic():
        assert member.invoke(name, "bump", {}).result == {"n": 2}
        # Another reader of the key waits too: this invocation writes it.
        assert elsewhere(lambda: member.invoke(name, "bump", {}))[0] is False
    with transaction.atomic():
        assert member.invoke(name, "look", {}).result == {"n": 2}
        assert elsewhere(lambda: member.invoke(name, "look", {}))[1].result == {"n": 2}  # readers share
        # A writer waits for the reader, even one that read the key for reading only itself.
        assert elsewhere(lambda: member.invoke(name, "bump", {}))[0] is False
    assert member.invoke(name, "bump", {}).result == {"n": 3}
    entry = StateEntry.objects.get(namespace=name, key="counter")
    assert entry.value == {"n": 3} and entry.version == 3
    assert [w.version for w in StateWrite.objects.filter(namespace=name, key="counter").order_by("id")] == [1, 2, 3]
