"""The simulator pages' meter ticks: each is a signed cumulative reading through the real
meter path (consumer.burn / generator.mint verify the meter's signature), and the relay
turns off when the coins run out."""

from __future__ import annotations

import base64

import pytest
from django.test import Client

from accounts.services import energy_accounts_open
from frontend import simulators
from ledger import services as ledger
from ledger.crypto import verify_signature
from ledger.documents import proposal_bytes
from ledger.models import Account, Transaction
from meters import selectors, services
from meters.models import Device
from tests.ledger_helpers import make_member
from tests.meters_world import MeterWorld, build_meter_world

pytestmark = pytest.mark.django_db


@pytest.fixture
def mw(settings) -> MeterWorld:
    settings.GRIDCOIN_SIMULATORS_OPEN = False
    return build_meter_world(settings)


@pytest.fixture
def panel(mw) -> Device:
    producer = make_member("sunfarm", "producer")
    energy_accounts_open(organisation=producer.organisation)
    return services.device_register_simulated(organisation=producer.organisation, kind="producer_meter",
                                              name="Panel", public_id="PM-0001")


def client_of(mw, name: str) -> Client:
    client = Client()
    if name != "anonymous":
        client.force_login(mw.persona(name).user)
    return client


def fund(mw, public_id: str, wh: int, key: str = "f1") -> None:
    services.device_fund(user=mw.alice.user, public_id=public_id, amount_wh=wh, idempotency_key=key)


def balance(key: str) -> int:
    return Account.objects.get(key=key, asset_id="k").balance


def test_a_tick_is_a_reading_signed_by_the_meter_key(mw):
    fund(mw, "HM-ALICE", 500)
    tick = simulators.meter_tick(device=mw.meter, wh=120)
    assert tick.ok and (tick.counter, tick.import_wh, tick.export_wh) == (1, 120, 0)
    tx = Transaction.objects.get(invoker=mw.meter.identity, chaincode="consumer", function="burn")
    assert tx.status == "valid" and tx.idempotency_key == "reading:1"
    assert tx.args == {"counter": 1, "import_wh": 120, "export_wh": 0, "timestamp": tx.args["timestamp"]}
    # the ledger checked the meter's own Ed25519 signature over the proposal
    payload = proposal_bytes(chaincode="consumer", function="burn", args=tx.args,
                             invoker=f"{mw.alice.organisation.msp_id}/HM-ALICE", idempotency_key="reading:1",
                             proposed_at=tx.proposed_at)
    assert verify_signature(bytes(mw.meter.identity.public_key), base64.b64decode(tx.signature), payload)
    assert balance("device:HM-ALICE") == 380


def test_ticks_carry_cumulative_registers_and_the_relay_turns_off_at_zero(mw):
    fund(mw, "SL-0001", 100)
    client = client_of(mw, "uma")
    url = "/simulators/meters/SL-0001/tick"
    first = client.post(url, {"wh": "60"}).json()
    assert (first["ok"], first["counter"], first["import_wh"], first["relay"], first["balance_wh"]) == (
        True, 1, 60, "on", 40)
    second = client.post(url, {"wh": "60"}).json()
    assert (second["counter"], second["import_wh"], second["relay"], second["balance_wh"]) == (2, 120, "off", 0)
    assert second["result"].get("shortfall", 20) == 20
    assert selectors.device_state(mw.light).relay == "off"
    # funded again: on, and the meter carries on from its register
    fund(mw, "SL-0001", 50, key="f2")
    third = client.post(url).json()
    assert (third["counter"], third["import_wh"]) == (3, 120 + simulators.CONSUMER_TICK_WH)
    assert third["relay"] == "on" and third["balance_wh"] == 50 - simulators.CONSUMER_TICK_WH


def test_producer_tick_mints_to_the_producer(mw, panel):
    first = simulators.meter_tick(device=panel)
    second = simulators.meter_tick(device=panel, wh=750)
    assert first.ok and second.ok
    assert (second.counter, second.export_wh) == (2, 250 + 750)
    assert balance("producer:sunfarm") == 1000
    assert simulators.last_registers(panel) == {"counter": 2, "import_wh": 0, "export_wh": 1000}
    tx = Transaction.objects.filter(invoker=panel.identity, chaincode="generator", function="mint").last()
    assert tx.status == "valid" and tx.result["wh"] == 750


def test_a_forged_reading_moves_nothing(mw):
    """Only the meter's key can burn: the same reading under another key is refused."""
    from datetime import UTC, datetime

    from ledger.crypto import generate_private_key
    from ledger.readings import reading_payload

    fund(mw, "HM-ALICE", 500)
    at = datetime.now(UTC)
    payload = reading_payload(device_kind="household_meter", invoker=f"{mw.alice.organisation.msp_id}/HM-ALICE",
                              counter=1, import_wh=400, export_wh=0, timestamp=at)
    forged = generate_private_key().sign(payload)
    result = ledger.invoke(chaincode="consumer", function="burn", invoker=mw.meter.identity,
                           args={"counter": 1, "import_wh": 400, "export_wh": 0, "timestamp": at.isoformat()},
                           idempotency_key="reading:1", signature=forged, proposed_at=at)
    assert not result.ok and balance("device:HM-ALICE") == 500


@pytest.mark.parametrize("name, status", [("anonymous", 401), ("charlie", 403), ("bob", 200), ("alice", 200),
                                          ("uma", 200)])
def test_who_may_tick_a_household_meter(mw, name, status):
    fund(mw, "HM-ALICE", 500)
    response = client_of(mw, name).post("/simulators/meters/HM-ALICE/tick")
    assert response.status_code == status


def test_in_the_open_demo_any_signed_in_user_may_tick(mw, settings):
    settings.GRIDCOIN_SIMULATORS_OPEN = True
    fund(mw, "HM-ALICE", 500)
    assert client_of(mw, "charlie").post("/simulators/meters/HM-ALICE/tick").status_code == 200
    assert client_of(mw, "anonymous").post("/simulators/meters/HM-ALICE/tick").status_code == 401


def test_tick_refuses_bad_amounts_get_unknown_and_retired(mw):
    client = client_of(mw, "uma")
    assert client.get("/simulators/meters/SL-0001/tick").status_code == 405
    assert client.post("/simulators/meters/SL-0001/tick", {"wh": "-5"}).status_code == 400
    assert client.post("/simulators/meters/SL-0001/tick", {"wh": "999999"}).status_code == 400
    assert client.post("/simulators/meters/NOPE-1/tick").status_code == 404
    assert client.post("/simulators/meters/SL-0099/tick").status_code == 400
    assert not Transaction.objects.filter(chaincode="consumer").exists()


def test_a_real_meter_cannot_be_played(mw):
    mw.light.simulated_key.delete()
    assert client_of(mw, "uma").post("/simulators/meters/SL-0001/tick").status_code == 404


# --- pages ------------------------------------------------------------------------------------

@pytest.mark.parametrize("name, status", [("charlie", 403), ("alice", 200), ("uma", 200)])
def test_consumer_simulator_page(mw, name, status):
    response = client_of(mw, name).get("/simulators/consumer/HM-ALICE/")
    assert response.status_code == status
    if status == 200:
        html = response.content.decode()
        assert 'data-simulator="consumer"' in html and "/d/HM-ALICE/qr.svg" in html


def test_consumer_simulator_page_needs_a_login_and_a_consumer(mw, panel):
    response = Client().get("/simulators/consumer/HM-ALICE/")
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]
    assert client_of(mw, "uma").get("/simulators/consumer/PM-0001/").status_code == 404
    assert client_of(mw, "uma").get("/simulators/consumer/NOPE/").status_code == 404


def test_producer_simulator_page_shows_minted_totals(mw, panel):
    simulators.meter_tick(device=panel, wh=1500)
    assert client_of(mw, "charlie").get("/simulators/producer/").status_code == 403
    response = client_of(mw, "uma").get("/simulators/producer/")
    assert response.status_code == 200
    html = response.content.decode()
    assert 'data-simulator="producer"' in html and "1.500" in html


# --- links to the consumer simulator ----------------------------------------------------------

CONSUMER_SIM = 'href="/simulators/consumer/HM-ALICE/"'


@pytest.mark.parametrize("name, linked", [("anonymous", False), ("charlie", False), ("alice", True), ("bob", True),
                                          ("uma", True)])
def test_the_device_page_links_its_simulator_for_the_owner_and_the_utility(mw, name, linked):
    html = client_of(mw, name).get("/d/HM-ALICE").content.decode()
    assert (CONSUMER_SIM in html) is linked


def test_no_simulator_link_for_a_real_meter(mw):
    mw.meter.simulated_key.delete()
    assert CONSUMER_SIM not in client_of(mw, "alice").get("/d/HM-ALICE").content.decode()


def test_the_producer_simulator_links_the_consumer_simulators(mw, panel):
    html = client_of(mw, "uma").get("/simulators/producer/").content.decode()
    assert CONSUMER_SIM in html and 'href="/simulators/consumer/SL-0001/"' in html
    assert 'href="/simulators/consumer/PM-0001/"' not in html  # the producer itself
    assert 'href="/simulators/consumer/SL-0099/"' not in html  # retired


@pytest.mark.parametrize("path, section", [("/wallet/", "Wallet"), ("/devices/", "Devices"), ("/d/HM-ALICE", "Devices"),
                                           ("/prices/", "Prices"), ("/scan/", "Scan"),
                                           ("/simulators/consumer/HM-ALICE/", "Simulate")])
def test_the_current_tab_is_marked(mw, path, section):
    import re

    html = client_of(mw, "alice").get(path).content.decode()
    tabbar = html.split('class="tabbar"', 1)[1].split("</nav>", 1)[0]
    current = re.findall(r'<a href="[^"]*" aria-current="page">([^<]*)</a>', tabbar)
    assert current == [section]


def test_in_the_open_demo_strangers_are_not_sent_to_the_simulator(mw, settings):
    settings.GRIDCOIN_SIMULATORS_OPEN = True
    assert CONSUMER_SIM not in client_of(mw, "charlie").get("/d/HM-ALICE").content.decode()
    assert CONSUMER_SIM in client_of(mw, "alice").get("/d/HM-ALICE").content.decode()
