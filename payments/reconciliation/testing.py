"""Statements for tests and the benchmark, written as the banks and Stripe write them."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from xml.sax.saxutils import escape

NAMESPACE = "urn:iso:std:iso:20022:tech:xsd:camt.053.001.08"


@dataclass(frozen=True)
class Line:
    reference: str
    amount: int  # minor units
    payer: str
    payee: str
    currency: str = "INR"
    booked: str = "2026-03-01T12:00:00Z"
    debit: bool = False
    chaincode: str = ""
    processor: str = ""  # Stripe metadata ``bank``
    category: str = "charge"  # Stripe reporting category


def _major(amount: int) -> str:
    return f"{amount // 100}.{amount % 100:02d}"


def _party(role: str, msp_id: str) -> str:
    return f"<{role}><Pty><Id><OrgId><Othr><Id>{escape(msp_id)}</Id></Othr></OrgId></Id></Pty></{role}>"


def camt053_chunks(lines: Iterable[Line], *, statement_id: str = "STMT-1",
                   period: tuple[str, str] = ("2026-03-01T00:00:00Z", "2026-03-02T00:00:00Z")) -> Iterator[bytes]:
    """A camt.053.001.08 statement, one entry per line, yielded in pieces (any length)."""
    yield (f'<?xml version="1.0" encoding="UTF-8"?>\n<Document xmlns="{NAMESPACE}"><BkToCstmrStmt>'
           f"<GrpHdr><MsgId>{escape(statement_id)}</MsgId><CreDtTm>{period[1]}</CreDtTm></GrpHdr>"
           f"<Stmt><Id>{escape(statement_id)}</Id><FrToDt><FrDtTm>{period[0]}</FrDtTm><ToDtTm>{period[1]}</ToDtTm>"
           "</FrToDt><Acct><Id><IBAN>IN00BANK0000000000000001</IBAN></Id></Acct>").encode()
    for n, line in enumerate(lines, start=1):
        purpose = f"<Purp><Prtry>{line.chaincode}</Prtry></Purp>" if line.chaincode else ""
        yield (f'<Ntry><NtryRef>{n}</NtryRef><Amt Ccy="{line.currency}">{_major(line.amount)}</Amt>'
               f"<CdtDbtInd>{'DBIT' if line.debit else 'CRDT'}</CdtDbtInd><Sts><Cd>BOOK</Cd></Sts>"
               f"<BookgDt><DtTm>{line.booked}</DtTm></BookgDt><AcctSvcrRef>REF-{n}</AcctSvcrRef>"
               f"<NtryDtls><TxDtls><Refs><EndToEndId>{escape(line.reference)}</EndToEndId></Refs>"
               f"<RltdPties>{_party('Dbtr', line.payer)}{_party('Cdtr', line.payee)}</RltdPties>{purpose}"
               "</TxDtls></NtryDtls></Ntry>\n").encode()
    yield b"</Stmt></BkToCstmrStmt></Document>\n"


def camt053(lines: Iterable[Line], **kwargs) -> bytes:  # type: ignore[no-untyped-def]
    return b"".join(camt053_chunks(lines, **kwargs))


STRIPE_COLUMNS = ("balance_transaction_id,created_utc,currency,gross,fee,net,reporting_category,source_id,"
                  "payment_intent_id,charge_id,payment_metadata[payer],payment_metadata[payee],"
                  "payment_metadata[chaincode],payment_metadata[bank]")


def stripe_report(lines: Iterable[Line]) -> bytes:
    rows = [STRIPE_COLUMNS]
    for n, line in enumerate(lines, start=1):
        created = line.booked.replace("T", " ").removesuffix("Z")
        sign = "-" if line.category != "charge" else ""
        rows.append(f"txn_{n:06d},{created},{line.currency.lower()},{sign}{_major(line.amount)},0.00,"
                    f"{sign}{_major(line.amount)},{line.category},ch_{n:06d},{line.reference},ch_{n:06d},"
                    f"{line.payer},{line.payee},{line.chaincode},{line.processor}")
    return ("\n".join(rows) + "\n").encode()
