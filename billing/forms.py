"""The utility's tariff and dues forms. People type hertz, paise per kWh and rupees as decimals;
this turns them into the chaincode's integers (centi-hertz, hundredths of a paisa per kWh,
paise), refusing anything finer rather than rounding it."""

from __future__ import annotations

import csv
import io
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from django import forms
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from frontend.forms import DATETIME_LOCAL, IdempotentForm
from ledger.chaincodes import billing_math as bm

MAX_PRICES = 20_000  # clearing prices in one tariff (a year of slots is ~35,000: add tariffs per period)
MAX_UPLOAD = 2 * 1024 * 1024


def hundredths(text: str | Decimal, what: str) -> int:
    """"49.97" → 4997; refuses more than two decimals or anything not a number."""
    try:
        value = Decimal(str(text).strip()) * 100
    except InvalidOperation:
        raise forms.ValidationError(_("%(what)s: “%(text)s” is not a number.") % {"what": what, "text": text}) from None
    if value != value.to_integral_value():
        raise forms.ValidationError(_("%(what)s: at most two decimals.") % {"what": what})
    return int(value)


def _decimal(label, **kwargs) -> forms.DecimalField:
    return forms.DecimalField(label=label, max_digits=10, decimal_places=2, min_value=Decimal("0"), required=False,
                              widget=forms.NumberInput(attrs={"step": "0.01", "inputmode": "decimal"}), **kwargs)


class TariffForm(IdempotentForm):
    kind = forms.ChoiceField(label=gettext_lazy("Kind"), widget=forms.RadioSelect,
                             choices=[("frequency_vector", gettext_lazy("Frequency vector (bands)")),
                                      ("exchange_linked", gettext_lazy("Linked to the exchange's clearing price"))])
    effective_from = forms.DateTimeField(label=gettext_lazy("In force from"), widget=DATETIME_LOCAL)
    name = forms.CharField(label=gettext_lazy("Name"), max_length=80, required=False)
    # frequency vector
    bands = forms.CharField(
        label=gettext_lazy("Bands"), required=False, widget=forms.Textarea(attrs={"rows": 4}),
        help_text=gettext_lazy("One band a line, highest frequency first: from Hz, below Hz, base paise/kWh, "
                               "step paise/kWh per 0.01 Hz under “below”. Example: 50.00, 50.05, 0, 35.60"))
    above_rate = _decimal(gettext_lazy("Rate above the first band (paise/kWh)"))
    floor_rate = _decimal(gettext_lazy("Rate below the last band (paise/kWh)"))
    # exchange linked
    band_low = _decimal(gettext_lazy("Band: lowest frequency (Hz)"))
    band_high = _decimal(gettext_lazy("Band: highest frequency (Hz)"))
    base_rate = _decimal(gettext_lazy("Base rate when no clearing price (paise/kWh)"))
    cap_percent = forms.IntegerField(label=gettext_lazy("Cap (percent of the normal rate)"), min_value=100, required=False)
    prices_file = forms.FileField(label=gettext_lazy("Clearing prices (CSV file)"), required=False,
                                  help_text=gettext_lazy("Lines of slot start, price in paise/kWh (or slot start, day-ahead price, "
                                                        "real-time price: the higher one is the normal rate)."))
    prices_text = forms.CharField(
        label=gettext_lazy("Clearing prices (pasted)"), required=False, widget=forms.Textarea(attrs={"rows": 4}),
        help_text=gettext_lazy("slot start, paise/kWh — one a line, e.g. 2026-06-01T08:00, 600.00 "
                               "(times without a zone are in the billing time zone)."))

    def __init__(self, *args, billing_timezone: str = bm.DEFAULT_TIMEZONE, **kwargs):
        super().__init__(*args, **kwargs)
        self.zone = bm.zone(billing_timezone)
        self.fields["effective_from"].help_text = _("In %(zone)s.") % {"zone": billing_timezone}

    def _bands(self, text: str) -> list[dict[str, int]]:
        bands = []
        for number, line in enumerate([ln for ln in text.splitlines() if ln.strip()], start=1):
            cells = [c.strip() for c in line.replace(";", ",").split(",")]
            if len(cells) != 4:
                raise forms.ValidationError(_("Band line %(n)d: four numbers separated by commas.") % {"n": number})
            what = _("Band line %(n)d") % {"n": number}
            lo, hi = hundredths(cells[0], what), hundredths(cells[1], what)
            bands.append({"from": lo, "below": hi, "base": hundredths(cells[2], what),
                          "step": hundredths(cells[3], what)})
        return bands

    def _slot(self, text: str, number: int) -> str:
        try:
            moment = datetime.fromisoformat(text.strip())
        except ValueError:
            raise forms.ValidationError(_("Price line %(n)d: “%(text)s” is not a date and time.")
                                        % {"n": number, "text": text}) from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=self.zone)
        if not bm.is_aligned(moment, str(self.zone)):
            raise forms.ValidationError(_("Price line %(n)d: a slot starts at :00, :15, :30 or :45.") % {"n": number})
        return bm.slot_id(moment)

    def _prices(self, text: str) -> dict[str, int | dict[str, int]]:
        prices: dict[str, int | dict[str, int]] = {}
        rows = [r for r in csv.reader(io.StringIO(text)) if r and any(c.strip() for c in r)]
        for number, row in enumerate(rows, start=1):
            if number == 1 and row[0].strip().lower() in ("slot", "start", "slot_start", "time"):
                continue  # a header line
            if len(row) not in (2, 3):
                raise forms.ValidationError(_("Price line %(n)d: a slot start and a price, or a slot start, "
                                              "a day-ahead and a real-time price.") % {"n": number})
            what = _("Price line %(n)d") % {"n": number}
            # Two prices: the day-ahead and real-time clearing prices; the tariff takes the higher.
            prices[self._slot(row[0], number)] = (hundredths(row[1], what) if len(row) == 2 else
                                                  {"dam": hundredths(row[1], what), "rtm": hundredths(row[2], what)})
        if len(prices) > MAX_PRICES:
            raise forms.ValidationError(_("At most %(n)d clearing prices in one tariff.") % {"n": MAX_PRICES})
        return prices

    def clean_prices_file(self):
        upload = self.cleaned_data.get("prices_file")
        if not upload:
            return ""
        if upload.size > MAX_UPLOAD:
            raise forms.ValidationError(_("The file is too large (at most 2 MB)."))
        try:
            return upload.read().decode("utf-8-sig")
        except UnicodeDecodeError:
            raise forms.ValidationError(_("The file must be UTF-8 text.")) from None

    def clean(self):
        data = super().clean()
        if self.errors:
            return data
        moment = data["effective_from"]
        if timezone.is_naive(moment):
            moment = moment.replace(tzinfo=self.zone)
        tariff: dict[str, Any] = {"effective_from": moment.astimezone(self.zone).isoformat(), "kind": data["kind"]}
        if data.get("name"):
            tariff["name"] = data["name"].strip()
        try:
            if data["kind"] == "frequency_vector":
                missing = [f for f in ("bands", "above_rate", "floor_rate") if data.get(f) in (None, "")]
                for name in missing:
                    self.add_error(name, _("Needed for a frequency vector."))
                if missing:
                    return data
                tariff |= {"above_rate": hundredths(data["above_rate"], _("Rate above")),
                           "floor_rate": hundredths(data["floor_rate"], _("Rate below")),
                           "bands": self._bands(data["bands"])}
            else:
                missing = [f for f in ("band_low", "band_high", "base_rate", "cap_percent") if data.get(f) is None]
                for name in missing:
                    self.add_error(name, _("Needed for an exchange-linked tariff."))
                if missing:
                    return data
                prices = self._prices(data.get("prices_file") or "") | self._prices(data.get("prices_text") or "")
                tariff |= {"band": [hundredths(data["band_low"], _("Band")), hundredths(data["band_high"], _("Band"))],
                           "base_rate": hundredths(data["base_rate"], _("Base rate")),
                           "cap_percent": data["cap_percent"], "prices": prices}
            bm.validate_tariff(tariff)
        except forms.ValidationError as exc:
            self.add_error(None, exc)
            return data
        except bm.BillingError as exc:
            self.add_error(None, str(exc))
            return data
        data["tariff"] = tariff
        return data


class DuesForm(IdempotentForm):
    dues_threshold = forms.DecimalField(label=gettext_lazy("Dues threshold (₹)"), max_digits=12, decimal_places=2,
                                        min_value=Decimal("0"),
                                        widget=forms.NumberInput(attrs={"step": "0.01", "inputmode": "decimal"}),
                                        help_text=gettext_lazy("When a household owes more, it is fined once."))
    fine = forms.DecimalField(label=gettext_lazy("Fine (₹)"), max_digits=12, decimal_places=2, min_value=Decimal("0"),
                              widget=forms.NumberInput(attrs={"step": "0.01", "inputmode": "decimal"}))

    def clean(self):
        data = super().clean()
        for name in ("dues_threshold", "fine"):
            if data.get(name) is not None:
                data[f"{name}_paise"] = int(data[name] * 100)
        return data
