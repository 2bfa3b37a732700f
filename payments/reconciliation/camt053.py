"""ISO 20022 camt.053 (BankToCustomerStatement) end-of-day statements, read as a stream.

Hardened: ``lxml`` parses with entity resolution, DTD loading and the network off and libxml2's
own limits on (depth, text size, entity amplification); a document that declares a DTD at all
(the vehicle of billion laughs and XXE) is refused before its first element is read; the
stream is capped in bytes and in lines, and every field is checked against its pattern. Entries are cleared once read, so memory stays
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
from typing import Any, BinaryIO

from lxml import etree

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


def _flatten(elem: Any, cut: int, prefix: str = "", out: dict[str, Any] | None = None) -> dict[str, Any]:
    """Every element under ``elem`` by its path of local names (``Refs/EndToEndId``), in one walk
    (lxml's ``find`` with namespaces parses its path each call: ten times the cost). ``cut`` is
    the length of ``{namespace}``; ``NtryDtls`` is left to the caller, one ``TxDtls`` at a time."""
    out = {} if out is None else out
    for child in elem:
        tag = child.tag
        if not isinstance(tag, str):
            continue  # comments, processing instructions
        key = prefix + tag[cut:]
        if key == "NtryDtls":
            continue
        if key not in out:
            out[key] = child
        if len(child):
            _flatten(child, cut, key + "/", out)
    return out


def _is_stmt(elem: Any) -> bool:
    """``etree.QName(elem).localname == "Stmt"`` without building a QName (twice per entry)."""
    tag = elem.tag
    return tag == "Stmt" or tag.endswith("}Stmt")


class _Fields:
    """The elements of one entry (or transaction) by path."""

    def __init__(self, elements: dict[str, Any]):
        self.elements = elements

    def find(self, path: str) -> Any:
        return self.elements.get(path)

    def text(self, path: str) -> str:
        elem = self.elements.get(path)
        value = (elem.text or "") if elem is not None else ""
        if len(value) > _MAX_TEXT:
            raise StatementError(f"<{path}> holds more than {_MAX_TEXT} characters")
        return value.strip()

    def moment(self, path: str, *, where: str) -> datetime | None:
        """``<DtTm>`` (ISO 8601; no offset means UTC) or ``<Dt>`` (the day, at midnight UTC)."""
        text = self.text(f"{path}/DtTm")
        day = "" if text else self.text(f"{path}/Dt")
        try:
            if text:
                value = datetime.fromisoformat(text.replace("Z", "+00:00"))
                return value if value.tzinfo else value.replace(tzinfo=UTC)
            return datetime.combine(date.fromisoformat(day), time(), tzinfo=UTC) if day else None
        except ValueError:
            raise StatementError(f"{where}: {text or day!r} is not an ISO 8601 date") from None

    def party(self, role: str, *, where: str) -> str:
        # Pty wraps the party from camt.053.001.08 on; earlier versions put Id directly under it.
        value = (self.text(f"RltdPties/{role}/Pty/Id/OrgId/Othr/Id")
                 or self.text(f"RltdPties/{role}/Id/OrgId/Othr/Id"))
        return party_of(value, where=where, name=f"{role} id")


class Camt053Reader(StatementReader):
    def __init__(self, stream: BinaryIO, *, max_bytes: int = MAX_BYTES, max_lines: int = MAX_LINES):
        self._stream = CappedReader(stream, max_bytes)
        self._max_lines = max_lines
        self.header = StatementHeader()

    def lines(self) -> Iterator[StatementLine]:
        try:
            yield from self._lines()
        except etree.XMLSyntaxError as exc:
            raise StatementError(f"the statement is not well-formed XML: {exc}") from None

    def _lines(self) -> Iterator[StatementLine]:
        events = etree.iterparse(self._stream, events=("start", "end"), tag=("{*}Stmt", "{*}Ntry"),
                                 resolve_entities=False, load_dtd=False, no_network=True, dtd_validation=False,
                                 huge_tree=False, remove_comments=True, remove_pis=True)
        cut: int | None = None
        count = statements = 0
        for event, elem in events:
            if cut is None:
                cut = len(self._check_document(elem)) + 2  # "{" namespace "}"
            if event == "start":
                continue
            if _is_stmt(elem):
                statements += 1
                if statements > 1:
                    raise StatementError("one statement per file: this file holds several <Stmt>")
                self._read_header(elem, cut)
                continue
            stmt = elem.getparent()
            if stmt is None or not _is_stmt(stmt):
                raise StatementError("an <Ntry> outside BkToCstmrStmt/Stmt")
            if not self.header.statement_id:
                self._read_header(stmt, cut)  # Id and FrToDt come before the first entry
            for line in self._entry(elem, count, cut):
                count += 1
                if count > self._max_lines:
                    raise StatementError(f"the statement has more than {self._max_lines:,} lines")
                yield line
            stmt.remove(elem)  # read: drop it, so memory does not grow with the statement
        if cut is None:
            if events.root is not None:
                self._check_document(events.root)  # refuses a DTD (or a foreign root) by name
            raise StatementError("not a camt.053 statement: no BkToCstmrStmt/Stmt")

    @staticmethod
    def _check_document(elem: Any) -> str:
        tree = elem.getroottree()
        info = tree.docinfo
        if info.doctype or info.internalDTD is not None or info.externalDTD is not None:
            raise StatementError("refused hostile XML: a DTD (DOCTYPE) is not accepted in a statement "
                                 "(entities and external references come through it)")
        root = etree.QName(tree.getroot())
        if root.localname != "Document" or not (root.namespace or "").startswith(NAMESPACE_PREFIX):
            raise StatementError(f"not a camt.053 statement: the root is {root.text!r} "
                                 f"(expected Document in {NAMESPACE_PREFIX}xx)")
        return root.namespace or ""

    def _read_header(self, stmt: Any, cut: int) -> None:
        fields = _Fields({e.tag[cut:]: e for e in stmt if isinstance(e.tag, str) and e.tag[cut:] in ("Id", "FrToDt")}
                         | {f"FrToDt/{e.tag[cut:]}": e for e in stmt.iterchildren("{*}FrToDt") for e in e})
        self.header.statement_id = reference_of(fields.text("Id"), where="Stmt/Id", name="statement id")
        for attr, tag in (("period_start", "FrDtTm"), ("period_end", "ToDtTm")):
            text = fields.text(f"FrToDt/{tag}")
            if not text:
                continue
            try:
                value = datetime.fromisoformat(text.replace("Z", "+00:00"))
            except ValueError:
                raise StatementError(f"FrToDt/{tag}: {text!r} is not an ISO 8601 date-time") from None
            setattr(self.header, attr, value if value.tzinfo else value.replace(tzinfo=UTC))

    def _entry(self, entry: Any, before: int, cut: int) -> Iterator[StatementLine]:
        where = f"entry {before + 1}"
        f = _Fields(_flatten(entry, cut))
        indicator = f.text("CdtDbtInd")
        if indicator not in ("CRDT", "DBIT"):
            raise StatementError(f"{where}: CdtDbtInd must be CRDT or DBIT, not {indicator!r}")
        status = f.text("Sts/Cd") or f.text("Sts")
        entry_amount = f.find("Amt")
        booked_at = f.moment("BookgDt", where=f"{where} BookgDt")
        source_ref = f.text("AcctSvcrRef") or f.text("NtryRef")
        details = [tx for block in entry.iterchildren("{*}NtryDtls") for tx in block.iterchildren("{*}TxDtls")]
        if not details:
            raise StatementError(f"{where}: no NtryDtls/TxDtls (the end-to-end id is needed to reconcile)")
        for n, tx_elem in enumerate(details, start=1):
            here = f"{where} transaction {n}" if len(details) > 1 else where
            tx = _Fields(_flatten(tx_elem, cut))
            amount_elem = tx.find("Amt")
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
            end_to_end = tx.text("Refs/EndToEndId")
            if kind == OTHER and not end_to_end:
                reference = ""  # a fee or a pending entry need not name a payment
            else:
                reference = reference_of(end_to_end, where=here, name="EndToEndId")
            yield StatementLine(
                line_no=before + n, kind=kind, reference=reference,
                source_ref=(tx.text("Refs/AcctSvcrRef") or source_ref)[:255],
                amount=amount, currency=currency, booked_at=booked_at,
                payer=tx.party("Dbtr", where=here), payee=tx.party("Cdtr", where=here),
                chaincode=party_of(tx.text("Purp/Prtry"), where=here, name="Purp/Prtry"),
                note=note,
            )
