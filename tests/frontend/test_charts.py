"""Charts' figures: the selectors sum meter readings, mint and burn, balances and sales per hour
and per day of the current time zone (boundaries, empty ranges, Asia/Kolkata's half-hour offset);
the pages show each chart's JSON payload and a table with the same numbers; the utility's
dashboard is for utility staff only; which meters are online."""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.test import Client
from django.utils import timezone

from frontend import charts
from iot_gateway.fleet import simulated_meter
from iot_gateway.services import meter_statuses_record, readings_ingest
from ledger import selectors as ledger
from tests.meters_world import MeterWorld, build_meter_world

pytestmark = pytest.mark.django_db

KOLKATA = ZoneInfo("Asia/Kolkata")
# 11:00 in Kolkata is 05:30 UTC: an hour of Kolkata is not an hour of UTC.
ELEVEN_IST = datetime(2026, 11, 21, 11, 0, tzinfo=KOLKATA)


@pytest.fixture
def mw(settings) -> MeterWorld:
    return build_meter_world(settings)


def ingest(device, readings: list[tuple[datetime, int]], *, first_counter: int = 1) -> list:
    """Signed readings (time, import register) of ``device`` through the gateway's ingest."""
    meter = simulated_meter(device)
    messages = [meter.reading(counter=first_counter + n, import_wh=wh, export_wh=0, timestamp=at)
                for n, (at, wh) in enumerate(readings)]
    return readings_ingest(messages, received_via="http")


def energy(device, since, until, bucket):
    return ledger.meter_energy_by_period(identity_id=device.identity_id, device_kind=device.kind, since=since,
                                         until=until, bucket=bucket)


# --- hour and day buckets ----------------------------------------------------------------------

def test_hours_are_the_current_time_zones_and_a_reading_on_the_hour_opens_the_next(mw):
    ingest(mw.meter, [(ELEVEN_IST - timedelta(minutes=45), 100), (ELEVEN_IST - timedelta(seconds=1), 250),
                      (ELEVEN_IST, 600), (ELEVEN_IST + timedelta(minutes=59, seconds=59), 1_000)])
    since, until = ELEVEN_IST - timedelta(hours=2), ELEVEN_IST + timedelta(hours=2)
    with timezone.override(KOLKATA):
        assert energy(mw.meter, since, until, "hour") == {ELEVEN_IST - timedelta(hours=1): 250, ELEVEN_IST: 750}
    with timezone.override(UTC):  # 10:15 IST is 04:45 UTC; 10:59:59 and 11:00 IST are both in 05:00 UTC
        five = datetime(2026, 11, 21, 5, 0, tzinfo=UTC)
        assert energy(mw.meter, since, until, "hour") == {five - timedelta(hours=1): 100, five: 500,
                                                          five + timedelta(hours=1): 400}


def test_days_end_at_the_current_time_zones_midnight(mw):
    midnight = datetime(2026, 11, 22, 0, 0, tzinfo=KOLKATA)  # 18:30 UTC on the 21st
    ingest(mw.meter, [(midnight - timedelta(seconds=1), 300), (midnight, 500), (midnight + timedelta(hours=20), 900)])
    since, until = midnight - timedelta(days=2), midnight + timedelta(days=2)
    with timezone.override(KOLKATA):
        assert energy(mw.meter, since, until, "day") == {date(2026, 11, 21): 300, date(2026, 11, 22): 600}
    with timezone.override(UTC):  # all three are on the 21st or 22nd in UTC differently
        assert energy(mw.meter, since, until, "day") == {date(2026, 11, 21): 500, date(2026, 11, 22): 400}


def test_the_range_is_half_open_and_an_empty_one_is_empty(mw):
    ingest(mw.meter, [(ELEVEN_IST, 100), (ELEVEN_IST + timedelta(hours=1), 300)])
    with timezone.override(KOLKATA):
        assert energy(mw.meter, ELEVEN_IST, ELEVEN_IST + timedelta(hours=1), "hour") == {ELEVEN_IST: 100}
        assert energy(mw.meter, ELEVEN_IST - timedelta(days=3), ELEVEN_IST - timedelta(days=2), "day") == {}
    with pytest.raises(ValueError, match="bucket"):
        energy(mw.meter, ELEVEN_IST, ELEVEN_IST, "week")


def test_refused_and_replayed_readings_count_nothing_more(mw):
    assert [o.status for o in ingest(mw.meter, [(ELEVEN_IST, 100), (ELEVEN_IST + timedelta(minutes=5), 150)])] == [
        "applied", "applied"]
    assert [o.status for o in ingest(mw.meter, [(ELEVEN_IST, 100)])] == ["replayed"]  # delivered again
    # An older counter is refused (and would have gone backwards).
    assert [o.status for o in ingest(mw.meter, [(ELEVEN_IST + timedelta(minutes=6), 90)])] == ["rejected"]
    with timezone.override(KOLKATA):
        assert energy(mw.meter, ELEVEN_IST, ELEVEN_IST + timedelta(hours=1), "hour") == {ELEVEN_IST: 150}


def test_minted_and_burned_per_hour_come_from_the_issuance_account(mw):
    from ledger.models import Posting

    mw.uma.invoke("token", "mint", {"to": "device:HM-ALICE", "asset": "k", "amount": 400})
    ingest(mw.meter, [(ELEVEN_IST, 150)])  # burns 150 Wh of them, stamped 11:00 IST on 21 November
    with timezone.override(KOLKATA):
        assert ledger.energy_issuance_by_period(since=ELEVEN_IST - timedelta(hours=1),
                                                until=ELEVEN_IST + timedelta(hours=1), bucket="hour") == {
            ELEVEN_IST: (0, 150)}
    now = timezone.now()
    recent = ledger.energy_issuance_by_period(since=now - timedelta(hours=1), until=now + timedelta(hours=1),
                                              bucket="day")
    issuance = Posting.objects.filter(account__kind="issuance", asset_id="k")
    minted = -sum(issuance.filter(amount__lt=0).values_list("amount", flat=True))
    burned = sum(issuance.filter(amount__gt=0).values_list("amount", flat=True))
    assert sum(m for m, _ in recent.values()) == minted >= 400
    assert sum(b for _, b in recent.values()) == burned - 150


def test_balance_by_day_starts_from_the_opening_balance_and_ends_at_the_balance_now(mw):
    from ledger.models import Account

    account = Account.objects.get(key="household:" + mw.alice.organisation.msp_id, asset_id="k")
    today = timezone.localdate()
    series = ledger.balance_by_day([account.pk], first_day=today - timedelta(days=2), last_day=today)
    assert [d for d, _ in series] == [today - timedelta(days=2), today - timedelta(days=1), today]
    assert series[0][1] == 0 and series[-1][1] == account.balance == 3_799  # all of it moved today
    assert ledger.balance_by_day([], first_day=today, last_day=today) == [(today, 0)]
    assert ledger.balance_by_day([account.pk], first_day=today, last_day=today - timedelta(days=1)) == []
    # Yesterday's view of the same account: what it held before today began.
    assert ledger.balance_by_day([account.pk], first_day=today - timedelta(days=1),
                                 last_day=today - timedelta(days=1)) == [(today - timedelta(days=1), 3_799)]


# --- charts and pages ----------------------------------------------------------------------------

def test_a_device_chart_has_every_hour_with_empty_ones_as_zero(mw):
    now = ELEVEN_IST + timedelta(minutes=20)
    ingest(mw.meter, [(ELEVEN_IST - timedelta(hours=5, minutes=50), 400), (ELEVEN_IST + timedelta(minutes=10), 700)])
    with timezone.override(KOLKATA):
        hourly, daily = charts.device_charts(mw.meter, now=now)
    assert len(hourly.labels) == 24 and hourly.labels[-1] == "11:00" and hourly.labels[0] == "12:00"
    values = dict(zip(hourly.labels, hourly.series[0].values, strict=True))
    assert values["05:00"] == 400 and values["11:00"] == 300 and sum(values.values()) == 700
    assert len(daily.labels) == 30 and daily.labels[-1] == "21 Nov" and daily.series[0].values[-1] == 700
    assert hourly.has_data and "0.700 kWh in all" in hourly.summary


def test_an_empty_chart_says_so_and_draws_nothing(mw):
    client = Client()
    client.force_login(mw.alice.user)
    html = client.get("/d/HM-ALICE").content.decode()
    assert "Nothing to show for this period yet." in html and 'id="chart-device-hour-data"' not in html


def payload_and_table(html: str, name: str) -> tuple[dict, list[list[str]]]:
    payload = json.loads(re.search(rf'<script id="chart-{name}-data" type="application/json">(.*?)</script>',
                                   html, re.S).group(1))
    figure = re.search(rf'<figure class="chart" id="chart-{name}">(.*?)</figure>', html, re.S).group(1)
    rows = [re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", row) for row in
            re.findall(r"<tr>(.*?)</tr>", figure.split("<tbody>")[1], re.S)]
    return payload, rows


def test_the_device_pages_json_payload_matches_its_table_and_only_the_owner_and_utility_see_it(mw):
    now = timezone.now()
    ingest(mw.meter, [(now - timedelta(hours=2), 1_234), (now - timedelta(minutes=1), 2_000)])
    for name in ("alice", "bob", "uma"):
        client = Client()
        client.force_login(mw.persona(name).user)
        html = client.get("/d/HM-ALICE").content.decode()
        for chart in ("device-hour", "device-day"):
            payload, rows = payload_and_table(html, chart)
            assert [r[0] for r in rows] == payload["labels"]
            assert [r[1] for r in rows] == [f"{v / 1000:.3f}" for v in payload["series"][0]["values"]]
            assert sum(payload["series"][0]["values"]) == 2_000
    client = Client()
    client.force_login(mw.charlie.user)
    assert "chart-device-hour" not in client.get("/d/HM-ALICE").content.decode()
    assert "chart-device-hour" not in Client().get("/d/HM-ALICE").content.decode()


def test_the_wallet_shows_its_balance_over_30_days(mw):
    client = Client()
    client.force_login(mw.alice.user)
    html = client.get("/wallet/").content.decode()
    payload, rows = payload_and_table(html, "wallet-balance")
    assert payload["kind"] == "line" and len(payload["labels"]) == 30
    assert payload["series"][0]["values"][-1] == 3_799 and rows[-1][1] == "3.799"
    assert 'src="/static/frontend/charts.js"' in html and "<script>" not in html


# --- the utility's dashboard ---------------------------------------------------------------------

@pytest.mark.parametrize(("name", "status"), [("uma", 200), ("alice", 403), ("charlie", 403), ("anonymous", 302)])
def test_the_dashboard_is_for_utility_staff_only(mw, name, status):
    client = Client()
    if name != "anonymous":
        client.force_login(mw.persona(name).user)
    response = client.get("/dashboard/")
    assert response.status_code == status
    if status == 302:
        assert response["Location"].startswith("/accounts/login/")
    home = client.get("/").content.decode()
    assert ('href="/dashboard/"' in home) == (name == "uma")


def test_the_dashboard_shows_energy_sales_and_meters(mw):
    from payments.models import Payment

    utility = mw.uma.organisation.msp_id
    now = timezone.now()
    mw.uma.invoke("token", "mint", {"to": "device:HM-ALICE", "asset": "k", "amount": 1_000})
    ingest(mw.meter, [(now - timedelta(minutes=2), 321)])
    for n, (amount, currency, chaincode, payee) in enumerate([
            (4_000, "INR", "retail-seller", utility), (1_500, "INR", "retail-seller", utility),
            (999, "INR", "wholesale-seller", utility), (777, "INR", "retail-seller", "another-utility")]):
        Payment.objects.create(provider="bank", scope="b", payment_id=f"p{n}", chaincode=chaincode, payer="x",
                               payee=payee, amount=amount, currency=currency, state="credited", created=now,
                               credited_at=now)
    Payment.objects.create(provider="bank", scope="b", payment_id="pending", chaincode="retail-seller", payer="x",
                           payee=utility, amount=50, currency="INR", created=now)
    client = Client()
    client.force_login(mw.uma.user)
    html = client.get("/dashboard/").content.decode()
    issuance, rows = payload_and_table(html, "issuance-hour")
    assert [s["label"] for s in issuance["series"]] == ["Minted", "Burned"] and len(rows) == 48
    assert sum(issuance["series"][1]["values"]) == 321
    assert [r[2] for r in rows] == [f"{v / 1000:.3f}" for v in issuance["series"][1]["values"]]
    sales, rows = payload_and_table(html, "sales-inr")
    assert sales["series"][0]["values"][-1] == 5_500 and rows[-1][1] == "55.00" and sales["unit"] == "INR"
    assert re.search(r'data-presence="online">1<', html) and re.search(r'data-presence="offline">1<', html)


def test_meters_are_online_by_their_latest_signal(mw):
    from iot_gateway.selectors import ONLINE_WITHIN, meters_presence

    now = timezone.now()
    assert {p.device.public_id for p in meters_presence(now).offline} == {"SL-0001", "HM-ALICE"}  # never heard
    ingest(mw.meter, [(now, 10)])
    assert [p.device.public_id for p in meters_presence(now).online] == ["HM-ALICE"]
    assert [p.device.public_id for p in meters_presence(now + ONLINE_WITHIN + timedelta(seconds=1)).online] == []
    meter_statuses_record({"SL-0001": True}, changed_at=now)
    assert [p.device.public_id for p in meters_presence(now + timedelta(hours=5)).online] == ["SL-0001"]
    meter_statuses_record({"SL-0001": False}, changed_at=now + timedelta(minutes=1))  # its last will
    fleet = meters_presence(now + timedelta(minutes=2))
    assert [p.device.public_id for p in fleet.online] == ["HM-ALICE"] and fleet.total == 2  # retired left out
