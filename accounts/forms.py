from django import forms
from django.contrib.auth.forms import UserCreationForm
from django.utils.translation import gettext_lazy as _

from accounts.models import User


class SignUpForm(UserCreationForm):
    class Meta:
        model = User
        fields = ("username", "email", "display_name")


class AccountSettingsForm(forms.ModelForm):
    class Meta:
        model = User
        fields = ("display_name", "email", "email_codes")

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("email_codes") and not cleaned.get("email"):
            self.add_error("email_codes", _("Add an e-mail address to receive codes by e-mail."))
        return cleaned
