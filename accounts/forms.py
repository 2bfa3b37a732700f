"""Sign-up form: Django's UserCreationForm checks, plus the limits a household needs."""

from django import forms
from django.contrib.auth import get_user_model
from django.contrib.auth.forms import UserCreationForm
from django.core.validators import RegexValidator
from django.utils.text import format_lazy
from django.utils.translation import gettext_lazy as _

from ledger.models import Organisation

from .scopes import SCOPES

# The household's ledger id is ``hh-<username>``, an MSP slug of at most 64 characters.
USERNAME_MAX_LENGTH = 30
USERNAME_TAKEN = _("That username is already taken. Please choose another.")


class SignupForm(UserCreationForm):
    username = forms.CharField(
        label=_("Username"),
        max_length=USERNAME_MAX_LENGTH,
        validators=[RegexValidator(r"^[A-Za-z0-9_-]+\Z", _("Use only letters, digits, - and _."))],
        help_text=format_lazy(_("Letters, digits, - and _ (up to {count})."), count=USERNAME_MAX_LENGTH),
        widget=forms.TextInput(
            attrs={
                "autocomplete": "username",
                "autocapitalize": "none",
                "autocorrect": "off",
                "spellcheck": "false",
                "autofocus": True,
            }
        ),
    )
    email = forms.EmailField(
        label=_("Email address"), required=False, help_text=_("For receipts."), widget=forms.EmailInput(attrs={"autocomplete": "email"})
    )

    class Meta(UserCreationForm.Meta):
        model = get_user_model()
        fields = ("username", "email")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["password1"].help_text = _("At least 8 characters, not a common password.")
        self.fields["password2"].label = _("Password again")
        self.fields["password2"].help_text = ""

    def clean_username(self) -> str:
        username = self.cleaned_data["username"]
        User = get_user_model()
        taken = (
            User.objects.filter(username__iexact=username).exists()
            or Organisation.objects.filter(msp_id=f"hh-{username.lower()}").exists()
        )
        if taken:
            raise forms.ValidationError(USERNAME_TAKEN, code="unique")
        return username


class CodeForm(forms.Form):
    """A 6-digit authenticator code or a backup code."""

    code = forms.CharField(
        label=_("Code"), max_length=16,
        help_text=_("The 6-digit code from your authenticator app, or one of your backup codes."),
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "text", "autocapitalize": "none",
                                      "autocorrect": "off", "spellcheck": "false", "autofocus": True}),
    )

    def clean_code(self) -> str:
        return self.cleaned_data["code"].strip().replace(" ", "").lower()


EXPIRY_CHOICES = [("30", _("30 days")), ("90", _("90 days")), ("365", _("1 year")), ("", _("Never"))]


class ApiTokenForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=100, help_text=_("Who or what uses it, e.g. “bank feed”."))
    organisation = forms.ModelChoiceField(label=_("Acts for"), queryset=Organisation.objects.none(),
                                          empty_label=None)
    scopes = forms.MultipleChoiceField(label=_("Scopes"), choices=[(k, f"{k} — {v}") for k, v in SCOPES.items()],
                                       widget=forms.CheckboxSelectMultiple)
    expires_in_days = forms.ChoiceField(label=_("Expires"), choices=EXPIRY_CHOICES, required=False, initial="90")

    def __init__(self, *args, organisations, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["organisation"].queryset = organisations
