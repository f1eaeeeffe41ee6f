from django.contrib.auth.models import AbstractUser
from django.db import models
from django.utils.translation import gettext_lazy as _


class User(AbstractUser):
    """One account both sells and buys; staff are users in the Finance/Risk/Support groups."""

    display_name = models.CharField(_("display name"), max_length=60, blank=True)
    phone = models.CharField(_("phone"), max_length=20, blank=True)
    preferred_language = models.CharField(_("preferred language"), max_length=10, blank=True)
    preferred_currency = models.CharField(
        _("preferred currency"),
        max_length=3,
        blank=True,
        help_text=_("Checkout shows prices in it where the payment method can charge it."),
    )
    email_codes = models.BooleanField(
        _("e-mail me the codes themselves"),
        default=False,
        help_text=_(
            "Off: the delivery e-mail links to your order page, where you see the codes "
            "after logging in. On: the codes and PINs are in the e-mail too."
        ),
    )

    class Meta:
        verbose_name = _("user")
        verbose_name_plural = _("users")

    def save(self, *args, **kwargs):
        # set_password() leaves the raw password in _password until the next save: that is
        # the moment the old password stops working, so its API tokens go too.
        password_changed = self._password is not None and not self._state.adding
        super().save(*args, **kwargs)
        if password_changed:
            from accounts.tokens import tokens_revoke

            tokens_revoke(user=self)

    @property
    def public_name(self) -> str:
        return self.display_name or self.username
