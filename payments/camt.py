"""ISO 20022 camt.054 (BankToCustomerDebitCreditNotification) for the bank endpoint: one
notification (``Ntfctn``) reports one booked transaction (``Ntry/NtryDtls/TxDtls``). A credit
(``CRDT``) is a payment; a debit (``DBIT``) returns an earlier credit, named by its
``EndToEndId``. Pure: no ORM.

Parsed with defusedxml: a DTD (and with it every entity declaration, internal or external) is
refused before anything is expanded, so entity bombs and external entities cannot run; the
endpoint caps the body's size before parsing (deliveries.MAX_BODY_BYTES)."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from xml.etree.ElementTree import Element, ParseError

from defusedxml import ElementTree as SafeXML
from defusedxml.common import DefusedXmlException

from .notices import (
    SELLER_CHAINCODES,
    NoticeError,
    PaymentNotice,
    ReturnNotice,
    amount_of,
    currency_of,
    event_id_of,
    minor_exponent,
    moment_of,
    msp_id_of,
)

NAMESPACE_PREFIX = "urn:iso:std:iso:20022:tech:xsd:camt.054."


def looks_like_xml(raw: bytes) -> bool:
    return raw.lstrip()[:1] == b"<"


def _document(raw: bytes) -> Element:
    try:
        root = SafeXML.fromstring(raw, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DefusedXmlException as exc:
        raise NoticeError(f"XML refused: {type(exc).__name__} (DTDs and entities are not accepted)") from None
    except ParseError as exc:
        raise NoticeError(f"body is not well-formed XML: {exc}") from None
    namespace = root.tag[1:].partition("}")[0] if root.tag.startswith("{") else ""
    if not namespace.startswith(NAMESPACE_PREFIX) or root.tag != f"{{{namespace}}}Document":
        raise NoticeError(f"expected an ISO 20022 camt.054 Document ({NAMESPACE_PREFIX}*)")
    return root


class _Reader:
    """Paths of ISO 20022 element names, in the document's namespace."""

    def __init__(self, root: Element):
        self.ns = root.tag[1:].partition("}")[0]

    def path(self, *names: str) -> str:
        return "/".join(f"{{{self.ns}}}{n}" for n in names)

    def one(self, parent: Element, *names: str) -> Element:
        found = parent.findall(self.path(*names))
        if len(found) != 1:
            raise NoticeError(f"camt.054: expected exactly one {'/'.join(names)}, found {len(found)}")
        return found[0]

    def text(self, parent: Element, *names: str, required: bool = True) -> str | None:
        node = parent.find(self.path(*names))
        text = (node.text or "").strip() if node is not None else ""
        if not text:
            if required:
                raise NoticeError(f"camt.054: {'/'.join(names)} is missing")
            return None
        return text


def _minor_units(amount: Element) -> tuple[int, str]:
    currency = currency_of(amount.get("Ccy"))
    try:
        value = Decimal((amount.text or "").strip())
    except InvalidOperation:
        raise NoticeError("camt.054: Amt must be a decimal number") from None
    minor = value.scaleb(minor_exponent(currency))
    if not value.is_finite() or minor != minor.to_integral_value():
        raise NoticeError(f"camt.054: Amt {amount.text!r} has more decimals than {currency} allows")
    return amount_of(int(minor)), currency


def _party(r: _Reader, tx: Element, role: str) -> str:
    return msp_id_of(role.lower(), r.text(tx, "RltdPties", role, "Pty", "Id", "OrgId", "Othr", "Id"))


def camt054_notice(raw: bytes, *, bank: str) -> PaymentNotice | ReturnNotice:
    """The one transaction a camt.054 notification reports, as a payment (CRDT) or a return
    (DBIT). ``bank`` is the bank whose secret signed it. The chaincode is the remittance
    information (``RmtInf/Ustrd``) when it names one, else left for the parties to decide
    (``chaincode == ""``)."""
    root = _document(raw)
    r = _Reader(root)
    message = r.one(root, "BkToCstmrDbtCdtNtfctn")
    notification = r.one(message, "Ntfctn")
    entry = r.one(notification, "Ntry")
    tx = r.one(entry, "NtryDtls", "TxDtls")
    event_id = event_id_of(r.text(notification, "Id"), "Ntfctn/Id")
    end_to_end = event_id_of(r.text(tx, "Refs", "EndToEndId"), "EndToEndId")
    amount_node = tx.find(r.path("Amt"))
    amount, currency = _minor_units(amount_node if amount_node is not None else r.one(entry, "Amt"))
    direction = r.text(tx, "CdtDbtInd", required=False) or r.text(entry, "CdtDbtInd")
    if direction == "DBIT":
        reason = r.text(tx, "RtrInf", "Rsn", "Cd", required=False) or ""
        return ReturnNotice(event_id=event_id, end_to_end_id=end_to_end, amount=amount, currency=currency,
                            reason=reason)
    if direction != "CRDT":
        raise NoticeError("camt.054: CdtDbtInd must be CRDT or DBIT")
    booked = (r.text(entry, "BookgDt", "DtTm", required=False) or r.text(entry, "ValDt", "DtTm", required=False)
              or r.text(message, "GrpHdr", "CreDtTm"))
    ustrd = r.text(tx, "RmtInf", "Ustrd", required=False)
    return PaymentNotice(event_id=event_id, payment_id=end_to_end, bank=bank, payer=_party(r, tx, "Dbtr"),
                         payee=_party(r, tx, "Cdtr"), chaincode=ustrd if ustrd in SELLER_CHAINCODES else "",
                         amount=amount, currency=currency, paid_at=moment_of(booked))
