"""A donation's printable receipt (PDF, ReportLab): the charity, the campaign, the amount in its
currency and the energy it bought, formatted as the donor reads them (Babel, the active
language), the date in the utility's time zone, the ledger transaction and how to verify it.

PDF fonts must hold every glyph they draw and ReportLab does not shape complex scripts: the
receipt uses DejaVu Sans where the system has it (Latin, ₹) else ReportLab's own Vera, and
when the active language's text needs glyphs that font lacks (Hindi's Devanagari), the labels
fall back to English and amounts to currency codes, rather than printing empty boxes."""

from __future__ import annotations

import io
from dataclasses import dataclass

from django.utils import timezone, translation
from django.utils.formats import date_format
from django.utils.translation import gettext as _

from frontend.formatting import format_kwh, format_money, zone_abbreviation
from frontend.pdf import font_covers, pdf_font

from .models import Donation


@dataclass(frozen=True)
class ReceiptLine:
    label: str
    value: str


def receipt_lines(donation: Donation, *, verify_url: str, proof_url: str,
                  plain_amounts: bool = False) -> tuple[str, list[ReceiptLine], str]:
    """(title, lines, how to verify) in the active language."""
    campaign = donation.campaign
    if plain_amounts:
        from ledger.units import format_amount
        from payments.notices import minor_exponent

        amount = f"{donation.currency} {format_amount(donation.amount, minor_exponent(donation.currency))}"
        refunded = f"{donation.currency} {format_amount(donation.refunded_amount, minor_exponent(donation.currency))}"
    else:
        amount = format_money(donation.amount, donation.currency)
        refunded = format_money(donation.refunded_amount, donation.currency)
    when = timezone.localtime(donation.created_at)
    lines = [
        ReceiptLine(_("Receipt number"), donation.receipt_number),
        ReceiptLine(_("Charity"), campaign.charity.name),
        ReceiptLine(_("Campaign"), campaign.title),
        ReceiptLine(_("Donor"), donation.donor_name or (donation.donor.get_username() if donation.donor else "—")),
        ReceiptLine(_("Given as"), donation.get_kind_display()),
        ReceiptLine(_("Amount"), amount),
        ReceiptLine(_("Energy bought"), f"{format_kwh(donation.wh)} kWh"),
    ]
    if donation.matched_wh:
        lines.append(ReceiptLine(_("Matched by the sponsor"), f"{format_kwh(donation.matched_wh)} kWh"))
    if donation.refunded_wh or donation.refunded_amount:
        lines.append(ReceiptLine(_("Refunded"), f"{refunded} · {format_kwh(donation.refunded_wh)} kWh"))
    lines += [
        ReceiptLine(_("Date"), f"{date_format(when, 'DATETIME_FORMAT')} ({zone_abbreviation(at=when)})"),
        ReceiptLine(_("Ledger transaction"), donation.tx_hash),
    ]
    how = _("How to verify: open %(verify)s to see the transaction on the ledger (signed in), or fetch its "
            "inclusion proof from %(proof)s. Hash the transaction as a Merkle leaf, combine it with the audit "
            "path and compare the result with the block's Merkle root; the block header is signed by the "
            "orderer.") % {"verify": verify_url, "proof": proof_url}
    return _("Donation receipt"), lines, how


def donation_receipt_pdf(donation: Donation, *, verify_url: str, proof_url: str) -> bytes:
    title, lines, how = receipt_lines(donation, verify_url=verify_url, proof_url=proof_url)
    if not font_covers([title, how, *(f"{line.label}{line.value}" for line in lines)]):
        with translation.override("en"):
            title, lines, how = receipt_lines(donation, verify_url=verify_url, proof_url=proof_url)
            if not font_covers([line.value for line in lines]):
                title, lines, how = receipt_lines(donation, verify_url=verify_url, proof_url=proof_url,
                                                  plain_amounts=True)
    return _render(title, lines, how, donation)


def _render(title: str, lines: list[ReceiptLine], how: str, donation: Donation) -> bytes:
    from xml.sax.saxutils import escape

    from reportlab.lib import colors
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import ParagraphStyle
    from reportlab.lib.units import mm
    from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

    font, _glyphs = pdf_font()
    heading = ParagraphStyle("heading", fontName=font, fontSize=18, leading=22, spaceAfter=6 * mm)
    body = ParagraphStyle("body", fontName=font, fontSize=10, leading=13)
    mono = ParagraphStyle("mono", parent=body, fontSize=8, leading=10)
    buffer = io.BytesIO()
    document = SimpleDocTemplate(buffer, pagesize=A4, leftMargin=20 * mm, rightMargin=20 * mm, topMargin=20 * mm,
                                 bottomMargin=20 * mm, title=f"{title} {donation.receipt_number}",
                                 author=donation.campaign.charity.name,
                                 subject=f"{donation.receipt_number} {donation.currency} {donation.amount} "
                                         f"{donation.wh} Wh {donation.tx_hash}",
                                 creator="GridCoin", invariant=1)
    rows = [[Paragraph(escape(line.label), body),
             Paragraph(escape(line.value), mono if line.value == donation.tx_hash else body)] for line in lines]
    table = Table(rows, colWidths=[45 * mm, None])
    table.setStyle(TableStyle([("VALIGN", (0, 0), (-1, -1), "TOP"),
                               ("LINEBELOW", (0, 0), (-1, -1), 0.25, colors.grey),
                               ("BOTTOMPADDING", (0, 0), (-1, -1), 4), ("TOPPADDING", (0, 0), (-1, -1), 4)]))
    document.build([Paragraph(escape(title), heading), table, Spacer(1, 8 * mm), Paragraph(escape(how), body)])
    return buffer.getvalue()
