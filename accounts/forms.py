from django import forms
from django.contrib.auth.forms import UserCreationForm
from django.utils.translation import gettext_lazy as _

from accounts.models import User


class SignUpForm(UserCreationForm):
    class Meta:
        model = User
        fields = ("username", "email", "display_name")


#: what a buyer may ask to see prices in; checkout offers a currency only where a payment
#: method's account can charge it and a rate is known
CURRENCY_CHOICES = [
    ("", _("Automatic (from where you are)")),
    ("CNY", "CNY ¥"),
    ("USD", "USD US$"),
    ("EUR", "EUR €"),
    ("GBP", "GBP £"),
    ("HKD", "HKD HK$"),
    ("JPY", "JPY JP¥"),
]


class AccountSettingsForm(forms.ModelForm):
    preferred_currency = forms.ChoiceField(
        label=_("preferred currency"),
        choices=CURRENCY_CHOICES,
        required=False,
        help_text=_("Checkout shows prices in it where the payment method can charge it."),
    )

    class Meta:
        model = User
        fields = ("display_name", "email", "email_codes", "preferred_currency")

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("email_codes") and not cleaned.get("email"):
            self.add_error("email_codes", _("Add an e-mail address to receive codes by e-mail."))
        return cleaned
