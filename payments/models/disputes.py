"""Provider disputes: a card chargeback or a PayPal case, as the channel's notices tell it."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

from django.db import models
from django.utils.translation import gettext_lazy as _

from payments.models.core import MONEY, ZERO, Attempt, ChannelAccount, Payment
from payments.money import CENT


class ProviderDispute(models.Model):
    """One dispute a channel opened against a captured attempt. Its notices carry the whole
    current state, so the row is simply brought up to date by each (payments/services/
    chargebacks.py); the money moves in the journal under keys of their own, once each."""

    class Outcome(models.TextChoices):
        OPEN = "open", _("open")
        WON = "won", _("won (money back)")
        LOST = "lost", _("lost (charged back)")
        CLOSED = "closed", _("inquiry closed")

    account = models.ForeignKey(
        ChannelAccount,
        on_delete=models.PROTECT,
        related_name="provider_disputes",
        verbose_name=_("channel account"),
    )
    payment = models.ForeignKey(
        Payment,
        on_delete=models.PROTECT,
        related_name="provider_disputes",
        verbose_name=_("payment"),
    )
    attempt = models.ForeignKey(
        Attempt, on_delete=models.PROTECT, related_name="+", verbose_name=_("attempt")
    )
    provider_id = models.CharField(_("provider's dispute id"), max_length=64)
    amount = models.DecimalField(_("disputed amount"), **MONEY)
    currency = models.CharField(_("currency"), max_length=3, default="CNY")
    fee = models.DecimalField(_("dispute fee"), default=ZERO, **MONEY)
    reason = models.CharField(_("reason"), max_length=64, blank=True)
    status = models.CharField(
        _("provider's status"), max_length=64, help_text=_("As the channel last named it.")
    )
    funds_withdrawn = models.BooleanField(
        _("funds withdrawn"),
        default=False,
        help_text=_("The channel took the disputed amount from our balance (not an inquiry)."),
    )
    evidence_due_by = models.DateTimeField(_("evidence due by"), null=True, blank=True)
    outcome = models.CharField(
        _("outcome"),
        max_length=10,
        choices=Outcome.choices,
        default=Outcome.OPEN,
        db_index=True,
    )
    lost_amount = models.DecimalField(_("amount charged back"), null=True, blank=True, **MONEY)
    opened_at = models.DateTimeField(_("opened at"))
    closed_at = models.DateTimeField(_("closed at"), null=True, blank=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("provider dispute")
        verbose_name_plural = _("provider disputes")
        ordering = ["-opened_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["account", "provider_id"], name="providerdispute_once_per_account"
            ),
        ]

    def __str__(self):
        return f"{self.account_id and self.account.code} {self.provider_id}"

    @property
    def is_open(self) -> bool:
        return self.outcome == self.Outcome.OPEN

    @property
    def foreign(self) -> bool:
        """Disputed in the foreign currency the buyer was charged in (the journal is CNY)."""
        attempt = self.attempt
        return bool(attempt and attempt.charge_currency and self.currency != attempt.currency)

    def ledger_cny(self, amount: Decimal) -> Decimal:
        """``amount`` (in the dispute's currency) as the channel's receivable holds it: at the
        capture's rate, as the capture booked it, so a whole dispute moves exactly that."""
        if not self.foreign:
            return amount
        return (Decimal(amount) * self.attempt.fx_rate).quantize(CENT, rounding=ROUND_HALF_UP)

    def price_share(self, amount: Decimal) -> Decimal:
        """``amount`` as a share of the order's CNY price (what the seller's split is of): the
        whole price for a whole dispute, in proportion for a part."""
        if not self.foreign:
            return amount
        attempt = self.attempt
        if amount >= attempt.charge_amount:
            return attempt.amount
        share = attempt.amount * Decimal(amount) / attempt.charge_amount
        return share.quantize(CENT, rounding=ROUND_HALF_UP)
