"""A storm of bank deliveries: genuine events, redeliveries and forgeries, shuffled and (on
PostgreSQL) sent concurrently. Each genuine event is applied exactly once, every forgery is
refused, every delivery is audited, and balances equal the model's sum."""

from __future__ import annotations

import queue
import random
import threading
import time
from collections import Counter
from dataclasses import dataclass

import pytest
from django.db import connection
from django.test import Client

from ledger.chaincodes.energy_math import fiat_to_wh
from ledger.models import Transaction, TxStatus
from payments.models import ProcessedEvent, WebhookEvent
from payments.testing import RETAIL_PRICE, build_market, post_bank_webhook


@dataclass
class Delivery:
    kind: str  # genuine, duplicate, forged
    event_id: str
    raw: bytes
    header: str


def build_storm(market, rng: random.Random, *, genuine: int, duplicates: int, forged: int, households: int):
    homes = [market.household] + [market.add_household(f"hh-storm-{n}") for n in range(households - 1)]
    events = []
    for n in range(genuine):
        home = rng.choice(homes)
        events.append(market.notification(id=f"storm-{n}", payer=home.msp_id, amount=4 * rng.randint(25, 500)))
    deliveries = []
    for event in events:
        deliveries.append(Delivery("genuine", event["id"], *market.signed(event)))
    for _ in range(duplicates):
        event = rng.choice(events)
        deliveries.append(Delivery("duplicate", event["id"], *market.signed(event)))
    now = int(time.time())
    for n in range(forged):
        event = rng.choice(events)
        style = n % 4
        if style == 0:  # the body was changed after signing
            raw, header = market.signed(event)
            raw = raw.replace(f'"amount": {event["amount"]}'.encode(), b'"amount": 4000000')
        elif style == 1:  # signed with a guessed secret
            raw, header = market.signed({**event, "amount": 4_000_000}, secrets=["gcwh_guessed"])
        # An hour out of date either way: well past the 300 s tolerance however long the storm runs.
        elif style == 2:  # an old delivery replayed
            raw, header = market.signed(event, t=now - 3600 - n)
        else:  # from the future
            raw, header = market.signed(event, t=now + 3600 + n)
        deliveries.append(Delivery("forged", event["id"], raw, header))
    rng.shuffle(deliveries)
    return homes, events, deliveries


def send_all(deliveries: list[Delivery], threads: int) -> list[tuple[Delivery, int, dict]]:
    results: list[tuple[Delivery, int, dict]] = []
    if threads <= 1:
        client = Client()
        return [(d, (r := post_bank_webhook(d.raw, d.header, client=client)).status_code, r.json())
                for d in deliveries]
    work: queue.Queue[Delivery] = queue.Queue()
    for d in deliveries:
        work.put(d)
    lock = threading.Lock()
    errors: list[BaseException] = []

    def worker() -> None:
        client = Client()
        try:
            while True:
                try:
                    d = work.get_nowait()
                except queue.Empty:
                    return
                response = post_bank_webhook(d.raw, d.header, client=client)
                with lock:
                    results.append((d, response.status_code, response.json()))
        except BaseException as exc:  # surfaced below, not lost in the thread
            errors.append(exc)
        finally:
            connection.close()

    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    assert not errors, errors
    return results


def run_storm(*, genuine: int, duplicates: int, forged: int, threads: int, households: int = 12) -> None:
    market = build_market()
    rng = random.Random(20260301)
    homes, events, deliveries = build_storm(market, rng, genuine=genuine, duplicates=duplicates, forged=forged,
                                            households=households)
    stock = market.utility_stock()
    started = time.perf_counter()
    results = send_all(deliveries, threads)
    elapsed = time.perf_counter() - started
    assert len(results) == len(deliveries)

    statuses = Counter((d.kind, code) for d, code, _ in results)
    assert statuses[("forged", 401)] == forged, statuses
    assert {code for d, code, _ in results if d.kind != "forged"} == {200}, statuses
    applied = Counter(body["event_id"] for d, code, body in results if body.get("status") == "applied")
    assert set(applied) == {e["id"] for e in events}
    assert set(applied.values()) == {1}, "an event was applied twice"

    keys = Transaction.objects.filter(idempotency_key__startswith="payment:bank:testbank:storm-")
    assert keys.count() == genuine
    assert set(keys.values_list("status", flat=True)) == {TxStatus.VALID}
    assert ProcessedEvent.objects.count() == genuine

    expected = Counter()
    for event in events:
        expected[event["payer"]] += fiat_to_wh(amount=event["amount"], credit=0, price_per_kwh=RETAIL_PRICE).wh
    for home in homes:
        assert market.household_balance(home) == expected[home.msp_id], home.msp_id
    assert market.utility_stock() == stock - sum(expected.values())

    assert WebhookEvent.objects.count() == len(deliveries)
    audit = Counter(WebhookEvent.objects.values_list("status", flat=True))
    assert audit == {"applied": genuine, "duplicate": len(deliveries) - genuine - forged, "rejected": forged}
    print(f"{len(deliveries)} deliveries in {elapsed:.1f} s ({len(deliveries) / elapsed:.0f}/s, {threads} threads)")


@pytest.mark.django_db
def test_storm_without_threads(settings):
    run_storm(genuine=140, duplicates=50, forged=10, threads=1, households=5)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_storm_of_1000_concurrent_deliveries(settings):
    """~650 genuine events + 30% redeliveries + 5% forged or stale = 1,000, from 8 threads."""
    run_storm(genuine=650, duplicates=300, forged=50, threads=8)
