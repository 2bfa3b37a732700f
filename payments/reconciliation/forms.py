"""The statement upload form: which statement (a bank's, for the banks the user may speak for,
or the processor's for the utility) and the file."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext as _g
from django.utils.translation import gettext_lazy as _

from .selectors import ReconciliationAccess


class StatementUploadForm(forms.Form):
    source = forms.ChoiceField(label=_("Statement"))
    statement = forms.FileField(label=_("Statement file"), help_text=_("camt.053 XML from a bank; the itemized "
                                "balance change report CSV from Stripe"))
    processor = forms.ChoiceField(label=_("Processor organisation"), required=False,
                                  help_text=_("Stripe only: the organisation that invokes sales whose metadata "
                                              "names no bank"))
    rerun = forms.BooleanField(label=_("Reconcile again if this file was reconciled before"), required=False)

    def __init__(self, *args, access: ReconciliationAccess, **kwargs):  # type: ignore[no-untyped-def]
        super().__init__(*args, **kwargs)
        choices = [(f"bank:{b.msp_id}", _g("Bank statement (camt.053): %(bank)s") % {"bank": b.name})
                   for b in access.banks]
        if access.utility:
            choices.append(("stripe:", _("Stripe balance report (CSV)")))
        self.fields["source"].choices = choices
        self.fields["processor"].choices = [("", "—"), *((b.msp_id, b.name) for b in access.banks)]
        self.access = access

    def clean_source(self) -> tuple[str, str]:
        source, _, scope = self.cleaned_data["source"].partition(":")
        if not self.access.may_use(source, scope):
            raise forms.ValidationError(_("you may not upload this statement"))
        return source, scope
