"""Sign-up form: Django's UserCreationForm checks, plus the limits a household needs."""

from django import forms
from django.contrib.auth import get_user_model
from django.contrib.auth.forms import UserCreationForm
from django.core.validators import RegexValidator
from django.utils.text import format_lazy
from django.utils.translation import gettext_lazy as _

from ledger.models import Organisation

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
