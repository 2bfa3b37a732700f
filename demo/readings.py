"""A week of the demo meters' signed readings, so the charts show real figures: Alice and Bob
buy coins and fund their household meters, then their meters and the solar array's report the
last seven days (hourly over the last day, every three hours before), each reading signed with
the meter's own key and applied through the gateway's ingest service (as if it had come over
HTTP), burning and minting on the ledger.

Households draw a little at night and most in the morning and evening; the solar array follows
the sun. Hours are the current time zone's (the utility's). Seeded once: a demo whose meters
have reported already gets nothing more."""

from __future__ import annotations

import math
import time as clock
from datetime import datetime, timedelta

from django.contrib.auth import get_user_model
from django.utils import timezone

from iot_gateway.fleet import simulated_meters
from iot_gateway.services import readings_ingest
from ledger.selectors import meter_registers
from meters.models import Device
from meters.services import DeviceError, device_fund
from payments import services as payments
from payments.models import BankSecret, ProcessedEvent
from payments.signing import signature_header

from .errors import DemoSeedError
from .organisations import BANK, UTILITY

DAYS = 7
# (event id, payer, amount in paise): ₹240.00 at the demo's ₹8.00/kWh buys 30 kWh each.
PURCHASES = [("seed-demo-retail-alice-2", "hh-alice", 24_000), ("seed-demo-retail-bob-2", "hh-bob", 24_000)]
# (user, meter, Wh moved from the household's wallet to its meter): a week's use, with some left.
FUNDINGS = [("alice", "HM-ALICE", 30_000), ("bob", "HM-BOB", 30_000)]
HOUSEHOLDS = ("HM-ALICE", "HM-BOB")
SOLAR = "PM-0001"
SOLAR_PEAK_W = 5_000


def household_watts(hour: int, public_id: str) -> int:
    """What a household draws at a local hour: lights and a fan at night, cooking in the
    morning, most in the evening. Bob's home uses a little less than Alice's."""
    base = 60 if 0 <= hour < 6 or hour == 23 else 90
    if 6 <= hour < 9:
        base = 260
    elif 18 <= hour < 23:
        base = 380
    return base if public_id == "HM-ALICE" else base * 4 // 5


def solar_watts(hour: int) -> int:
    """A solar array's output in the middle of a local hour: none at night, a peak at noon."""
    if not 6 <= hour < 18:
        return 0
    return int(SOLAR_PEAK_W * math.sin(math.pi * (hour + 0.5 - 6) / 12))


def _purchases_seed() -> list[str]:
    created: list[str] = []
    secret = BankSecret.objects.filter(organisation__msp_id=BANK, active=True).order_by("-id").first()
    if secret is None:
        raise DemoSeedError(f"the demo bank {BANK} has no active webhook secret")
    for event_id, payer, amount in PURCHASES:
        if ProcessedEvent.objects.filter(provider="bank", scope=BANK, event_id=event_id).exists():
            continue
        now = int(clock.time())
        body = payments.bank_notification_body(event_id=event_id, bank=BANK, payer=payer, payee=UTILITY,
                                               chaincode="retail-seller", amount=amount, currency="INR", created=now)
        header = signature_header([payments.bank_secret_reveal(secret)], now, body)
        outcome = payments.bank_webhook_receive(raw_body=body, now=now, signature_header=header)
        if outcome.http_status != 200:
            raise DemoSeedError(f"retail-seller {event_id} was refused: {outcome.body}")
        created.append(f"retail-seller.sell {event_id}")
    return created


def _fundings_seed() -> list[str]:
    created = []
    users = get_user_model().objects
    for username, public_id, wh in FUNDINGS:
        try:
            device_fund(user=users.get(username=username), public_id=public_id, amount_wh=wh,
                        idempotency_key=f"seed-demo-{public_id}")
        except DeviceError as exc:
            raise DemoSeedError(f"{username} could not fund {public_id}: {exc}") from exc
        created.append(f"resident.fund {wh} Wh to {public_id}")
    return created


def reported(hours_ago: int) -> bool:
    """Whether a meter sends a reading ``hours_ago`` hours before the last: every hour over the
    last day, every third hour before (a reading covers all the energy since the one before)."""
    return hours_ago < 24 or hours_ago % 3 == 0


def meter_messages(meters: list, *, end: datetime, hours: int) -> list[dict]:
    """Each meter's signed readings over the ``hours`` hours up to ``end`` (see ``reported``),
    the registers growing hour by hour by the profiles above."""
    messages = []
    for meter in meters:
        counter, import_wh, export_wh = meter.counter, meter.import_wh, meter.export_wh
        for hours_ago in range(hours - 1, -1, -1):
            at = end - timedelta(hours=hours_ago)
            hour = timezone.localtime(at - timedelta(minutes=30)).hour
            if meter.public_id == SOLAR:
                export_wh += solar_watts(hour)
            else:
                import_wh += household_watts(hour, meter.public_id)
            if reported(hours_ago):
                counter += 1
                messages.append(meter.reading(counter=counter, import_wh=import_wh, export_wh=export_wh,
                                              timestamp=at))
    return messages


READINGS_PER_METER = sum(1 for hours_ago in range(DAYS * 24) if reported(hours_ago))


def readings_seed() -> list[str]:
    """Purchases, fundings and a week of readings, once; the caller holds the transaction."""
    devices = list(Device.objects.select_related("organisation").filter(public_id__in=[*HOUSEHOLDS, SOLAR]))
    if len(devices) != len(HOUSEHOLDS) + 1:
        return []  # a partial demo without these meters
    if meter_registers([(d.public_id, d.kind) for d in devices]):
        return []  # the meters have reported: seeded before
    created = _purchases_seed() + _fundings_seed()
    # Readings a few minutes old at most: the last lands in the current hour.
    end = timezone.now().replace(second=0, microsecond=0) - timedelta(minutes=1)
    outcomes = readings_ingest(meter_messages(simulated_meters(devices), end=end, hours=DAYS * 24),
                               received_via="http")
    refused = [o for o in outcomes if not o.ok]
    if refused:
        raise DemoSeedError(f"the gateway refused a demo reading of {refused[0].meter}: {refused[0].reason}")
    created.append(f"{len(outcomes)} signed meter readings ({DAYS} days of {', '.join(sorted(d.public_id for d in devices))})")
    return created
