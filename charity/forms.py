"""Forms of the campaign and group-funding pages. Money arrives as decimals in the currency's
major unit and energy as kWh, and both become integer ledger units here (never floats); times
are typed in the utility's time zone. The services and the chaincode check everything again."""

from __future__ import annotations

from decimal import Decimal

from django import forms
from django.conf import settings
from django.forms import formset_factory
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext

from frontend.formatting import zone_label
from frontend.forms import DATETIME_LOCAL, IdempotentForm

from .models import Campaign, LeftoverRule, SharingRule

KWH_WIDGET = forms.NumberInput(attrs={"step": "0.001", "min": "0.001", "inputmode": "decimal"})


def _kwh_field(label, *, required: bool = True, help_text=""):
    return forms.DecimalField(label=label, max_digits=14, decimal_places=3, min_value=Decimal("0.001"),
                              required=required, help_text=help_text, widget=KWH_WIDGET)


def wh_of(kwh: Decimal | None) -> int | None:
    return None if kwh is None else int(kwh * 1000)


def auto_disburse_seconds() -> int:
    """How often the automatic disbursement task may disburse one campaign."""
    return int(getattr(settings, "CHARITY_AUTO_DISBURSE_SECONDS", 3600))


def _zone_help() -> str:
    return _("In %(zone)s.") % {"zone": zone_label()}


class CampaignForm(forms.Form):
    """What charity staff write and set for a campaign; beneficiaries come in ``BeneficiaryFormSet``."""

    charity = forms.ChoiceField(label=gettext_lazy("Charity"))
    title = forms.CharField(label=gettext_lazy("Title"), max_length=140)
    story = forms.CharField(label=gettext_lazy("Story"), widget=forms.Textarea(attrs={"rows": 8}),
                            help_text=gettext_lazy("Who is helped, why now, and how the money becomes electricity."))
    currency = forms.ChoiceField(label=gettext_lazy("Currency"))
    goal = forms.DecimalField(label=gettext_lazy("Goal"), max_digits=14, decimal_places=4, min_value=Decimal("0"),
                              widget=forms.NumberInput(attrs={"step": "0.01", "inputmode": "decimal"}))
    minimum = forms.DecimalField(label=gettext_lazy("Minimum"), max_digits=14, decimal_places=4,
                                 min_value=Decimal("0"),
                                 widget=forms.NumberInput(attrs={"step": "0.01", "inputmode": "decimal"}),
                                 help_text=gettext_lazy("Below it at the end, every donor is refunded."))
    starts_at = forms.DateTimeField(label=gettext_lazy("Starts"), widget=DATETIME_LOCAL)
    ends_at = forms.DateTimeField(label=gettext_lazy("Ends"), widget=DATETIME_LOCAL)
    trigger_starts_at = forms.DateTimeField(label=gettext_lazy("Disburse only from"), widget=DATETIME_LOCAL,
                                            required=False)
    trigger_ends_at = forms.DateTimeField(label=gettext_lazy("Disburse only until"), widget=DATETIME_LOCAL,
                                          required=False)
    rule = forms.ChoiceField(
        label=gettext_lazy("Sharing rule"), choices=SharingRule.choices,
        help_text=gettext_lazy("How each disbursement is split: equal shares; equal shares but nobody above the cap; "
                               "or in proportion to each household's weight (set below)."))
    cap_kwh = _kwh_field(gettext_lazy("Cap per household (kWh)"), required=False,
                         help_text=gettext_lazy("Only for the capped rule: the most one household receives over the "
                                                "whole campaign; what the others cannot take stays in the pool."))
    leftover = forms.ChoiceField(
        label=gettext_lazy("What is left at the end"), choices=LeftoverRule.choices,
        help_text=gettext_lazy("Coins still in the pool when the campaign ends, including what households did not "
                               "use: given back to the donors in proportion to what they gave, or moved to your "
                               "next campaign."))
    next_campaign = forms.ChoiceField(label=gettext_lazy("Next campaign"), required=False,
                                      help_text=gettext_lazy("Only when the leftover rolls over: another open "
                                                             "campaign of the same charity that receives it."))
    auto_disburse = forms.BooleanField(label=gettext_lazy("Disburse automatically"), required=False)

    def __init__(self, *args, charities, currencies: dict[str, int], next_choices, editing: Campaign | None = None,
                 **kwargs):
        super().__init__(*args, **kwargs)
        self.scales = currencies
        self.editing = editing
        self.fields["charity"].choices = [(str(c.pk), c.name) for c in charities]
        if len(self.fields["charity"].choices) == 1:
            self.fields["charity"].widget = forms.HiddenInput()
            self.fields["charity"].initial = self.fields["charity"].choices[0][0]
        self.fields["currency"].choices = [(code, code) for code in currencies]
        self.fields["next_campaign"].choices = [("", "—")] + [(c.slug, c.title) for c in next_choices]
        zone = _zone_help()
        for name in ("starts_at", "ends_at"):
            self.fields[name].help_text = zone
        self.fields["trigger_ends_at"].help_text = _(
            "Optional, e.g. a heat wave: disbursement happens only inside this period. %(zone)s") % {"zone": zone}
        minutes = max(1, auto_disburse_seconds() // 60)
        self.fields["auto_disburse"].help_text = ngettext(
            "A task shares out the whole pool by the sharing rule about every %(minutes)d minute, only while the "
            "campaign runs (and inside the disbursement period, if you set one). You can still disburse by hand.",
            "A task shares out the whole pool by the sharing rule about every %(minutes)d minutes, only while the "
            "campaign runs (and inside the disbursement period, if you set one). You can still disburse by hand.",
            minutes) % {"minutes": minutes}
        if editing is not None:
            # What the ledger fixed when the campaign opened stays as it is.
            for name in ("charity", "currency"):
                self.fields[name].disabled = True

    def _minor(self, name: str, data: dict) -> int | None:
        value, currency = data.get(name), data.get("currency")
        if value is None or currency not in self.scales:
            return None
        minor = value * (10 ** self.scales[currency])
        if minor != minor.to_integral_value():
            self.add_error(name, _("%(currency)s has %(places)d decimals.")
                           % {"currency": currency, "places": self.scales[currency]})
            return None
        return int(minor)

    def clean(self):
        data = super().clean()
        data["goal_minor"] = self._minor("goal", data)
        data["minimum_minor"] = self._minor("minimum", data)
        if data["goal_minor"] is not None and data["goal_minor"] <= 0:
            self.add_error("goal", _("The goal must be positive."))
        if None not in (data["goal_minor"], data["minimum_minor"]) and data["minimum_minor"] > data["goal_minor"]:
            self.add_error("minimum", _("The minimum cannot be above the goal."))
        starts, ends = data.get("starts_at"), data.get("ends_at")
        if starts and ends and ends <= starts:
            self.add_error("ends_at", _("The campaign must end after it starts."))
        t_start, t_end = data.get("trigger_starts_at"), data.get("trigger_ends_at")
        if (t_start is None) != (t_end is None):
            self.add_error("trigger_ends_at", _("Give both ends of the disbursement period, or neither."))
        elif t_start and t_end and t_end <= t_start:
            self.add_error("trigger_ends_at", _("The disbursement period must end after it starts."))
        data["cap_wh"] = wh_of(data.get("cap_kwh"))
        if data.get("rule") == SharingRule.CAP and not data["cap_wh"]:
            self.add_error("cap_kwh", _("The capped rule needs a cap."))
        if data.get("leftover") == LeftoverRule.ROLL and not data.get("next_campaign"):
            self.add_error("next_campaign", _("Rolling the leftover needs a next campaign."))
        return data


class BeneficiaryForm(forms.Form):
    device = forms.ChoiceField(label=gettext_lazy("Household device"), required=False)
    label = forms.CharField(label=gettext_lazy("Public label"), max_length=120, required=False,
                            help_text=gettext_lazy('What the public sees, never a name: "household in ward 12".'))
    weight = forms.IntegerField(label=gettext_lazy("Weight"), min_value=1, max_value=1000, initial=1, required=False,
                                help_text=gettext_lazy("Only for need-based weights."))

    def __init__(self, *args, devices=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["device"].choices = [("", "—")] + [(d.public_id, f"{d.public_id} · {d.name}") for d in devices]

    def clean(self):
        data = super().clean()
        if data.get("device") and not (data.get("label") or "").strip():
            self.add_error("label", _("Give the household a public label."))
        return data


BeneficiaryFormSet = formset_factory(BeneficiaryForm, extra=3, max_num=200, validate_max=True)


def beneficiaries_of(formset) -> list[dict]:
    """The filled rows as ``[{device, label, weight}]`` (public ids), each device once."""
    seen, rows = set(), []
    for form in formset.forms:
        data = getattr(form, "cleaned_data", None) or {}
        device = data.get("device")
        if not device or device in seen:
            continue
        seen.add(device)
        rows.append({"device": device, "label": data["label"].strip(), "weight": data.get("weight") or 1})
    return rows


class DonateCoinsForm(IdempotentForm):
    amount_kwh = _kwh_field(gettext_lazy("Amount (kWh)"), help_text=gettext_lazy("Coins from your wallet."))
    show_name = forms.BooleanField(label=gettext_lazy("Show my name on the campaign page"), required=False)
    donor_name = forms.CharField(label=gettext_lazy("Name to show"), max_length=120, required=False)

    def clean(self):
        data = super().clean()
        if data.get("show_name") and not (data.get("donor_name") or "").strip():
            self.add_error("donor_name", _("Give the name to show, or leave the box unticked."))
        return data

    @property
    def amount_wh(self) -> int:
        return int(self.cleaned_data["amount_kwh"] * 1000)


class MatchForm(IdempotentForm):
    """A sponsor's pledge: coins from one of their organisation's accounts into the campaign's
    matching reserve."""

    source = forms.ChoiceField(label=gettext_lazy("Coins from"))
    amount_kwh = _kwh_field(gettext_lazy("Most to match (kWh)"),
                            help_text=gettext_lazy("Moved now from the account above into the campaign's matching "
                                                   "reserve."))
    sponsor_name = forms.CharField(label=gettext_lazy("Sponsor name to show"), max_length=120,
                                   help_text=gettext_lazy("Shown on the campaign page next to the match."))

    def __init__(self, *args, accounts=(), **kwargs):
        super().__init__(*args, **kwargs)
        from frontend.formatting import format_kwh

        self.accounts = {a.key: a for a in accounts}
        self.fields["source"].choices = [
            (a.key, _("%(organisation)s · holds %(kwh)s kWh") % {"organisation": a.organisation.name,
                                                                 "kwh": format_kwh(a.balance)})
            for a in accounts]

    @property
    def amount_wh(self) -> int:
        return int(self.cleaned_data["amount_kwh"] * 1000)

    @property
    def account(self):
        return self.accounts[self.cleaned_data["source"]]


class UpdateForm(IdempotentForm):
    title = forms.CharField(label=gettext_lazy("Update title"), max_length=140)
    body = forms.CharField(label=gettext_lazy("What happened"), widget=forms.Textarea(attrs={"rows": 5}))


class DisburseForm(IdempotentForm):
    amount_kwh = _kwh_field(gettext_lazy("Amount to disburse (kWh)"), required=False,
                            help_text=gettext_lazy("Leave empty to disburse the whole pool."))


class CancelForm(IdempotentForm):
    reason = forms.CharField(label=gettext_lazy("Reason for cancelling"), max_length=300)


class GroupForm(IdempotentForm):
    title = forms.CharField(label=gettext_lazy("What for"), max_length=140,
                            help_text=gettext_lazy('e.g. "Lights for the Saturday market"'))
    goal_kwh = _kwh_field(gettext_lazy("Goal (kWh)"))
    deadline = forms.DateTimeField(label=gettext_lazy("Collect until"), widget=DATETIME_LOCAL)
    window_start = forms.DateTimeField(label=gettext_lazy("Light from"), widget=DATETIME_LOCAL)
    window_end = forms.DateTimeField(label=gettext_lazy("Light until"), widget=DATETIME_LOCAL)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        zone = _zone_help()
        for name in ("deadline", "window_start", "window_end"):
            self.fields[name].help_text = zone
        self.fields["deadline"].help_text = _(
            "If the goal is not reached by then, everyone gets their coins back. %(zone)s") % {"zone": zone}

    def clean(self):
        data = super().clean()
        deadline, start, end = data.get("deadline"), data.get("window_start"), data.get("window_end")
        if deadline and deadline <= timezone.now():
            self.add_error("deadline", _("The deadline must be in the future."))
        if start and end and end <= start:
            self.add_error("window_end", _("The window must end after it starts."))
        if deadline and end and end <= deadline:
            self.add_error("window_end", _("The window must end after the deadline."))
        return data


class ContributeForm(IdempotentForm):
    amount_kwh = _kwh_field(gettext_lazy("Amount (kWh)"), help_text=gettext_lazy("Coins from your wallet, held "
                                                                                 "in escrow until the goal is reached."))

    @property
    def amount_wh(self) -> int:
        return int(self.cleaned_data["amount_kwh"] * 1000)
