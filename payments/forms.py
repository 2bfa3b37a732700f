"""The payment simulator's form: amounts in major units, parsed as Decimal (never floats)."""

from __future__ import annotations

from decimal import Decimal

from django import forms
from django.core.validators import RegexValidator, validate_slug
from django.utils.translation import gettext_lazy as _

from ledger.models import OrgType

from . import selectors
from .notices import BILLING_CHAINCODE, CHARITY_CHAINCODE, DONOR_NAME_MAX, SELLER_CHAINCODES
from .selectors import SimulatorAccess

CHAINCODE_LABELS = {
    "retail-seller": _("retail-seller: a household pays the utility, coins go to the household"),
    "wholesale-seller": _("wholesale-seller: the utility pays a producer, coins go to the utility"),
    CHARITY_CHAINCODE: _("charity-pool: a donation to the campaign below, coins go to its pool"),
    BILLING_CHAINCODE: _("energy-billing: pays the dues of the bill account below"),
}


def _org_choices(orgs) -> list[tuple[str, str]]:
    return [(o.msp_id, f"{o.name} ({o.org_type})") for o in orgs]


class SimulatorForm(forms.Form):
    payer = forms.ChoiceField(label=_("Payer"))
    payee = forms.ChoiceField(label=_("Payee"))
    chaincode = forms.ChoiceField(label=_("Chaincode"))
    bank = forms.ChoiceField(label=_("Bank (signs the webhook)"))
    amount = forms.DecimalField(label=_("Amount"), min_value=Decimal("0.01"), max_digits=14, decimal_places=2,
                                widget=forms.NumberInput(attrs={"step": "0.01", "inputmode": "decimal"}),
                                help_text=_("in major units, e.g. 10.00 rupees"))
    currency = forms.ChoiceField(label=_("Currency"))
    campaign = forms.CharField(label=_("Campaign (for a donation)"), required=False, max_length=60,
                               validators=[validate_slug],
                               help_text=_("the campaign’s short name, as in its page address "
                                           "/campaigns/<name>/; leave empty for a purchase"))
    donor_name = forms.CharField(label=_("Donor’s name (for a donation)"), required=False, max_length=DONOR_NAME_MAX,
                                 widget=forms.TextInput(attrs={"autocomplete": "name"}))
    show_name = forms.BooleanField(label=_("Show the donor’s name on the campaign page"), required=False)
    bill_account = forms.CharField(label=_("Bill account (for paying dues)"), required=False, max_length=69,
                                   validators=[RegexValidator(r"^bill:[-a-zA-Z0-9_]{1,64}$",
                                                              _("A bill account reads bill:<household id>."))],
                                   help_text=_("bill: and the household’s id, as on its billing page"))

    def __init__(self, *args, access: SimulatorAccess, **kwargs):
        super().__init__(*args, **kwargs)
        self.access = access
        if access.mode == "resident":
            payers = access.households
            chaincodes = ["retail-seller", CHARITY_CHAINCODE, BILLING_CHAINCODE]
            payees = selectors.organisations_of_types(OrgType.UTILITY)
            anonymous = []
        else:
            payers = selectors.organisations_of_types(OrgType.HOUSEHOLD, OrgType.UTILITY)
            chaincodes = [*SELLER_CHAINCODES, CHARITY_CHAINCODE, BILLING_CHAINCODE]
            payees = selectors.organisations_of_types(OrgType.UTILITY, OrgType.PRODUCER)
            anonymous = [("", _("a donor without an account (donations only)"))]
            self.fields["payer"].required = False
        self.fields["payer"].choices = [*_org_choices(payers), *anonymous]
        self.fields["payee"].choices = _org_choices(payees)
        self.fields["chaincode"].choices = [(c, CHAINCODE_LABELS[c]) for c in chaincodes]
        self.fields["bank"].choices = _org_choices(access.banks)
        self.scales = {a.code: a.scale for a in selectors.fiat_assets()}
        self.fields["currency"].choices = [(code, code) for code in self.scales]

    def clean(self):
        data = super().clean()
        donation = data.get("chaincode") == CHARITY_CHAINCODE
        if donation and not data.get("campaign") and "campaign" not in self.errors:
            self.add_error("campaign", _("A donation names the campaign it goes to."))
        if not donation and data.get("campaign"):
            self.add_error("chaincode", _("A payment to a campaign pays charity-pool."))
        dues = data.get("chaincode") == BILLING_CHAINCODE
        if dues and not data.get("bill_account") and "bill_account" not in self.errors:
            self.add_error("bill_account", _("A payment of dues names the bill account it pays."))
        if not dues and data.get("bill_account"):
            self.add_error("chaincode", _("A payment to a bill account pays energy-billing."))
        if not donation and not data.get("payer") and "payer" not in self.errors:
            self.add_error("payer", _("Only a donation may come from a donor without an account."))
        amount, currency = data.get("amount"), data.get("currency")
        if amount is not None and currency in self.scales:
            minor = amount * (Decimal(10) ** self.scales[currency])
            if minor != minor.to_integral_value():
                self.add_error("amount", _("%(currency)s has %(places)d decimal places")
                               % {"currency": currency, "places": self.scales[currency]})
            else:
                data["amount_minor"] = int(minor)
        return data
