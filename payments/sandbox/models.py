"""The simulated providers' own state: their trades, refunds, outgoing notifications and
the fault switches staff flip to rehearse outages."""

import secrets

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

MONEY = {"max_digits": 14, "decimal_places": 2}


class SandboxMerchant(models.Model):
    """A merchant as the provider knows it: its id and what it registered (public keys,
    API keys, webhook ids). Filled by seed_demo / tests, never by the platform's backends."""

    channel = models.CharField(max_length=20)
    merchant_id = models.CharField(max_length=64)
    config = models.JSONField(default=dict)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["channel", "merchant_id"], name="sandbox_merchant_unique"
            )
        ]

    def __str__(self):
        return f"{self.channel}:{self.merchant_id}"


def provider_trade_no() -> str:
    return timezone.now().strftime("%Y%m%d") + "".join(
        secrets.choice("0123456789") for _ in range(16)
    )


class SandboxTrade(models.Model):
    class Status(models.TextChoices):
        WAITING = "waiting", _("waiting for the payer")
        PAID = "paid", _("paid")
        DECLINED = "declined", _("declined")
        CLOSED = "closed", _("closed")

    channel = models.CharField(max_length=20, db_index=True)
    merchant_id = models.CharField(max_length=64)
    out_trade_no = models.CharField(max_length=64)
    trade_no = models.CharField(max_length=64, unique=True, default=provider_trade_no)
    amount = models.DecimalField(**MONEY)
    currency = models.CharField(max_length=3, default="CNY")
    subject = models.CharField(max_length=255, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.WAITING)
    decline_code = models.CharField(max_length=64, blank=True)
    notify_url = models.URLField(max_length=500, blank=True)
    return_url = models.URLField(max_length=500, blank=True)
    extra = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    paid_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["channel", "merchant_id", "out_trade_no"], name="sandbox_trade_unique"
            )
        ]

    def __str__(self):
        return f"{self.channel} {self.out_trade_no} [{self.status}]"

    @property
    def refunded(self):
        return sum(
            (r.amount for r in self.refunds.all() if r.status == SandboxRefund.Status.SUCCESS),
            start=0,
        )


class SandboxRefund(models.Model):
    class Status(models.TextChoices):
        PROCESSING = "processing", "processing"
        SUCCESS = "success", "success"
        FAILED = "failed", "failed"

    trade = models.ForeignKey(SandboxTrade, on_delete=models.CASCADE, related_name="refunds")
    out_refund_no = models.CharField(max_length=64)
    refund_id = models.CharField(max_length=64, unique=True, default=provider_trade_no)
    amount = models.DecimalField(**MONEY)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.SUCCESS)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["trade", "out_refund_no"], name="sandbox_refund_unique")
        ]


class SandboxNotification(models.Model):
    """One notification the provider owes the merchant; retried on the provider's schedule
    until the merchant answers as the provider requires."""

    channel = models.CharField(max_length=20, db_index=True)
    url = models.URLField(max_length=500)
    headers = models.JSONField(default=dict)
    body = models.BinaryField()
    attempts = models.PositiveSmallIntegerField(default=0)
    delivered = models.BooleanField(default=False)
    last_status = models.CharField(max_length=120, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    next_try_at = models.DateTimeField(null=True, blank=True)


class SandboxFault(models.Model):
    """Per-channel fault switches: rehearse outages, slowness, errors and lost callbacks."""

    channel = models.CharField(max_length=20, unique=True)
    down = models.BooleanField(default=False, help_text="Every API call answers HTTP 503.")
    slow_ms = models.PositiveIntegerField(default=0, help_text="Delay before answering API calls.")
    error_rate = models.FloatField(
        default=0.0, help_text="Share of API calls that answer a system error (0–1)."
    )
    lose_notifications = models.BooleanField(default=False, help_text="Never send notifications.")

    def __str__(self):
        return f"{self.channel} faults"
