"""Statement parsers (pure, no database): the hand-written camt.053 and Stripe report fixtures,
malformed and hostile input refused with a clear error, and a long statement streamed."""

from __future__ import annotations

import io
import itertools
import tracemalloc
from datetime import UTC, datetime
from pathlib import Path

import pytest

from payments.reconciliation.camt053 import Camt053Reader
from payments.reconciliation.statements import OTHER, PAYMENT, StatementError, minor_units
from payments.reconciliation.stripe_report import StripeReportReader

FIXTURES = Path(__file__).resolve().parents[2] / "payments" / "fixtures" / "reconciliation"
NS = "urn:iso:std:iso:20022:tech:xsd:camt.053.001.08"


def camt(entries: str, *, prolog: str = "", stmt_id: str = "S-1") -> bytes:
    return (f'<?xml version="1.0"?>{prolog}<Document xmlns="{NS}"><BkToCstmrStmt><Stmt><Id>{stmt_id}</Id>'
            f"{entries}</Stmt></BkToCstmrStmt></Document>").encode()


def entry(e2e: str = "E2E-1", amount: str = "10.00", ccy: str = "INR", ind: str = "CRDT") -> str:
    return (f'<Ntry><Amt Ccy="{ccy}">{amount}</Amt><CdtDbtInd>{ind}</CdtDbtInd><Sts><Cd>BOOK</Cd></Sts>'
            f"<BookgDt><Dt>2025-01-15</Dt></BookgDt><NtryDtls><TxDtls><Refs><EndToEndId>{e2e}</EndToEndId></Refs>"
            "<RltdPties><Dbtr><Pty><Id><OrgId><Othr><Id>hh-1</Id></Othr></OrgId></Id></Pty></Dbtr>"
            "<Cdtr><Pty><Id><OrgId><Othr><Id>utility</Id></Othr></OrgId></Id></Pty></Cdtr></RltdPties>"
            "</TxDtls></NtryDtls></Ntry>")


def read_camt(data: bytes, **kwargs):
    reader = Camt053Reader(io.BytesIO(data), **kwargs)
    return reader, list(reader.lines())


def test_camt053_fixture_lines_and_header():
    reader, lines = read_camt((FIXTURES / "camt.053.xml").read_bytes())
    assert reader.header.statement_id == "STMT-2025-01-15-UTILITY"
    assert reader.header.period_start == datetime(2025, 1, 15, tzinfo=UTC)
    assert reader.header.period_end == datetime(2025, 1, 16, tzinfo=UTC)
    assert [(line.reference, line.kind, line.amount) for line in lines] == [
        ("E2E-0001", PAYMENT, 100000), ("E2E-0002", PAYMENT, 50050), ("E2E-0003", PAYMENT, 99950),
        ("E2E-0000", OTHER, 24000), ("E2E-0004", OTHER, 7500),
    ]
    first = lines[0]
    assert (first.payer, first.payee, first.chaincode, first.currency) == ("hh-1", "utility", "retail-seller", "INR")
    assert first.booked_at == datetime(2025, 1, 15, 9, 30, tzinfo=UTC)
    assert first.source_ref == "BANKA-0001"
    assert "debit" in lines[3].note and "PDNG" in lines[4].note


def test_stripe_report_fixture_lines():
    reader = StripeReportReader((FIXTURES / "balance_change_from_activity.itemized.csv").open("rb"))
    lines = list(reader.lines())
    assert [(line.reference, line.kind, line.amount) for line in lines] == [
        ("pi_3QhA1bC2dE3fG4hI0aAaAaAa", PAYMENT, 100000), ("pi_3QhB2cD3eF4gH5iJ1bBbBbBb", PAYMENT, 25000),
        ("pi_3QhA1bC2dE3fG4hI0aAaAaAa", OTHER, 10000), ("", OTHER, 2950),
    ]
    assert lines[0].source_ref == "txn_3QhA1bC2dE3fG4hI0aBcDeFg"
    assert (lines[0].payer, lines[0].payee, lines[0].chaincode) == ("hh-1", "utility", "retail-seller")
    assert lines[0].booked_at == datetime(2025, 1, 15, 9, 30, 12, tzinfo=UTC)
    assert reader.header.period_start == lines[0].booked_at
    assert reader.header.period_end == datetime(2025, 1, 15, 23, 0, 1, tzinfo=UTC)  # exclusive


@pytest.mark.parametrize(("text", "currency", "minor"), [
    ("100.50", "INR", 10050), ("100", "JPY", 100), ("1.234", "KWD", 1234), ("0.10", "USD", 10),
])
def test_minor_units(text, currency, minor):
    assert minor_units(text, currency, where="t") == minor


@pytest.mark.parametrize(("text", "currency"), [("1.005", "INR"), ("1.5", "JPY"), ("1e3", "INR"), ("", "INR"),
                                                ("10000000000000.00", "INR")])
def test_minor_units_refuses_inexact_or_absurd_amounts(text, currency):
    with pytest.raises(StatementError):
        minor_units(text, currency, where="t")


@pytest.mark.parametrize(("data", "message"), [
    (b"<Document", "not well-formed"),
    (b'<?xml version="1.0"?><Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.054.001.08"/>', "not a camt.053"),
    (camt(entry(amount="ten")), "not a decimal number"),
    (camt(entry(amount="0.00")), "positive"),
    (camt(entry(ccy="rupees")), "ISO 4217"),
    (camt(entry(ind="XXXX")), "CdtDbtInd"),
    (camt(entry(e2e="")), "EndToEndId"),
    (camt(entry(e2e="has space")), "EndToEndId"),
    (camt(entry(), stmt_id=""), "statement id"),
    (camt("<Ntry><Amt Ccy='INR'>1.00</Amt><CdtDbtInd>CRDT</CdtDbtInd><Sts><Cd>BOOK</Cd></Sts></Ntry>"), "TxDtls"),
    (camt(entry()).replace(b"</BkToCstmrStmt>", b"<Stmt><Id>S-2</Id></Stmt></BkToCstmrStmt>"), "several <Stmt>"),
])
def test_malformed_camt053_is_refused_with_a_clear_error(data, message):
    with pytest.raises(StatementError, match=message):
        read_camt(data)


BILLION_LAUGHS = """<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
<!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">]>"""
XXE = '<!DOCTYPE d [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'


@pytest.mark.parametrize(("prolog", "e2e"), [(BILLION_LAUGHS, "&lol4;"), (XXE, "&xxe;"),
                                             ('<!DOCTYPE Document SYSTEM "http://example.invalid/x.dtd">', "E2E-1")])
def test_hostile_xml_is_refused_before_any_entity_is_expanded(prolog, e2e):
    with pytest.raises(StatementError, match="refused hostile XML"):
        read_camt(camt(entry(e2e=e2e), prolog=prolog))


def test_huge_or_deep_or_long_camt053_is_refused():
    with pytest.raises(StatementError, match="larger than"):
        read_camt(camt(entry() * 50), max_bytes=2000)
    with pytest.raises(StatementError, match="more than 3 lines"):
        read_camt(camt(entry() * 4), max_lines=3)
    with pytest.raises(StatementError, match="(?i)depth"):  # libxml2's own limit, huge_tree off
        read_camt(camt("<X>" * 300 + "</X>" * 300))
    with pytest.raises(StatementError, match="more than 1024 characters"):
        read_camt(camt(entry(e2e="E" * 5000)))


STRIPE_HEADER = ("balance_transaction_id,created_utc,currency,gross,fee,net,reporting_category,source_id,"
                 "payment_intent_id,charge_id\n")


@pytest.mark.parametrize(("body", "message"), [
    ("", "empty"),
    ("id,amount\n1,2\n", "missing column"),
    (STRIPE_HEADER + "txn_1,2025-01-15 10:00:00,inr,10.00,0,10.00,charge,ch_1,pi_1\n", "fields"),
    (STRIPE_HEADER + "txn_1,yesterday,inr,10.00,0,10.00,charge,ch_1,pi_1,ch_1\n", "created_utc"),
    (STRIPE_HEADER + "txn_1,2025-01-15 10:00:00,inr,ten,0,10.00,charge,ch_1,pi_1,ch_1\n", "decimal"),
    (STRIPE_HEADER + "txn_1,2025-01-15 10:00:00,inr,-10.00,0,-10.00,charge,ch_1,pi_1,ch_1\n", "gross"),
    (STRIPE_HEADER + 'txn_1,2025-01-15 10:00:00,inr,"10.00,0\n', "CSV"),
])
def test_malformed_stripe_report_is_refused(body, message):
    with pytest.raises(StatementError, match=message):
        list(StripeReportReader(io.BytesIO(body.encode())).lines())


def test_stripe_report_that_is_not_utf8_or_too_big_is_refused():
    with pytest.raises(StatementError, match="UTF-8"):
        list(StripeReportReader(io.BytesIO(STRIPE_HEADER.encode() + b"\xff\xfe\x00\n")).lines())
    row = "txn_1,2025-01-15 10:00:00,inr,10.00,0,10.00,charge,ch_1,pi_1,ch_1\n"
    with pytest.raises(StatementError, match="larger than"):
        list(StripeReportReader(io.BytesIO((STRIPE_HEADER + row * 100).encode()), max_bytes=1000).lines())


class _Statement(io.RawIOBase):
    """A camt.053 of ``count`` entries generated as it is read, never whole in memory."""

    def __init__(self, count: int):
        super().__init__()
        self._parts = itertools.chain([camt("").split(b"</Stmt>")[0]],
                                      (entry(e2e=f"E2E-{n}").encode() for n in range(count)),
                                      [b"</Stmt></BkToCstmrStmt></Document>"])
        self._pending = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        while len(self._pending) < len(buffer):
            part = next(self._parts, None)
            if part is None:
                break
            self._pending += part
        data, self._pending = self._pending[: len(buffer)], self._pending[len(buffer):]
        buffer[: len(data)] = data
        return len(data)


def test_a_long_statement_streams_in_flat_memory():
    tracemalloc.start()
    try:
        count = 0
        for line in Camt053Reader(_Statement(5_000)).lines():  # ~3 MB of XML
            count += 1
            assert line.reference == f"E2E-{count - 1}"
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count == 5_000
    assert peak < 1024 * 1024, f"peak {peak:,} bytes: entries are not released once read"


def test_a_dtd_is_refused_whatever_the_root():
    with pytest.raises(StatementError, match="refused hostile XML"):
        read_camt(b'<?xml version="1.0"?><!DOCTYPE d [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;">]><d>&b;</d>')


@pytest.mark.parametrize(("minor", "currency", "text"), [(10050, "INR", "100.50"), (100, "JPY", "100"),
                                                         (1234, "KWD", "1.234")])
def test_major_units_show_amounts_as_statements_write_them(minor, currency, text):
    from payments.reconciliation.statements import major_units

    assert major_units(minor, currency) == text
