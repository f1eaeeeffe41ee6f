"""Sellers' payout destinations and payouts (balances are sums of the journal)."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from marketplace.models.catalogue import (
    MONEY,
    IllegalTransition,
)


class PayoutDestination(models.Model):
    class Kind(models.TextChoices):
        BANK = "bank", _("bank account")
        ALIPAY = "alipay", _("Alipay account")

    seller = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="payout_destinations",
        verbose_name=_("seller"),
    )
    kind = models.CharField(_("kind"), max_length=10, choices=Kind.choices)
    holder_name = models.CharField(_("account holder"), max_length=80)
    account = models.CharField(_("account number or Alipay login"), max_length=64)
    bank_name = models.CharField(_("bank"), max_length=80, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, verbose_name=_("created at"))

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("payout destination")
        verbose_name_plural = _("payout destinations")
        constraints = [
            models.UniqueConstraint(
                fields=["seller", "kind", "account"], name="payoutdestination_unique_per_seller"
            ),
        ]

    def __str__(self):
        return f"{self.get_kind_display()} ****{self.account[-4:]}"

    def clean(self):
        if self.kind == self.Kind.BANK and not self.bank_name:
            raise ValidationError({"bank_name": _("Name the bank of this account.")})


class Payout(models.Model):
    class Status(models.TextChoices):
        REQUESTED = "requested", _("requested")
        APPROVED = "approved", _("approved")
        PAID = "paid", _("paid")
        REJECTED = "rejected", _("rejected")

    seller = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="payouts",
        verbose_name=_("seller"),
    )
    destination = models.ForeignKey(
        PayoutDestination,
        on_delete=models.PROTECT,
        related_name="payouts",
        verbose_name=_("destination"),
    )
    amount = models.DecimalField(_("amount"), **MONEY)
    currency = models.CharField(max_length=3, default="CNY", verbose_name=_("currency"))
    status = models.CharField(
        _("status"), max_length=10, choices=Status.choices, default=Status.REQUESTED, db_index=True
    )
    requested_at = models.DateTimeField(auto_now_add=True, verbose_name=_("requested at"))
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("decided by"),
    )
    decided_at = models.DateTimeField(null=True, blank=True, verbose_name=_("decided at"))
    paid_at = models.DateTimeField(null=True, blank=True, verbose_name=_("paid at"))
    # Each step keeps its own who and when: a later step never overwrites an earlier one.
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("approved by"),
    )
    approved_at = models.DateTimeField(null=True, blank=True, verbose_name=_("approved at"))
    rejected_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("rejected by"),
    )
    rejected_at = models.DateTimeField(null=True, blank=True, verbose_name=_("rejected at"))
    paid_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("paid by"),
    )
    reference = models.CharField(_("bank reference"), max_length=64, blank=True)
    note = models.CharField(_("note"), max_length=255, blank=True)

    class Meta:
        ordering = ["-requested_at"]
        verbose_name = _("payout")
        verbose_name_plural = _("payouts")
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="payout_amount_positive")
        ]

    def __str__(self):
        from payments.money import format_money

        return _("payout #%(id)s %(amount)s %(status)s") % {
            "id": self.pk,
            "amount": format_money(self.amount, self.currency),
            "status": self.get_status_display(),
        }

    def transition(self, target: str) -> None:
        allowed = {
            self.Status.REQUESTED: {self.Status.APPROVED, self.Status.REJECTED},
            self.Status.APPROVED: {self.Status.PAID, self.Status.REJECTED},
        }
        if target not in allowed.get(self.status, set()):
            raise IllegalTransition("payout", self.status, target)
        self.status = target
