"""The bank endpoint's lifecycle: ISO 20022 camt.054 credits and returns beside JSON, one credit
per end-to-end id whatever the format, returns reversed through the seller chaincode (retail
and wholesale), and hostile XML refused with a clear 4xx before anything moves."""

from __future__ import annotations

from pathlib import Path

import pytest

from ledger.chaincodes.energy import producer_account
from ledger.chaincodes.energy_math import fiat_to_wh, refunded_wh
from ledger.models import Transaction
from payments.models import Payment, WebhookEvent
from payments.testing import PAID_AT, RETAIL_PRICE, WHOLESALE_PRICE, balance, build_market

from .stripe_kit import assert_conserved_and_verified

FIXTURES = Path(__file__).resolve().parents[2] / "payments" / "fixtures"
CREDIT = (FIXTURES / "camt.054.credit.xml").read_bytes()
RETURN = (FIXTURES / "camt.054.return.xml").read_bytes()
WH = fiat_to_wh(amount=2000, credit=0, price_per_kwh=RETAIL_PRICE).wh


@pytest.fixture
def market(db):
    return build_market()


def moved(market) -> tuple[int, int, int]:
    return market.household_balance(), market.utility_stock(), Transaction.objects.count()


def test_a_camt054_credit_applies_once_whatever_reports_it_again(market):
    response = market.deliver(CREDIT)
    assert response.status_code == 200 and response.json()["status"] == "applied", response.content
    assert response.json()["wh"] == WH and market.household_balance() == WH
    payment = Payment.objects.get()
    assert (payment.provider, payment.scope, payment.payment_id, payment.chaincode) == (
        "bank", "testbank", "E2E-ALICE-0001", "retail-seller")
    audit = WebhookEvent.objects.get()
    assert (audit.event_type, audit.event_id, audit.payment) == ("camt.054", "TESTBANK-NTF-0001", payment)
    # The same notification again, another notification of the same payment, and the same
    # payment as JSON: each a duplicate.
    assert market.deliver(CREDIT).json()["status"] == "duplicate"
    again = market.deliver(CREDIT.replace(b"TESTBANK-NTF-0001", b"TESTBANK-NTF-0099"))
    assert again.status_code == 200 and again.json()["status"] == "duplicate"
    as_json = market.deliver(market.notification(id="json-1", end_to_end_id="E2E-ALICE-0001", amount=2000))
    assert as_json.json()["status"] == "duplicate" and as_json.json()["tx_hash"] == response.json()["tx_hash"]
    assert market.household_balance() == WH
    assert set(WebhookEvent.objects.values_list("payment", flat=True)) == {payment.pk}
    assert_conserved_and_verified()


def test_a_camt054_debit_returns_part_of_the_credit(market):
    market.deliver(CREDIT)
    response = market.deliver(RETURN)
    assert response.status_code == 200 and response.json()["status"] == "applied", response.content
    back = refunded_wh(refunded=800, sale_wh=WH, price_per_kwh=RETAIL_PRICE)
    assert response.json()["wh"] == back and market.household_balance() == WH - back
    assert Payment.objects.get().amount_reversed == 800
    assert WebhookEvent.objects.order_by("-id").first().event_type == "return"
    assert market.deliver(RETURN).json()["status"] == "duplicate"
    assert market.household_balance() == WH - back
    assert_conserved_and_verified()


def test_json_returns_are_capped_by_the_payment_and_wait_for_its_credit(market):
    early = market.deliver({"id": "rtn-0", "bank": "testbank", "return_of": "pay-1", "amount": 500, "currency": "INR"})
    assert early.status_code == 409 and "not credited yet" in early.json()["error"]
    market.deliver(market.notification(id="pay-1", amount=1000))
    first = market.deliver({"id": "rtn-1", "bank": "testbank", "return_of": "pay-1", "amount": 700, "currency": "INR"})
    assert first.status_code == 200 and first.json()["status"] == "applied"
    before = moved(market)
    over = market.deliver({"id": "rtn-2", "bank": "testbank", "return_of": "pay-1", "amount": 301, "currency": "INR"})
    assert over.status_code == 422 and "exceed" in over.json()["error"]
    other = market.deliver({"id": "rtn-3", "bank": "testbank", "return_of": "pay-1", "amount": 1, "currency": "EUR"})
    assert other.status_code == 422 and "not EUR" in other.json()["error"]
    assert moved(market) == before
    rest = market.deliver({"id": "rtn-4", "bank": "testbank", "return_of": "pay-1", "amount": 300, "currency": "INR"})
    assert rest.json()["status"] == "applied" and market.household_balance() == 0
    assert_conserved_and_verified()


def test_a_wholesale_return_gives_the_producer_its_energy_back(market):
    market.operate("token", "mint", {"to": producer_account("sunfarm"), "asset": "k", "amount": 50_000})
    stock = market.utility_stock()
    paid = market.deliver(market.notification(id="ws-1", payer="utility", payee="sunfarm",
                                              chaincode="wholesale-seller", amount=5000))
    assert paid.json()["status"] == "applied"
    wh = fiat_to_wh(amount=5000, credit=0, price_per_kwh=WHOLESALE_PRICE).wh
    assert market.utility_stock() == stock + wh and balance(producer_account("sunfarm")) == 50_000 - wh
    back = market.deliver({"id": "ws-rtn", "bank": "testbank", "return_of": "ws-1", "amount": 5000, "currency": "INR"})
    assert back.status_code == 200 and back.json()["status"] == "applied", back.content
    assert market.utility_stock() == stock and balance(producer_account("sunfarm")) == 50_000
    assert_conserved_and_verified()


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.054.001.08"><x>&lol3;</x></Document>"""
EXTERNAL = b"""<?xml version="1.0"?>
<!DOCTYPE d [<!ENTITY secret SYSTEM "file:///etc/passwd">]>
<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.054.001.08"><x>&secret;</x></Document>"""
DTD_ONLY = CREDIT.replace(b"<Document ", b'<!DOCTYPE Document SYSTEM "http://example.invalid/camt.dtd">\n<Document ')


@pytest.mark.parametrize("body, status, fragment", [
    (BILLION_LAUGHS, 400, "XML refused"),
    (EXTERNAL, 400, "XML refused"),
    (DTD_ONLY, 400, "XML refused"),
    (CREDIT.replace(b"</Document>", b""), 400, "not well-formed"),
    (CREDIT.replace(b"camt.054.001.08", b"pain.001.001.09"), 400, "camt.054"),
    (CREDIT.replace(b"20.00</Amt>\n            <CdtDbtInd>", b"20.005</Amt>\n            <CdtDbtInd>"), 400, "decimals"),
    (CREDIT.replace(b"</TxDtls>", b"</TxDtls><TxDtls/>"), 400, "exactly one"),
    (CREDIT.replace(b"<CdtDbtInd>CRDT</CdtDbtInd>\n            <RltdPties>", b"<CdtDbtInd>XXXX</CdtDbtInd>\n"
                    b"            <RltdPties>"), 400, "CRDT or DBIT"),
    (CREDIT.replace(b"<GrpHdr>", b"<GrpHdr><Pad>" + b"x" * 70_000 + b"</Pad>"), 413, "larger than"),
])
def test_hostile_and_malformed_xml_is_refused_and_moves_nothing(market, body, status, fragment):
    before = moved(market)
    response = market.deliver(body)
    assert response.status_code == status, response.content
    assert fragment in response.json()["error"]
    assert moved(market) == before and not Payment.objects.exists()
    audit = WebhookEvent.objects.get()
    assert (audit.status, audit.http_status) == ("rejected", status)


def test_a_camt054_credit_without_remittance_routes_by_the_payer(market):
    body = CREDIT.replace(b"<RmtInf><Ustrd>retail-seller</Ustrd></RmtInf>", b"")
    response = market.deliver(body)
    assert response.json()["status"] == "applied" and Payment.objects.get().chaincode == "retail-seller"
    assert PAID_AT.startswith("2026-03-01")


@pytest.mark.parametrize(("currency", "written", "minor"), [("INR", "20.00", 2000), ("UGX", "5000", 5000),
                                                             ("XOF", "750", 750), ("LYD", "1.250", 1250)])
def test_camt054_and_statements_read_amounts_with_the_same_currency_exponents(currency, written, minor):
    """A notification and the statement that settles it must agree on the amount, or
    reconciliation flags a payment the webhook credited correctly."""
    from payments.camt import camt054_notice
    from payments.reconciliation.statements import minor_units

    assert CREDIT.count(b'Ccy="INR">20.00<') == 2  # the entry's and the transaction's amount
    xml = CREDIT.replace(b'Ccy="INR">20.00<', f'Ccy="{currency}">{written}<'.encode())
    assert camt054_notice(xml, bank="testbank").amount == minor
    assert minor_units(written, currency, where="test") == minor
