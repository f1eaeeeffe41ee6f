"""The double-entry journal: accounts, entries and their lines."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from payments.models.core import MONEY, RATE


class LedgerAccount(models.Model):
    class Kind(models.TextChoices):
        ASSET = "asset", _("asset")
        LIABILITY = "liability", _("liability")
        INCOME = "income", _("income")
        EXPENSE = "expense", _("expense")

    code = models.CharField(max_length=80, unique=True, verbose_name=_("code"))
    kind = models.CharField(max_length=10, choices=Kind.choices, verbose_name=_("kind"))
    currency = models.CharField(max_length=3, default="CNY", verbose_name=_("currency"))
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="ledger_accounts",
        verbose_name=_("owner"),
    )

    class Meta:
        verbose_name = _("ledger account")
        verbose_name_plural = _("ledger accounts")
        ordering = ["code"]

    def __str__(self):
        return self.code


class JournalEntry(models.Model):
    """A balanced, immutable set of lines; corrections are new entries."""

    key = models.CharField(
        max_length=120,
        unique=True,
        help_text=_("Idempotency key: posting twice is a no-op."),
        verbose_name=_("key"),
    )
    kind = models.CharField(max_length=40, db_index=True, verbose_name=_("kind"))
    memo = models.CharField(max_length=255, blank=True, verbose_name=_("memo"))
    reference = models.CharField(
        max_length=64, blank=True, db_index=True, verbose_name=_("reference")
    )
    posted_at = models.DateTimeField(
        default=timezone.now, db_index=True, verbose_name=_("posted at")
    )

    class Meta:
        verbose_name = _("journal entry")
        ordering = ["-posted_at", "-id"]
        verbose_name_plural = _("journal entries")

    def __str__(self):
        from payments.ledger_labels import kind_label

        return f"{kind_label(self.kind)} {self.key}"

    def save(self, *args, **kwargs):
        if self.pk and not kwargs.pop("_allow_update", False):
            raise ValidationError("Journal entries are immutable; post a correcting entry.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise ValidationError("Journal entries are immutable; post a correcting entry.")


class JournalLine(models.Model):
    """Debit positive, credit negative; the lines of an entry sum to zero."""

    entry = models.ForeignKey(
        JournalEntry, on_delete=models.PROTECT, related_name="lines", verbose_name=_("entry")
    )
    account = models.ForeignKey(
        LedgerAccount, on_delete=models.PROTECT, related_name="lines", verbose_name=_("account")
    )
    amount = models.DecimalField(**MONEY, verbose_name=_("amount"))
    currency = models.CharField(max_length=3, default="CNY", verbose_name=_("currency"))
    # A line of money charged in a foreign currency: the CNY ``amount`` is what balances;
    # these say what it was in the buyer's currency and at which rate.
    foreign_amount = models.DecimalField(
        **MONEY, null=True, blank=True, verbose_name=_("foreign amount")
    )
    foreign_currency = models.CharField(
        max_length=3, blank=True, verbose_name=_("foreign currency")
    )
    fx_rate = models.DecimalField(**RATE, null=True, blank=True, verbose_name=_("exchange rate"))

    class Meta:
        verbose_name = _("journal line")
        verbose_name_plural = _("journal lines")
        constraints = [models.CheckConstraint(condition=~Q(amount=0), name="journalline_nonzero")]

    def __str__(self):
        from payments.money import format_money

        side = _("debit") if self.amount > 0 else _("credit")
        amount = format_money(abs(self.amount), self.currency)
        return f"{self.account_id and self.account.code} {side} {amount}"

    def save(self, *args, **kwargs):
        if self.pk:
            raise ValidationError("Journal lines are immutable.")
        super().save(*args, **kwargs)
