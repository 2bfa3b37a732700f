"""``invoke_batch`` gives every request exactly what ``invoke`` run one by one gives it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.db import transaction

from accounts.services import energy_accounts_open
from ledger import services as ledger
from ledger.batch import Request, invoke_batch
from ledger.models import Account, StateEntry
from ledger.readings import reading_payload
from ledger.sealing import lease_acquire, seal_next_block
from ledger.verify import verify_chain
from meters.services import device_register_simulated, simulated_signer
from tests.ledger_helpers import make_member

T0 = datetime(2026, 11, 20, 18, 0, tzinfo=UTC)


@pytest.fixture
def fleet(db):
    utility = make_member("utility", "utility")
    ledger.asset_create(code="k", name="Energy", scale=3, display_unit="kWh", issuer=utility.organisation)
    producer = make_member("sunfarm", "producer")
    energy_accounts_open(organisation=producer.organisation)
    lights = [device_register_simulated(organisation=utility.organisation, kind="street_light", name=f"L{n}",
                                        public_id=f"SL-B{n}") for n in range(4)]
    panel = device_register_simulated(organisation=producer.organisation, kind="producer_meter", name="P",
                                      public_id="PM-B")
    for n, light in enumerate(lights):
        if n != 3:  # the last light has no coins: its burns are shortfalls
            utility.invoke("token", "mint", {"to": f"device:{light.public_id}", "asset": "k", "amount": 3_000})
    return utility, lights, panel


def reading(device, counter, import_wh=0, export_wh=0, minutes=0, forged=False):
    at = T0 + timedelta(minutes=minutes)
    payload = reading_payload(device_kind=device.kind, invoker=f"{device.organisation.msp_id}/{device.public_id}",
                              counter=counter, import_wh=import_wh, export_wh=export_wh, timestamp=at)
    chaincode, function = ("generator", "mint") if device.kind == "producer_meter" else ("consumer", "burn")
    return Request(chaincode=chaincode, function=function, invoker=device.identity,
                   args={"counter": counter, "import_wh": import_wh, "export_wh": export_wh,
                         "timestamp": at.isoformat()},
                   idempotency_key=f"reading:{counter}", proposed_at=at,
                   signature=b"\x07" * 64 if forged else simulated_signer(device).sign(payload))


def scenario(utility, lights, panel) -> list[Request]:
    a, b, c, empty = lights
    return [
        reading(a, 1, 500), reading(b, 1, 200), reading(panel, 1, export_wh=4_000),
        reading(a, 2, 1_400, minutes=5),  # in the same batch as counter 1
        reading(a, 2, 1_400, minutes=5),  # the same message twice
        reading(b, 1, 200),  # ... and again
        reading(a, 1, 1_500, minutes=6),  # a used counter with other registers: idempotency conflict
        reading(a, 0, 1_500, minutes=6),  # an older, unused counter: refused
        reading(c, 3, 5_000),  # burns more than it holds: shortfall, relay off
        reading(empty, 1, 100),  # no coins at all
        reading(b, 2, 150, minutes=3),  # register went backwards: refused
        reading(c, 4, 5_000, forged=True),  # forged: recorded as rejected
        reading(c, 4, 5_000, forged=True),  # the same forgery again: answered with the first
        reading(panel, 2, export_wh=4_500, minutes=5),
        Request(chaincode="consumer", function="burn", invoker=a.identity, args={"amount": 1.5},
                idempotency_key="bad", signature=b"\x00" * 64),  # a float: malformed
        Request(chaincode="token", function="mint", invoker=utility.identity, signer=utility.key,
                args={"to": "device:SL-B3", "asset": "k", "amount": 50}, idempotency_key="top-up",
                proposed_at=T0),
        reading(empty, 2, 130, minutes=1),  # now it has 50 Wh for its 30 Wh
    ]


def sequential(requests: list[Request]):
    out = []
    for r in requests:
        try:
            out.append(ledger.invoke(chaincode=r.chaincode, function=r.function, args=r.args, invoker=r.invoker,
                                     idempotency_key=r.idempotency_key, signature=r.signature, signer=r.signer,
                                     proposed_at=r.proposed_at))
        except ledger.LedgerError as exc:
            out.append(exc)
    return out


def observe(outcomes):
    def one(o):
        if isinstance(o, Exception):
            return type(o).__name__, str(o)
        return o.tx_hash, o.status, o.reason, o.result, o.replayed
    balances = dict(Account.objects.values_list("key", "balance"))
    state = {(e.namespace, e.key): (e.value, e.version, e.is_deleted) for e in StateEntry.objects.all()}
    return [one(o) for o in outcomes], balances, state


@pytest.mark.postgres
def test_a_batch_matches_one_invocation_at_a_time(fleet):
    requests = scenario(*fleet)
    with transaction.atomic():
        one_by_one = observe(sequential(requests))
        transaction.set_rollback(True)
    batched = observe(invoke_batch(requests))
    assert batched[0] == one_by_one[0]  # same hashes, statuses, reasons, results, replays, errors
    assert batched[1] == one_by_one[1]  # same balances
    assert batched[2] == one_by_one[2]  # same world state
    statuses = [o[1] if len(o) == 5 else o[0] for o in batched[0]]
    # older counter, backwards register, the forgery (answered twice), and a malformed request
    assert statuses.count("rejected") == 4 and statuses.count("LedgerError") == 1
    assert lease_acquire(holder="b")
    while seal_next_block(holder="b", force=True):
        pass
    report = verify_chain()
    assert report.ok, [str(p) for p in report.problems]


@pytest.mark.postgres
def test_a_second_batch_replays_what_the_first_applied(fleet):
    requests = scenario(*fleet)
    first = invoke_batch(requests)
    again = invoke_batch(requests)
    for before, after in zip(first, again, strict=True):
        if isinstance(before, Exception):
            assert type(after) is type(before)
        else:
            assert after.replayed and after.tx_hash == before.tx_hash


def test_without_postgresql_it_invokes_one_by_one(fleet):
    requests = scenario(*fleet)[:3]
    outcomes = invoke_batch(requests)
    assert [o.ok for o in outcomes] == [True, True, True]
    assert Account.objects.get(key="producer:sunfarm").balance == 4_000


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_batches_add_to_the_unlocked_issuance_account(monkeypatch):
    """Two gateway workers' batches run at once: they lock their own devices but not the
    issuance account every burn posts to, so each must add its net change rather than write
    the balance it read. Nothing may fall back to one invocation at a time."""
    import threading

    from django.db import connection
    from django.db.models import Sum

    from ledger import batch

    utility = make_member("utility", "utility")
    ledger.asset_create(code="k", name="Energy", scale=3, display_unit="kWh", issuer=utility.organisation)
    lights = [device_register_simulated(organisation=utility.organisation, kind="street_light", name=f"C{n}",
                                        public_id=f"SL-C{n}") for n in range(8)]
    for light in lights:
        utility.invoke("token", "mint", {"to": f"device:{light.public_id}", "asset": "k", "amount": 100_000})
    monkeypatch.setattr(batch, "_one", lambda r: pytest.fail("a batch fell back to one invocation at a time"))
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def worker(mine: list) -> None:
        try:
            barrier.wait(timeout=30)
            for counter in range(1, 11):
                outcomes = invoke_batch([reading(light, counter, import_wh=100 * counter, minutes=counter)
                                         for light in mine])
                assert all(o.ok and not o.replayed for o in outcomes), outcomes
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(lights[n::2],)) for n in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    issuance = Account.objects.get(key="issuance", asset_id="k").balance
    assert issuance == -(8 * 100_000 - 8 * 1_000)  # minted minus burned, not one worker's view
    assert Account.objects.filter(asset_id="k").aggregate(total=Sum("balance"))["total"] == 0
    assert lease_acquire(holder="c")
    while seal_next_block(holder="c", force=True):
        pass
    report = verify_chain()
    assert report.ok, [str(p) for p in report.problems]
