"""Charts for the pages: a device's energy by hour and day, a wallet's balance by day, the
utility's minted and burned energy and its sales. Each chart is one ``Chart``: the page gets its
payload through ``json_script`` (drawn by ``static/frontend/charts.js``) and its table from the
very same figures, so what is drawn and what a screen reader reads never disagree.

Periods are hours and days of the current time zone (the utility's, ``django.utils.timezone``):
the database sums per period, this module lays out every period of the range, empty ones as 0."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext as _
from django.utils.translation import pgettext

from ledger import selectors as ledger
from ledger.keys import PRODUCER_KINDS
from ledger.units import format_amount
from payments import selectors as payment_selectors
from wallet import selectors as wallet_selectors

HOURS_OF_DEVICE = 24
DAYS_OF_DEVICE = 30
DAYS_OF_WALLET = 30
HOURS_OF_ISSUANCE = 48
DAYS_OF_SALES = 30
ENERGY_SCALE = 3  # Wh shown as kWh
KWH = "kWh"


@dataclass(frozen=True)
class Series:
    label: str
    values: list[int]  # ledger units (Wh, or a currency's minor units)


@dataclass(frozen=True)
class Chart:
    name: str  # unique on its page: the element ids derive from it
    title: str
    kind: str  # "bars" or "line"
    unit: str
    scale: int  # decimal places between the values and the unit
    period: str  # what a label names: "Hour", "Day"
    labels: list[str]
    series: list[Series]

    @property
    def element_id(self) -> str:
        return f"chart-{self.name}"

    @property
    def data_id(self) -> str:
        return f"chart-{self.name}-data"

    @property
    def has_data(self) -> bool:
        return any(v for s in self.series for v in s.values)

    def shown(self, value: int) -> str:
        return format_amount(value, self.scale)

    @property
    def rows(self) -> list[tuple[str, list[str]]]:
        """The table: one row per period, one cell per series, as displayed."""
        return [(label, [self.shown(s.values[n]) for s in self.series]) for n, label in enumerate(self.labels)]

    @property
    def summary(self) -> str:
        """One sentence for the canvas's ``aria-label``: totals and the busiest period."""
        parts = []
        for s in self.series:
            if self.kind == "line":
                parts.append(_("%(series)s: %(first)s %(unit)s at the start, %(last)s %(unit)s at the end") % {
                    "series": s.label, "first": self.shown(s.values[0]), "last": self.shown(s.values[-1]),
                    "unit": self.unit})
            elif any(s.values):
                peak = max(range(len(s.values)), key=lambda n: s.values[n])
                parts.append(_("%(series)s: %(total)s %(unit)s in all, most in %(peak)s (%(most)s %(unit)s)") % {
                    "series": s.label, "total": self.shown(sum(s.values)), "unit": self.unit,
                    "peak": self.labels[peak], "most": self.shown(s.values[peak])})
            else:
                parts.append(_("%(series)s: none") % {"series": s.label})
        return f"{self.title}. " + "; ".join(parts) + "."

    def payload(self) -> dict:
        return {"title": self.title, "kind": self.kind, "unit": self.unit, "scale": self.scale,
                "period": self.period, "labels": self.labels,
                "series": [{"label": s.label, "values": s.values} for s in self.series]}


# --- periods -------------------------------------------------------------------------------

def hour_starts(now: datetime, hours: int) -> list[datetime]:
    """The starts of the last ``hours`` local hours, the current one last. Stepped in UTC, so
    a daylight-saving change neither repeats nor skips an hour."""
    top = timezone.localtime(now).replace(minute=0, second=0, microsecond=0).astimezone(UTC)
    zone = timezone.get_current_timezone()
    return [(top - timedelta(hours=n)).astimezone(zone) for n in reversed(range(hours))]


def day_list(now: datetime, days: int) -> list[date]:
    """The last ``days`` local days, today last."""
    today = timezone.localdate(now)
    return [today - timedelta(days=n) for n in reversed(range(days))]


def _hour_label(start: datetime) -> str:
    return date_format(timezone.localtime(start), "H:i")


def _day_label(day: date) -> str:
    return date_format(day, "j M")


def _by_hour(sums: dict, starts: list[datetime]) -> list:
    found = {key.astimezone(UTC): value for key, value in sums.items()}
    return [found.get(start.astimezone(UTC)) for start in starts]


def _until(starts: list[datetime]) -> datetime:
    return starts[-1].astimezone(UTC) + timedelta(hours=1)


def _day_range(days: list[date]) -> tuple[datetime, datetime]:
    zone = timezone.get_current_timezone()
    return (datetime.combine(days[0], datetime.min.time(), tzinfo=zone),
            datetime.combine(days[-1] + timedelta(days=1), datetime.min.time(), tzinfo=zone))


# --- a device ------------------------------------------------------------------------------

def device_charts(device, now: datetime | None = None) -> list[Chart]:
    """A device's energy by hour (last 24 h) and by day (last 30 days): what its meter drew, or
    for a producer meter what it produced. Private: callers check ``may_see_consumption``."""
    now = now or timezone.now()
    producer = device.kind in PRODUCER_KINDS
    label = _("Production") if producer else _("Consumption")
    starts = hour_starts(now, HOURS_OF_DEVICE)
    hourly = ledger.meter_energy_by_period(identity_id=device.identity_id, device_kind=device.kind,
                                           since=starts[0], until=_until(starts), bucket="hour")
    days = day_list(now, DAYS_OF_DEVICE)
    since, until = _day_range(days)
    daily = ledger.meter_energy_by_period(identity_id=device.identity_id, device_kind=device.kind,
                                          since=since, until=until, bucket="day")
    return [
        Chart(name="device-hour", kind="bars", unit=KWH, scale=ENERGY_SCALE, period=_("Hour"),
              title=(_("Production by hour, last 24 hours") if producer else _("Consumption by hour, last 24 hours")),
              labels=[_hour_label(s) for s in starts],
              series=[Series(label, [v or 0 for v in _by_hour(hourly, starts)])]),
        Chart(name="device-day", kind="bars", unit=KWH, scale=ENERGY_SCALE, period=_("Day"),
              title=(_("Production by day, last 30 days") if producer else _("Consumption by day, last 30 days")),
              labels=[_day_label(d) for d in days], series=[Series(label, [daily.get(d, 0) for d in days])]),
    ]


# --- a wallet ------------------------------------------------------------------------------

def wallet_chart(user, now: datetime | None = None) -> Chart:
    """The coins the user's organisations hold to spend, at the end of each of the last 30 days."""
    days = day_list(now or timezone.now(), DAYS_OF_WALLET)
    series = wallet_selectors.energy_balance_by_day(user, first_day=days[0], last_day=days[-1])
    return Chart(name="wallet-balance", kind="line", unit=KWH, scale=ENERGY_SCALE, period=_("Day"),
                 title=_("Your coins over the last 30 days"), labels=[_day_label(d) for d, _wh in series],
                 series=[Series(pgettext("chart series", "Coins"), [wh for _day, wh in series])])


# --- the utility's dashboard ---------------------------------------------------------------

def issuance_chart(now: datetime | None = None) -> Chart:
    """Energy minted (producers' meters) and burned (consumers' meters) per hour, last 48 h."""
    starts = hour_starts(now or timezone.now(), HOURS_OF_ISSUANCE)
    sums = _by_hour(ledger.energy_issuance_by_period(since=starts[0], until=_until(starts), bucket="hour"), starts)
    return Chart(name="issuance-hour", kind="bars", unit=KWH, scale=ENERGY_SCALE, period=_("Hour"),
                 title=_("Energy minted and burned per hour, last 48 hours"),
                 labels=[_hour_label(s) for s in starts],
                 series=[Series(_("Minted"), [m[0] if m else 0 for m in sums]),
                         Series(_("Burned"), [m[1] if m else 0 for m in sums])])


def sales_charts(utility_msp_id: str, now: datetime | None = None) -> list[Chart]:
    """Retail sales settled per day (last 30 days), one chart per currency sold in."""
    days = day_list(now or timezone.now(), DAYS_OF_SALES)
    since, until = _day_range(days)
    sums = payment_selectors.retail_sales_by_day(payee=utility_msp_id, since=since, until=until)
    scales = dict(payment_selectors.fiat_assets().values_list("code", "scale"))
    charts = []
    for currency in sorted({c for _day, c in sums}):
        charts.append(Chart(
            name=f"sales-{currency.lower()}", kind="bars", unit=currency, scale=scales.get(currency, 2),
            period=_("Day"), title=_("Sales per day in %(currency)s, last 30 days") % {"currency": currency},
            labels=[_day_label(d) for d in days],
            series=[Series(_("Sales"), [sums.get((d, currency), 0) for d in days])]))
    return charts
