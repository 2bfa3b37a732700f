"""The statement upload form: which statement (a bank's, for the banks the user may speak for,
or the processor's for the utility) and the file."""

from __future__ import annotations

from django import forms

from .selectors import ReconciliationAccess


class StatementUploadForm(forms.Form):
    source = forms.ChoiceField(label="Statement")
    statement = forms.FileField(label="Statement file", help_text="camt.053 XML from a bank; the itemized balance "
                                "change report CSV from Stripe")
    processor = forms.ChoiceField(label="Processor organisation", required=False,
                                  help_text="Stripe only: the organisation that invokes sales whose metadata names "
                                  "no bank")
    rerun = forms.BooleanField(label="Reconcile again if this file was reconciled before", required=False)

    def __init__(self, *args, access: ReconciliationAccess, **kwargs):  # type: ignore[no-untyped-def]
        super().__init__(*args, **kwargs)
        choices = [(f"bank:{b.msp_id}", f"Bank statement (camt.053): {b.name}") for b in access.banks]
        if access.utility:
            choices.append(("stripe:", "Stripe balance report (CSV)"))
        self.fields["source"].choices = choices
        self.fields["processor"].choices = [("", "—"), *((b.msp_id, b.name) for b in access.banks)]
        self.access = access

    def clean_source(self) -> tuple[str, str]:
        source, _, scope = self.cleaned_data["source"].partition(":")
        if not self.access.may_use(source, scope):
            raise forms.ValidationError("you may not upload this statement")
        return source, scope
