"""The staff-editable exchange-rate table: the default rate source (``payments.fx``)."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from payments.models.core import RATE


class FxRate(models.Model):
    """How many CNY one unit of ``currency`` buys, as of ``as_of``; who set it and when.

    Staff edit it in the admin (each save stamps the time and the editor); a rate older than
    ``PAYMENTS_FX_MAX_AGE`` is stale and no payment is converted at it."""

    currency = models.CharField(_("currency"), max_length=3, unique=True)
    rate = models.DecimalField(_("CNY per unit"), **RATE)
    as_of = models.DateTimeField(_("rate of"), default=timezone.now)
    source = models.CharField(_("source"), max_length=80, blank=True, default="")
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("set by"),
    )
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("exchange rate")
        verbose_name_plural = _("exchange rates")
        ordering = ["currency"]
        constraints = [models.CheckConstraint(condition=Q(rate__gt=0), name="fxrate_positive")]

    def __str__(self):
        return f"{self.currency} {self.rate}"
