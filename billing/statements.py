"""A household's monthly statement (PDF, ReportLab) and a day's slots as CSV.

The PDF follows ``charity.receipts``: DejaVu Sans where the system has it (Latin, ₹) else
ReportLab's Vera; when the active language needs glyphs the font lacks (Hindi's Devanagari,
which ReportLab cannot shape anyway) the labels fall back to English and amounts to currency
codes, rather than printing empty boxes. The CSV carries the ledger's own integers (Wh,
centi-hertz, hundredths of a paisa per kWh, paise) so a spreadsheet can check every bill."""

from __future__ import annotations

import csv
import io

from django.utils import translation
from django.utils.formats import date_format
from django.utils.translation import gettext as _

from frontend.formatting import format_kwh, format_money
from frontend.pdf import font_covers, pdf_font

from .selectors import HouseholdSlot, MonthStatement

CSV_COLUMNS = ["slot_start", "slot_end", "avg_freq_centihz", "unit_wh", "import_wh", "export_wh",
               "rate_centipaise_per_kwh", "amount_paise", "currency", "tariff", "bill_version"]


def day_csv(rows: list[HouseholdSlot]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for r in rows:
        writer.writerow([r.start.isoformat(), r.end.isoformat(), _blank(r.avg_freq), _blank(r.unit),
                         r.imported if r.unit is not None else "", r.exported if r.unit is not None else "",
                         _blank(r.rate), _blank(r.amount), "INR" if r.amount is not None else "", r.tariff,
                         _blank(r.version)])
    return out.getvalue()


def _blank(value: int | None) -> str | int:
    return "" if value is None else value


def _money(paise: int, plain: bool) -> str:
    if plain:
        from ledger.units import format_amount

        return f"INR {format_amount(paise, 2)}"
    return format_money(paise, "INR")


def statement_texts(statement: MonthStatement, *, plain: bool = False) -> dict:
    """Every text of the statement in the active language."""
    totals = statement.totals
    dues = statement.dues
    month = date_format(statement.month, "YEAR_MONTH_FORMAT")
    head = [
        (_("Household"), f"{statement.name} ({statement.society})"),
        (_("Month"), month),
        (_("Energy used"), f"{format_kwh(totals.imported)} kWh"),
        (_("Energy exported"), f"{format_kwh(totals.exported)} kWh"),
        (_("Billed this month"), _money(totals.amount, plain)),
        (_("Paid this month"), _money(sum(p.amount for p in statement.payments), plain)),
        (_("Slots billed"), f"{totals.billed} / {totals.slots}"),
        (_("Outstanding dues now"), _money(dues.outstanding, plain)),
        (_("Of which fines"), _money(dues.open_fines, plain)),
        (_("Credit"), _money(dues.credit, plain)),
        (_("Bill account"), dues.account),
    ]
    columns = [_("Day"), _("Used (kWh)"), _("Exported (kWh)"), _("Billed")]
    days = [[date_format(d.day, "SHORT_DATE_FORMAT"), format_kwh(d.totals.imported), format_kwh(d.totals.exported),
             _money(d.totals.amount, plain)] for d in statement.days]
    payments = [[date_format(p.paid_at, "SHORT_DATE_FORMAT"), _money(p.amount, plain), p.event_id]
                 for p in statement.payments]
    note = _("Each 15-minute slot is priced at the rate the tariff gives for the grid's average frequency in that "
             "slot; export is credited at the same rate. Days in the %(zone)s time zone. Every bill is a record "
             "on the ledger.") % {"zone": statement.timezone}
    return {"title": _("Electricity statement"), "head": head, "columns": columns, "days": days, "note": note,
            "payments_title": _("Payments of dues"), "payments_columns": [_("Date"), _("Amount"), _("Payment")],
            "payments": payments}


def _all_text(texts: dict) -> list[str]:
    return [texts["title"], texts["note"], texts["payments_title"], *texts["columns"], *texts["payments_columns"],
            *(a + b for a, b in texts["head"]), *(c for row in texts["days"] + texts["payments"] for c in row)]


def statement_pdf(statement: MonthStatement) -> bytes:
    texts = statement_texts(statement)
    if not font_covers(_all_text(texts)):
        with translation.override("en"):
            texts = statement_texts(statement)
            if not font_covers(_all_text(texts)):
                texts = statement_texts(statement, plain=True)
    return _render(texts, statement)


def _render(texts: dict, statement: MonthStatement) -> bytes:
    from xml.sax.saxutils import escape

    from reportlab.lib import colors
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import ParagraphStyle
    from reportlab.lib.units import mm
    from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

    font, _glyphs = pdf_font()
    heading = ParagraphStyle("heading", fontName=font, fontSize=18, leading=22, spaceAfter=6 * mm)
    body = ParagraphStyle("body", fontName=font, fontSize=10, leading=13)
    buffer = io.BytesIO()
    month = statement.month.strftime("%Y-%m")
    document = SimpleDocTemplate(buffer, pagesize=A4, leftMargin=20 * mm, rightMargin=20 * mm, topMargin=20 * mm,
                                 bottomMargin=20 * mm, title=f"{texts['title']} {month}", author="GridCoin",
                                 subject=f"{statement.society} {month} INR {statement.totals.amount}",
                                 creator="GridCoin", invariant=1)
    grid = TableStyle([("VALIGN", (0, 0), (-1, -1), "TOP"), ("LINEBELOW", (0, 0), (-1, -1), 0.25, colors.grey),
                       ("BOTTOMPADDING", (0, 0), (-1, -1), 3), ("TOPPADDING", (0, 0), (-1, -1), 3)])
    head = Table([[Paragraph(escape(a), body), Paragraph(escape(b), body)] for a, b in texts["head"]],
                 colWidths=[55 * mm, None])
    head.setStyle(grid)
    days = Table([[Paragraph(escape(c), body) for c in texts["columns"]]]
                 + [[Paragraph(escape(c), body) for c in row] for row in texts["days"]],
                 colWidths=[40 * mm, 40 * mm, 40 * mm, None], repeatRows=1)
    days.setStyle(grid)
    story = [Paragraph(escape(texts["title"]), heading), head, Spacer(1, 6 * mm), days, Spacer(1, 6 * mm)]
    if texts["payments"]:
        payments = Table([[Paragraph(escape(c), body) for c in texts["payments_columns"]]]
                         + [[Paragraph(escape(c), body) for c in row] for row in texts["payments"]],
                         colWidths=[40 * mm, 40 * mm, None], repeatRows=1)
        payments.setStyle(grid)
        story += [Paragraph(escape(texts["payments_title"]), body), Spacer(1, 2 * mm), payments, Spacer(1, 6 * mm)]
    document.build([*story, Paragraph(escape(texts["note"]), body)])
    return buffer.getvalue()
