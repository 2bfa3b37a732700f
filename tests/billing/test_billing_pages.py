"""The billing pages (docs/billing.md, "Pages"): who sees what, the figures they show (read from
the ledger's world state, written here through the chaincode), the CSV and the PDF statement,
and the utility's tariff and dues forms."""

from __future__ import annotations

import csv
import io
import uuid
from datetime import timedelta

import pytest
from django.test import Client

from ledger.keys import BILLING_CONFIG_KEY, TARIFFS_KEY, bill_key
from ledger.models import StateEntry
from tests.billing.pages_world import ALICE_UNITS, BOB_UNITS, DAY, FREQS, build_pages_world
from tests.billing.world import SLOT, STATION, T0, state

pytestmark = pytest.mark.django_db
DAY_ENDED = T0 + timedelta(days=1)


@pytest.fixture
def pw():
    return build_pages_world()


@pytest.fixture(autouse=True)
def _language_reset():
    """A request in Hindi or Spanish leaves its language active in this thread (LocaleMiddleware
    activates and nothing deactivates): later tests in the process must read English."""
    from django.utils import translation

    yield
    translation.deactivate()


def bills_of(society: str) -> list[dict]:
    return [state(bill_key(STATION, society, (T0 + n * SLOT).isoformat())) for n in range(len(FREQS))]


def page(pw, who: str, path: str):
    response = pw.client(who).get(path)
    return response, response.content.decode()


# --- who sees what -------------------------------------------------------------------------------

@pytest.mark.parametrize("who, target", [("alice", "/billing/household/"), ("carol", "/billing/household/"),
                                         ("dina", "/billing/distributor/"), ("rivka", "/billing/distributor/"),
                                         ("gina", "/billing/grid/"), ("uma", "/billing/grid/"),
                                         ("audrey", "/billing/grid/")])
def test_billing_home_goes_to_the_members_view(pw, who, target):
    response = pw.client(who).get("/billing/")
    assert response.status_code == 302 and response["Location"] == target


def test_billing_home_refuses_other_roles_and_asks_strangers_to_sign_in(pw):
    assert pw.client("pat").get("/billing/").status_code == 403
    response = Client().get("/billing/household/")
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


PAGES = ["/billing/grid/", "/billing/distributor/", "/billing/household/", "/billing/tariffs/",
         f"/billing/household/{DAY}.csv", "/billing/statements/2026-06.pdf"]
ALLOWED = {
    "alice": {"/billing/household/", f"/billing/household/{DAY}.csv", "/billing/statements/2026-06.pdf"},
    "gina": {"/billing/grid/"},
    "dina": {"/billing/distributor/"},
    "uma": {"/billing/grid/", "/billing/distributor/", "/billing/tariffs/"},
    "audrey": {"/billing/grid/", "/billing/distributor/"},
    "pat": set(),
}


@pytest.mark.parametrize("who", sorted(ALLOWED))
def test_each_role_opens_exactly_its_pages(pw, who):
    client = pw.client(who)
    for path in PAGES:
        status = client.get(path).status_code
        assert status == (200 if path in ALLOWED[who] else 403), (who, path, status)


def test_pages_answer_head(pw):
    assert pw.client("alice").head(f"/billing/household/?date={DAY}").status_code == 200
    assert pw.client("alice").post(f"/billing/household/?date={DAY}").status_code == 405


@pytest.mark.parametrize("bad", ["2026-13-01", "yesterday", "2999-01-01"])
def test_a_bad_or_future_day_is_not_found(pw, bad):
    assert pw.client("alice").get(f"/billing/household/?date={bad}").status_code == 404
    assert pw.client("alice").get(f"/billing/household/{bad}.csv").status_code == 404


# --- the household's day -------------------------------------------------------------------------

def test_the_household_sees_its_days_slots_bill_and_chart(pw):
    response, html = page(pw, "alice", f"/billing/household/?date={DAY}")
    bills = bills_of("hh-alice")
    total = sum(b["amount"] for b in bills)
    assert [b["unit"] for b in bills] == ALICE_UNITS and total == -113  # export at 49.60 Hz outweighs the rest
    assert '<strong data-day-bill>-₹1.13</strong>' in html
    assert "3.500 kWh" in html and "1.500 kWh" in html and "4 / 96" in html
    # The slot table: time, frequency, units, price and bill of each recorded slot.
    assert '<time datetime="2026-06-01T08:15:00+05:30">08:15</time>' in html
    assert "49.85" in html and "₹4.9060" in html  # 4985 → 17800 + 2084 × 15 = 49060 centipaise
    assert "₹9.81" in html  # 2000 Wh × 490.60 paise/kWh
    # The charts' data: the same figures, a gap (null) where nothing was recorded.
    energy = response.context["charts"][0].payload()["series"][0]["values"]
    assert energy[32:36] == [1000, 2000, 0, 500] and energy[0] is None
    assert 'id="chart-household-bill-data"' in html and 'id="chart-household-price-data"' in html
    # Nothing of Bob's.
    assert sum(b["amount"] for b in bills_of("hh-bob")) != total
    assert "hh-bob" not in html


def test_another_household_sees_only_its_own(pw):
    _, bob = page(pw, "bob", f"/billing/household/?date={DAY}")
    bob_total = sum(b["amount"] for b in bills_of("hh-bob"))
    assert f"<strong data-day-bill>₹{bob_total // 100}.{bob_total % 100:02d}</strong>" in bob
    assert "-₹1.13" not in bob
    _, carol = page(pw, "carol", f"/billing/household/?date={DAY}")
    assert "0 / 96" in carol and "st-south" in carol


def test_the_day_navigation_links_past_days(pw):
    _, html = page(pw, "alice", f"/billing/household/?date={DAY}")
    assert 'href="/billing/household/?date=2026-05-31" rel="prev"' in html
    assert 'href="/billing/household/?date=2026-06-02" rel="next"' in html
    assert 'href="/billing/household/?date=2026-05-25"' in html  # a week back
    _, today = page(pw, "alice", "/billing/household/")
    assert 'rel="next"' not in today


def test_dues_with_a_fine_the_bill_account_and_pay_link(pw):
    w = pw.world
    w.ok("utility", "configure", {"dues_threshold": 500, "fine": 150})
    w.ok("distributor", "initUnit", {"societyId": "hh-alice", "stationId": STATION, "startTime": T0.isoformat(),
                                     "endTime": (T0 + SLOT).isoformat(), "unit": 9000})
    w.ok("distributor", "initStationBill", {"stationId": STATION, "startTime": T0.isoformat(),
                                            "endTime": (T0 + SLOT).isoformat()})
    w.ok("distributor", "closeDay", {"stationId": STATION, "date": DAY}, at=DAY_ENDED)
    dues = state("dues/hh-alice")
    assert dues["in_breach"] and dues["outstanding"] > 500
    _, html = page(pw, "alice", f"/billing/household/?date={DAY}")
    outstanding = dues["outstanding"]
    shown = f"₹{outstanding // 100}.{outstanding % 100:02d}"
    assert f"<strong data-dues-outstanding>{shown}</strong>" in html
    assert "a fine was added" in html and "₹1.50" in html and "<code>bill:hh-alice</code>" in html
    assert (f'href="/payments/simulator/?bill_account=bill:hh-alice&amp;amount={outstanding // 100}.'
            f'{outstanding % 100:02d}"') in html

    # Paid through the bank: nothing left, the fine gone.
    w.ok("bank", "payDues", {"event_id": "evt-1", "payer": "hh-alice", "payee": "utility-one",
                             "amount": outstanding, "currency": "INR", "paid_at": DAY_ENDED.isoformat(),
                             "account": "bill:hh-alice"}, at=DAY_ENDED)
    _, html = page(pw, "alice", f"/billing/household/?date={DAY}")
    assert "Nothing to pay" in html and "a fine was added" not in html

    # The month's statement lists the payment.
    from billing import selectors
    from billing.statements import statement_texts

    texts = statement_texts(selectors.month_statement("hh-alice", T0.date()))
    assert [row[1:] for row in texts["payments"]] == [[shown, "evt-1"]]
    assert dict(texts["head"])["Paid this month"] == shown and dict(texts["head"])["Outstanding dues now"] == "₹0.00"
    assert pw.client("alice").get("/billing/statements/2026-06.pdf").status_code == 200


# --- the distributor -----------------------------------------------------------------------------

def test_the_distributor_sees_its_stations_households(pw):
    _, html = page(pw, "dina", f"/billing/distributor/?date={DAY}")
    alice_total = sum(b["amount"] for b in bills_of("hh-alice"))
    bob_total = sum(b["amount"] for b in bills_of("hh-bob"))
    assert "hh-alice" in html and "hh-bob" in html and "hh-carol" not in html
    assert "3.500" in html and f"{sum(BOB_UNITS) // 1000}.{sum(BOB_UNITS) % 1000:03d}" in html
    assert f"₹{(alice_total + bob_total) // 100}" in html
    _, rival = page(pw, "rivka", f"/billing/distributor/?date={DAY}")
    assert "hh-carol" in rival and "hh-alice" not in rival
    _, utility = page(pw, "uma", f"/billing/distributor/?date={DAY}")
    assert all(s in utility for s in ("hh-alice", "hh-bob", "hh-carol"))


# --- the grid ------------------------------------------------------------------------------------

def test_the_grid_sees_the_days_frequency_chart(pw):
    response, html = page(pw, "gina", f"/billing/grid/?date={DAY}")
    values = response.context["chart"].payload()["series"][0]["values"]
    assert values[32:36] == FREQS and values[40] == 4999 and values[0] is None
    assert response.context["chart"].payload()["fit"] is True
    assert "5 / 96" in html and "49.60" in html and "50.10" in html
    assert 'id="chart-grid-frequency-data"' in html and "<script>" not in html


# --- CSV and PDF ---------------------------------------------------------------------------------

def test_the_days_csv_carries_the_ledgers_integers(pw):
    response = pw.client("alice").get(f"/billing/household/{DAY}.csv")
    assert response["Content-Type"].startswith("text/csv")
    assert f'filename="bill-hh-alice-{DAY}.csv"' in response["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert len(rows) == 96
    billed = [r for r in rows if r["amount_paise"]]
    bills = bills_of("hh-alice")
    assert [int(r["unit_wh"]) for r in billed] == ALICE_UNITS
    assert [int(r["amount_paise"]) for r in billed] == [b["amount"] for b in bills]
    assert [int(r["rate_centipaise_per_kwh"]) for r in billed] == [b["rate"] for b in bills]
    assert [int(r["avg_freq_centihz"]) for r in billed] == FREQS
    assert billed[0]["slot_start"] == "2026-06-01T08:00:00+05:30" and billed[2]["export_wh"] == "1500"
    assert not rows[0]["amount_paise"] and not rows[0]["unit_wh"]


def test_the_monthly_statement_is_a_pdf_of_the_month(pw):
    from billing import selectors
    from billing.statements import statement_texts

    body = pw.client("alice").get("/billing/statements/2026-06.pdf").content
    assert body.startswith(b"%PDF-") and body.rstrip().endswith(b"%%EOF")
    assert b"/Subject (hh-alice 2026-06 INR -113)" in body
    statement = selectors.month_statement("hh-alice", T0.date())
    texts = statement_texts(statement)
    head = dict(texts["head"])
    assert head["Billed this month"] == "-₹1.13" and head["Energy used"] == "3.500 kWh"
    assert head["Bill account"] == "bill:hh-alice" and len(texts["days"]) == 30
    assert texts["days"][0][3] == "-₹1.13"
    assert pw.client("alice").get("/billing/statements/2999-01.pdf").status_code == 404
    assert pw.client("alice").get("/billing/statements/june.pdf").status_code == 404


def test_the_statement_falls_back_to_english_where_the_font_lacks_the_script(pw):
    client = pw.client("alice")
    client.cookies["django_language"] = "hi"
    body = client.get("/billing/statements/2026-06.pdf").content
    assert b"/Title (Electricity statement 2026-06)" in body


# --- tariffs ---------------------------------------------------------------------------------------

def tariff_form(**values) -> dict:
    return {"form": "tariff", "idempotency_key": str(uuid.uuid4()), "kind": "exchange_linked",
            "effective_from": "2026-07-01T00:00", "name": "Exchange 2026", "band_low": "49.90",
            "band_high": "50.05", "base_rate": "400.00", "cap_percent": "150",
            "prices_text": "slot,price\n2026-07-01T08:00, 600.00\n2026-07-01T08:15+05:30,550.5", **values}


def test_the_utility_adds_an_exchange_linked_tariff_without_code(pw):
    client = pw.client("uma")
    response = client.post("/billing/tariffs/", tariff_form(), follow=True)
    assert "Tariff added." in response.content.decode()
    (stored,) = state(TARIFFS_KEY)
    assert stored == {"effective_from": "2026-07-01T00:00:00+05:30", "kind": "exchange_linked",
                      "name": "Exchange 2026", "band": [4990, 5005], "base_rate": 40000, "cap_percent": 150,
                      "prices": {"2026-07-01T02:30:00+00:00": 60000, "2026-07-01T02:45:00+00:00": 55050}}
    html = client.get("/billing/tariffs/").content.decode()
    assert "Exchange 2026" in html and "2 clearing prices" in html and "CERC DSM 2014" in html


def test_a_price_list_may_be_uploaded_as_a_csv_file(pw):
    from django.core.files.uploadedfile import SimpleUploadedFile

    upload = SimpleUploadedFile("prices.csv", b"2026-07-01T09:00,700\n", content_type="text/csv")
    response = pw.client("uma").post("/billing/tariffs/", tariff_form(prices_text="", prices_file=upload))
    assert response.status_code == 302
    assert state(TARIFFS_KEY)[0]["prices"] == {"2026-07-01T03:30:00+00:00": 70000}


def test_a_price_line_may_give_the_day_ahead_and_real_time_prices(pw):
    """The later regulations: the normal rate is the higher of the two clearing prices."""
    form = tariff_form(prices_text="2026-07-01T09:00,700,812.5\n2026-07-01T09:15,650")
    assert pw.client("uma").post("/billing/tariffs/", form).status_code == 302
    assert state(TARIFFS_KEY)[0]["prices"] == {"2026-07-01T03:30:00+00:00": {"dam": 70000, "rtm": 81250},
                                               "2026-07-01T03:45:00+00:00": 65000}


def test_the_utility_adds_a_frequency_vector(pw):
    form = tariff_form(kind="frequency_vector", name="Vector 2026", above_rate="0", floor_rate="900",
                       bands="50.00, 50.05, 0, 40\n49.70, 50.00, 200, 25")
    assert pw.client("uma").post("/billing/tariffs/", form).status_code == 302
    (stored,) = state(TARIFFS_KEY)
    assert stored["bands"] == [{"from": 5000, "below": 5005, "base": 0, "step": 4000},
                               {"from": 4970, "below": 5000, "base": 20000, "step": 2500}]
    assert stored["floor_rate"] == 90000 and stored["above_rate"] == 0


@pytest.mark.parametrize("change, error", [
    ({"band_low": "50.10"}, "the band must contain 50.00 Hz"),
    ({"prices_text": "2026-07-01T08:07,600"}, "a slot starts at :00, :15, :30 or :45"),
    ({"prices_text": "2026-07-01T08:00,6.005"}, "at most two decimals"),
    ({"prices_text": "2026-07-01T08:00,6,7,8"}, "a day-ahead and a real-time price"),
    ({"effective_from": "2010-01-01T00:00"}, "after the shipped CERC 2014 vector"),
    ({"kind": "frequency_vector", "bands": "50.00, 49.00, 1, 1", "above_rate": "0", "floor_rate": "1"},
     "a band&#x27;s &#x27;from&#x27; must be below its &#x27;below&#x27;"),
])
def test_a_bad_tariff_is_refused_with_a_reason_and_nothing_changes(pw, change, error):
    response = pw.client("uma").post("/billing/tariffs/", tariff_form(**change))
    assert response.status_code == 400
    assert error in response.content.decode()
    assert state(TARIFFS_KEY) is None


def test_only_the_utility_may_post_tariffs(pw):
    for who in ("alice", "dina", "gina"):
        assert pw.client(who).post("/billing/tariffs/", tariff_form()).status_code == 403
    assert state(TARIFFS_KEY) is None


def test_the_utility_sets_the_dues_threshold_and_fine(pw):
    form = {"form": "dues", "idempotency_key": str(uuid.uuid4()), "dues_threshold": "500.00", "fine": "25.50"}
    response = pw.client("uma").post("/billing/tariffs/", form, follow=True)
    assert "Dues threshold and fine saved." in response.content.decode()
    config = state(BILLING_CONFIG_KEY)
    assert config["dues_threshold"] == 50_000 and config["fine"] == 2_550 and config["utility"] == "utility-one"
    assert 'value="500.00"' in pw.client("uma").get("/billing/tariffs/").content.decode()
    assert StateEntry.objects.filter(namespace="billing", key=BILLING_CONFIG_KEY).count() == 1


# --- languages -------------------------------------------------------------------------------------

@pytest.mark.parametrize("language", ["hi", "es"])
def test_money_is_formatted_in_the_readers_language(pw, language):
    from frontend.formatting import format_money

    client = pw.client("alice")
    client.cookies["django_language"] = language
    html = client.get(f"/billing/household/?date={DAY}").content.decode()
    assert f'lang="{language}"' in html
    from django.utils import translation

    with translation.override(language):
        assert format_money(-113, "INR") in html
