"""Forms of the resident pages. Amounts arrive as decimals and become integer units here
(never floats); everything else is checked again by the service and the ledger."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from decimal import Decimal

from django import forms
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

DATETIME_LOCAL = forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M")


def new_idempotency_key() -> str:
    return str(uuid.uuid4())


class IdempotentForm(forms.Form):
    # Generated when the form is rendered: submitting the same page twice moves coins once.
    idempotency_key = forms.UUIDField(widget=forms.HiddenInput)

    @classmethod
    def fresh(cls, *, initial: dict | None = None, **kwargs):
        """An unbound form with a new key (after the ledger has recorded the last one)."""
        return cls(initial={"idempotency_key": new_idempotency_key(), **(initial or {})}, **kwargs)


class FundForm(IdempotentForm):
    public_id = forms.SlugField(
        label=gettext_lazy("Device id"), max_length=32,
        help_text=gettext_lazy("Printed on the device's sticker, e.g. SL-0001."),
        widget=forms.TextInput(attrs={"autocapitalize": "characters", "autocorrect": "off", "spellcheck": "false",
                                      "placeholder": "SL-0001"}),
    )
    amount_kwh = forms.DecimalField(
        label=gettext_lazy("Amount (kWh)"), max_digits=12, decimal_places=3, min_value=Decimal("0.001"),
        help_text=gettext_lazy("Up to three decimals (1 kWh = 1 k)."),
        widget=forms.NumberInput(attrs={"step": "0.001", "min": "0.001", "inputmode": "decimal"}),
    )
    # A window is typed as the resident says it, in the utility's time zone: "today 18:00–23:00".
    window_day = forms.DateField(label=gettext_lazy("Day"), required=False,
                                 widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
                                 help_text=gettext_lazy("Leave empty for today (or tonight)."))
    window_start = forms.TimeField(label=gettext_lazy("From"), required=False,
                                   widget=forms.TimeInput(attrs={"type": "time"}, format="%H:%M"))
    window_end = forms.TimeField(label=gettext_lazy("Until"), required=False,
                                 widget=forms.TimeInput(attrs={"type": "time"}, format="%H:%M"))

    def __init__(self, *args, device=None, **kwargs):
        super().__init__(*args, **kwargs)
        if device is not None:  # the device page funds its own device
            self.fields["public_id"].widget = forms.HiddenInput()
            self.fields["public_id"].initial = device.public_id
        from .formatting import zone_label

        self.fields["window_end"].help_text = _(
            "Times in %(zone)s. Only for this time (e.g. tonight 18:00–23:00); what is unused comes back to you."
        ) % {"zone": zone_label()}

    def clean_amount_kwh(self) -> Decimal:
        amount = self.cleaned_data["amount_kwh"]
        if amount <= 0:
            raise forms.ValidationError(_("The amount must be positive."))
        return amount

    def clean(self):
        data = super().clean()
        day, start, end = data.get("window_day"), data.get("window_start"), data.get("window_end")
        if any(self.has_error(name) for name in ("window_day", "window_start", "window_end")):
            return data
        if (start is None) != (end is None) or (day is not None and start is None):
            raise forms.ValidationError(_("A window needs both a start and an end time (or leave them empty)."))
        if start is not None and end is not None:
            try:
                data["window_start"], data["window_end"] = window_instants(
                    day=day, start=start, end=end, now=timezone.now(), zone=timezone.get_current_timezone())
            except WindowError as exc:
                self.add_error("window_end", str(exc))
        else:
            data["window_start"] = data["window_end"] = None
        return data

    @property
    def amount_wh(self) -> int:
        return int(self.cleaned_data["amount_kwh"] * 1000)


class WindowError(ValueError):
    """A funding window that cannot be: its message is shown to the resident."""


def local_instant(day: date, at: time, zone: tzinfo, *, latest: bool = False) -> datetime:
    """The UTC instant of wall-clock ``at`` on ``day`` in ``zone``. A time a DST change skips
    (02:30 on a spring-forward night) means the same time after the clocks moved (03:30 new
    time); a time that happens twice (01:30 on a fall-back night) is the first one, or the
    second when ``latest`` (a window's end: the resident keeps the hour they asked for)."""
    wall = datetime.combine(day, at)
    first = wall.replace(tzinfo=zone, fold=0)
    second = wall.replace(tzinfo=zone, fold=1)
    exists = first.astimezone(UTC).astimezone(zone).replace(tzinfo=None) == wall
    if exists and latest and first.utcoffset() != second.utcoffset():
        return second.astimezone(UTC)
    # In a gap fold=0 applies the offset in force before it, landing after the skipped hour.
    return first.astimezone(UTC)


def window_instants(*, day: date | None, start: time, end: time, now: datetime, zone: tzinfo
                    ) -> tuple[datetime, datetime]:
    """A window typed as times of day, as UTC instants. It is on ``day`` (default today in
    ``zone``); one that ends before it starts runs past midnight into the next day. Without a day,
    a window past midnight that began yesterday and is still open is that one (at 01:00,
    "18:00–02:00" is tonight's, not tomorrow's). A window that has already started starts now."""
    if start == end:
        raise WindowError(_("The window must end after it starts."))
    today = now.astimezone(zone).date()
    crosses_midnight = end < start
    days = [day] if day is not None else ([today - timedelta(days=1), today] if crosses_midnight else [today])
    for first_day in days:
        begin = local_instant(first_day, start, zone)
        finish = local_instant(first_day + timedelta(days=1) if crosses_midnight else first_day, end, zone, latest=True)
        if finish > now:
            break
    if finish <= now:
        raise WindowError(_("The window has already ended; choose an end in the future."))
    if finish <= begin:  # a DST change swallowed the whole window
        raise WindowError(_("The window must end after it starts."))
    return max(begin, now), finish


class PriceForm(IdempotentForm):
    kind = forms.ChoiceField(label=gettext_lazy("Kind"),
                             choices=[("retail", gettext_lazy("Retail (utility → residents)")),
                                      ("wholesale", gettext_lazy("Wholesale (producers → utility)"))])
    currency = forms.ChoiceField(label=gettext_lazy("Currency"))
    price = forms.DecimalField(label=gettext_lazy("Price per kWh"), max_digits=12, decimal_places=4, min_value=Decimal("0"),
                               widget=forms.NumberInput(attrs={"step": "0.01", "inputmode": "decimal"}))
    effective_from = forms.DateTimeField(label=gettext_lazy("In force from"), widget=DATETIME_LOCAL)

    def __init__(self, *args, currencies: dict[str, int], **kwargs):
        super().__init__(*args, **kwargs)
        self.scales = currencies
        from .formatting import zone_label

        self.fields["effective_from"].help_text = _("In %(zone)s.") % {"zone": zone_label()}
        self.fields["currency"].choices = [(code, code) for code in currencies]

    def clean(self):
        data = super().clean()
        price, currency = data.get("price"), data.get("currency")
        if price is not None and currency in self.scales:
            minor = price * (10 ** self.scales[currency])
            if minor != minor.to_integral_value():
                self.add_error("price", _("%(currency)s has %(places)d decimals.")
                               % {"currency": currency, "places": self.scales[currency]})
            elif minor <= 0:
                self.add_error("price", _("The price must be positive."))
            else:
                data["price_minor"] = int(minor)
        return data
