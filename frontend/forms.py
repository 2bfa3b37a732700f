"""Forms of the resident pages. Amounts arrive as decimals and become integer units here
(never floats); everything else is checked again by the service and the ledger."""

from __future__ import annotations

import uuid
from decimal import Decimal

from django import forms
from django.utils import timezone

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
        label="Device id", max_length=32, help_text="Printed on the device's sticker, e.g. SL-0001.",
        widget=forms.TextInput(attrs={"autocapitalize": "characters", "autocorrect": "off", "spellcheck": "false",
                                      "placeholder": "SL-0001"}),
    )
    amount_kwh = forms.DecimalField(
        label="Amount (kWh)", max_digits=12, decimal_places=3, min_value=Decimal("0.001"),
        help_text="Up to three decimals (1 kWh = 1 k).",
        widget=forms.NumberInput(attrs={"step": "0.001", "min": "0.001", "inputmode": "decimal"}),
    )
    window_start = forms.DateTimeField(label="Window from", required=False, widget=DATETIME_LOCAL)
    window_end = forms.DateTimeField(
        label="Window until", required=False, widget=DATETIME_LOCAL,
        help_text="Only for this time (e.g. tonight 18:00–23:00); what is unused comes back to you.",
    )

    def __init__(self, *args, device=None, **kwargs):
        super().__init__(*args, **kwargs)
        if device is not None:  # the device page funds its own device
            self.fields["public_id"].widget = forms.HiddenInput()
            self.fields["public_id"].initial = device.public_id

    def clean_amount_kwh(self) -> Decimal:
        amount = self.cleaned_data["amount_kwh"]
        if amount <= 0:
            raise forms.ValidationError("The amount must be positive.")
        return amount

    def clean(self):
        data = super().clean()
        start, end = data.get("window_start"), data.get("window_end")
        if (start is None) != (end is None) and not self.has_error("window_start") and not self.has_error("window_end"):
            raise forms.ValidationError("A window needs both a start and an end (or leave both empty).")
        if start is not None and end is not None:
            if end <= start:
                self.add_error("window_end", "The window must end after it starts.")
            elif end <= timezone.now():
                self.add_error("window_end", "The window has already ended; choose an end in the future.")
        return data

    @property
    def amount_wh(self) -> int:
        return int(self.cleaned_data["amount_kwh"] * 1000)


class PriceForm(IdempotentForm):
    kind = forms.ChoiceField(choices=[("retail", "Retail (utility → residents)"),
                                      ("wholesale", "Wholesale (producers → utility)")])
    currency = forms.ChoiceField()
    price = forms.DecimalField(label="Price per kWh", max_digits=12, decimal_places=4, min_value=Decimal("0"),
                               widget=forms.NumberInput(attrs={"step": "0.01", "inputmode": "decimal"}))
    effective_from = forms.DateTimeField(label="In force from", widget=DATETIME_LOCAL)

    def __init__(self, *args, currencies: dict[str, int], **kwargs):
        super().__init__(*args, **kwargs)
        self.scales = currencies
        self.fields["currency"].choices = [(code, code) for code in currencies]

    def clean(self):
        data = super().clean()
        price, currency = data.get("price"), data.get("currency")
        if price is not None and currency in self.scales:
            minor = price * (10 ** self.scales[currency])
            if minor != minor.to_integral_value():
                self.add_error("price", f"{currency} has {self.scales[currency]} decimals.")
            elif minor <= 0:
                self.add_error("price", "The price must be positive.")
            else:
                data["price_minor"] = int(minor)
        return data
