"""The form that starts a simulated day on ``/billing/simulate/``."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from .simulation_runs import DEFAULT_SEED, MAX_HOUSEHOLDS, default_day


class SimulateDayForm(forms.Form):
    households = forms.IntegerField(label=_("Households"), min_value=1, max_value=MAX_HOUSEHOLDS, initial=10)
    day = forms.DateField(label=_("Day"), help_text=_("A day that has ended, in the utility's time zone"),
                          widget=forms.DateInput(attrs={"type": "date"}))
    seconds_per_slot = forms.DecimalField(label=_("Seconds per 15-minute slot"), min_value=0, max_value=60,
                                          decimal_places=2, initial=1,
                                          help_text=_("0 runs the day as fast as it can"))
    seed = forms.CharField(label=_("Seed"), max_length=64, initial=DEFAULT_SEED,
                           help_text=_("The same seed gives the same day"))

    def __init__(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        super().__init__(*args, **kwargs)
        self.fields["day"].initial = default_day()
