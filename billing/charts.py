"""The billing pages' charts: one value per 15-minute slot, drawn by ``frontend/charts.js`` from
the same figures the tables show. A slot without a record is a gap (None), not a zero."""

from __future__ import annotations

from dataclasses import dataclass

from django.utils.formats import date_format
from django.utils.translation import gettext as _

from frontend import charts

from .selectors import FreqSlot, HouseholdSlot

FREQ_SCALE = 2  # centi-hertz shown as Hz
RATE_SCALE = 2  # hundredths of a paisa per kWh shown as paise per kWh
MONEY_SCALE = 2  # paise shown as rupees


@dataclass(frozen=True)
class SlotChart(charts.Chart):
    fit: bool = False  # the y axis spans the values (frequency), not from zero

    @property
    def has_data(self) -> bool:
        return any(v is not None and (self.fit or v) for s in self.series for v in s.values)

    def shown(self, value: int | None) -> str:
        return "—" if value is None else super().shown(value)

    @property
    def summary(self) -> str:
        parts = []
        for s in self.series:
            known = [v for v in s.values if v is not None]
            if self.kind != "line" and any(known):
                peak = max((n for n, v in enumerate(s.values) if v is not None), key=lambda n: s.values[n])
                parts.append(_("%(series)s: %(total)s %(unit)s in all, most in %(peak)s (%(most)s %(unit)s)") % {
                    "series": s.label, "total": self.shown(sum(known)), "unit": self.unit,
                    "peak": self.labels[peak], "most": self.shown(s.values[peak])})
            elif self.kind == "line" and known:
                parts.append(_("%(series)s: from %(low)s to %(high)s %(unit)s") % {
                    "series": s.label, "low": self.shown(min(known)), "high": self.shown(max(known)),
                    "unit": self.unit})
            else:
                parts.append(_("%(series)s: none") % {"series": s.label})
        return f"{self.title}. " + "; ".join(parts) + "."

    def payload(self) -> dict:
        return {**super().payload(), "fit": self.fit}


def slot_label(row: FreqSlot | HouseholdSlot) -> str:
    return date_format(row.start, "H:i")


def frequency_chart(rows: list[FreqSlot]) -> SlotChart:
    return SlotChart(name="grid-frequency", kind="line", unit="Hz", scale=FREQ_SCALE, period=_("Slot"),
                     title=_("Average frequency per 15-minute slot"), labels=[slot_label(r) for r in rows],
                     series=[charts.Series(_("Frequency"), [r.avg_freq for r in rows])], fit=True)


def household_charts(rows: list[HouseholdSlot]) -> list[SlotChart]:
    labels = [slot_label(r) for r in rows]
    return [
        SlotChart(name="household-energy", kind="bars", unit=charts.KWH, scale=charts.ENERGY_SCALE,
                  period=_("Slot"), title=_("Consumption and export per slot"), labels=labels,
                  series=[charts.Series(_("Consumption"), [r.imported if r.unit is not None else None for r in rows]),
                          charts.Series(_("Export"), [r.exported if r.unit is not None else None for r in rows])]),
        SlotChart(name="household-price", kind="line", unit=_("paise/kWh"), scale=RATE_SCALE, period=_("Slot"),
                  title=_("Price per slot"), labels=labels,
                  series=[charts.Series(_("Price"), [r.rate for r in rows])], fit=True),
        SlotChart(name="household-bill", kind="bars", unit="INR", scale=MONEY_SCALE, period=_("Slot"),
                  title=_("Bill per slot (negative: export credited)"), labels=labels,
                  series=[charts.Series(_("Bill"), [r.amount for r in rows])]),
    ]
