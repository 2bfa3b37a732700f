"""The font GridCoin's PDFs (donation receipts, monthly statements) are drawn in.

PDF fonts must hold every glyph they draw and ReportLab does not shape complex scripts: DejaVu
Sans where the system has it (Latin, ₹), else ReportLab's own Vera. A document whose text needs
glyphs the font lacks (Hindi's Devanagari) falls back to English labels and currency codes
rather than printing empty boxes; ``font_covers`` is that test."""

from __future__ import annotations

from collections.abc import Iterable
from functools import cache
from pathlib import Path

FONT_NAME = "GridCoinPDF"
FONT_CANDIDATES = [
    Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"),
    Path("/usr/share/fonts/dejavu/DejaVuSans.ttf"),
    Path("/usr/share/fonts/TTF/DejaVuSans.ttf"),
]


@cache
def pdf_font() -> tuple[str, frozenset[int]]:
    """(registered font name, set of code points it has)."""
    import reportlab
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.ttfonts import TTFont

    bundled = Path(reportlab.__file__).parent / "fonts" / "Vera.ttf"
    path = next((p for p in FONT_CANDIDATES if p.exists()), bundled)
    font = TTFont(FONT_NAME, str(path))
    pdfmetrics.registerFont(font)
    return FONT_NAME, frozenset(font.face.charToGlyph)


def font_covers(texts: Iterable[str]) -> bool:
    """Whether the PDF font has a glyph for every visible character of ``texts``."""
    _name, glyphs = pdf_font()
    return all(ord(ch) in glyphs for text in texts for ch in text if not ch.isspace())
