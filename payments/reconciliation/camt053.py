"""ISO 20022 camt.053 (BankToCustomerStatement) end-of-day statements, read as a stream.

Hardened: ``defusedxml`` refuses any DTD, entity declaration or external reference before a
single entity is expanded (billion laughs, XXE), the stream is capped in bytes and in lines,
and every field is checked against its pattern. Entries are cleared once read, so memory stays
flat however long the statement is. Only booked (``BOOK``) credit entries are payments to
reconcile; debits (returns, fees) and pending entries are kept as ``OTHER`` lines.

The parts of ``Document/BkToCstmrStmt/Stmt`` read (any camt.053.001.xx version):
``Id``, ``FrToDt/FrDtTm|ToDtTm``; per ``Ntry``: ``Amt@Ccy``, ``CdtDbtInd``, ``Sts`` (``Cd`` from
version 08), ``BookgDt/DtTm|Dt``, ``AcctSvcrRef``; per ``NtryDtls/TxDtls`` (one line each):
``Refs/EndToEndId``, ``Amt@Ccy`` (the entry's when absent), ``RltdPties/Dbtr|Cdtr`` (the
organisation id in ``Pty/Id/OrgId/Othr/Id``, or ``Id/OrgId/Othr/Id`` before version 08) and
``Purp/Prtry`` (the seller chaincode, when the bank passes it on).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, time
from typing import BinaryIO
from xml.etree.ElementTree import Element, ParseError

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import iterparse

from .statements import (
    OTHER,
    PAYMENT,
    CappedReader,
    StatementError,
    StatementHeader,
    StatementLine,
    StatementReader,
    currency_of,
    minor_units,
    party_of,
    reference_of,
)

NAMESPACE_PREFIX = "urn:iso:std:iso:20022:tech:xsd:camt.053.001."
MAX_BYTES = 512 * 1024 * 1024
MAX_LINES = 1_000_000
_MAX_TEXT = 1024  # no field of a statement is longer; a longer one is an attack or garbage
_MAX_DEPTH = 32


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _child(elem: Element | None, *path: str) -> Element | None:
    for name in path:
        if elem is None:
            return None
        elem = next((c for c in elem if _local(c.tag) == name), None)
    return elem


def _text(elem: Element | None, *path: str) -> str:
    found = _child(elem, *path)
    return (found.text or "").strip() if found is not None else ""


def _datetime_of(elem: Element | None, *, where: str) -> datetime | None:
    """``<DtTm>`` (ISO 8601; no offset means UTC) or ``<Dt>`` (the day, at midnight UTC)."""
    if elem is None:
        return None
    text = _text(elem, "DtTm")
    try:
        if text:
            value = datetime.fromisoformat(text.replace("Z", "+00:00"))
            return value if value.tzinfo else value.replace(tzinfo=UTC)
        day = _text(elem, "Dt")
        return datetime.combine(date.fromisoformat(day), time(), tzinfo=UTC) if day else None
    except ValueError:
        raise StatementError(f"{where}: {text or _text(elem, 'Dt')!r} is not an ISO 8601 date") from None


def _party(tx: Element, role: str, *, where: str) -> str:
    party = _child(tx, "RltdPties", role)
    if party is None:
        return ""
    holder = _child(party, "Pty") if _child(party, "Pty") is not None else party
    return party_of(_text(holder, "Id", "OrgId", "Othr", "Id"), where=where, name=f"{role} id")


class Camt053Reader(StatementReader):
    def __init__(self, stream: BinaryIO, *, max_bytes: int = MAX_BYTES, max_lines: int = MAX_LINES):
        self._stream = CappedReader(stream, max_bytes)
        self._max_lines = max_lines
        self.header = StatementHeader()

    def lines(self) -> Iterator[StatementLine]:
        try:
            yield from self._lines()
        except DefusedXmlException as exc:
            raise StatementError(f"refused hostile XML: {type(exc).__name__} (DTDs, entities and external "
                                 "references are not accepted)") from None
        except ParseError as exc:
            raise StatementError(f"the statement is not well-formed XML: {exc}") from None

    def _lines(self) -> Iterator[StatementLine]:
        events = iterparse(self._stream, events=("start", "end"), forbid_dtd=True, forbid_entities=True,
                           forbid_external=True)
        stack: list[Element] = []
        count = 0
        statements = 0
        for event, elem in events:
            name = _local(elem.tag)
            if event == "start":
                if not stack:
                    self._check_root(elem)
                stack.append(elem)
                if len(stack) > _MAX_DEPTH:
                    raise StatementError(f"the statement nests elements deeper than {_MAX_DEPTH}")
                continue
            stack.pop()
            if elem.text and len(elem.text) > _MAX_TEXT:
                raise StatementError(f"<{name}> holds more than {_MAX_TEXT} characters")
            parent = _local(stack[-1].tag) if stack else ""
            if name == "Stmt":
                statements += 1
                if statements > 1:
                    raise StatementError("one statement per file: this file holds several <Stmt>")
            elif parent == "Stmt" and name == "Id":
                self.header.statement_id = reference_of(elem.text or "", where="Stmt/Id", name="statement id")
            elif parent == "Stmt" and name == "FrToDt":
                self._period(elem)
            elif name == "Ntry" and parent == "Stmt":
                for line in self._entry(elem, count):
                    count += 1
                    if count > self._max_lines:
                        raise StatementError(f"the statement has more than {self._max_lines:,} lines")
                    yield line
                stack[-1].remove(elem)  # read: drop it, so memory does not grow with the statement
        if not self.header.statement_id:
            raise StatementError("the statement has no BkToCstmrStmt/Stmt/Id")

    @staticmethod
    def _check_root(elem: Element) -> None:
        namespace = elem.tag[1:].split("}", 1)[0] if elem.tag.startswith("{") else ""
        if _local(elem.tag) != "Document" or not namespace.startswith(NAMESPACE_PREFIX):
            raise StatementError(f"not a camt.053 statement: the root is {elem.tag!r} "
                                 f"(expected Document in {NAMESPACE_PREFIX}xx)")

    def _period(self, elem: Element) -> None:
        for attr, tag in (("period_start", "FrDtTm"), ("period_end", "ToDtTm")):
            text = _text(elem, tag)
            if not text:
                setattr(self.header, attr, None)
                continue
            try:
                value = datetime.fromisoformat(text.replace("Z", "+00:00"))
            except ValueError:
                raise StatementError(f"FrToDt/{tag}: {text!r} is not an ISO 8601 date-time") from None
            setattr(self.header, attr, value if value.tzinfo else value.replace(tzinfo=UTC))

    def _entry(self, entry: Element, before: int) -> Iterator[StatementLine]:
        where = f"entry {before + 1}"
        indicator = _text(entry, "CdtDbtInd")
        if indicator not in ("CRDT", "DBIT"):
            raise StatementError(f"{where}: CdtDbtInd must be CRDT or DBIT, not {indicator!r}")
        status = _text(entry, "Sts", "Cd") or _text(entry, "Sts")
        entry_amount = _child(entry, "Amt")
        booked_at = _datetime_of(_child(entry, "BookgDt"), where=f"{where} BookgDt")
        source_ref = _text(entry, "AcctSvcrRef") or _text(entry, "NtryRef")
        details = [tx for d in entry if _local(d.tag) == "NtryDtls" for tx in d if _local(tx.tag) == "TxDtls"]
        if not details:
            raise StatementError(f"{where}: no NtryDtls/TxDtls (the end-to-end id is needed to reconcile)")
        for n, tx in enumerate(details, start=1):
            here = f"{where} transaction {n}" if len(details) > 1 else where
            amount_elem = _child(tx, "Amt")
            if amount_elem is None:
                if len(details) > 1:
                    raise StatementError(f"{here}: a batched entry needs TxDtls/Amt on every transaction")
                amount_elem = entry_amount
            if amount_elem is None:
                raise StatementError(f"{here}: no Amt")
            currency = currency_of(amount_elem.get("Ccy", ""), where=here)
            amount = minor_units((amount_elem.text or "").strip(), currency, where=here)
            if amount <= 0:
                raise StatementError(f"{here}: Amt must be positive (the direction is CdtDbtInd)")
            kind, note = PAYMENT, ""
            if indicator == "DBIT":
                kind, note = OTHER, "debit entry (a return or payment out), not a settled incoming payment"
            elif status != "BOOK":
                kind, note = OTHER, f"entry status {status or 'missing'}, not booked"
            end_to_end = _text(tx, "Refs", "EndToEndId")
            if kind == OTHER and not end_to_end:
                reference = ""  # a fee or a pending entry need not name a payment
            else:
                reference = reference_of(end_to_end, where=here, name="EndToEndId")
            yield StatementLine(
                line_no=before + n, kind=kind, reference=reference,
                source_ref=(_text(tx, "Refs", "AcctSvcrRef") or source_ref)[:255],
                amount=amount, currency=currency, booked_at=booked_at,
                payer=_party(tx, "Dbtr", where=here), payee=_party(tx, "Cdtr", where=here),
                chaincode=party_of(_text(tx, "Purp", "Prtry"), where=here, name="Purp/Prtry"),
                note=note,
            )
