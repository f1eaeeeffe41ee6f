"""Every inbound channel request, stored raw before anything looks at it, and the refusals counted
instead of stored."""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from payments.models.core import Attempt, ChannelAccount, Refund


class Notification(models.Model):
    """Every inbound channel request, stored raw before anything else looks at it."""

    class Outcome(models.TextChoices):
        RECEIVED = "received", _("received")
        APPLIED = "applied", _("applied")
        DUPLICATE = "duplicate", _("duplicate (no change)")
        REJECTED = "rejected", _("rejected")
        ERROR = "error", _("error")

    account = models.ForeignKey(
        ChannelAccount,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="notifications",
        verbose_name=_("account"),
    )
    channel_code = models.CharField(max_length=40, verbose_name=_("channel code"))
    method = models.CharField(max_length=8, default="POST", verbose_name=_("method"))
    headers = models.JSONField(default=dict, verbose_name=_("headers"))
    body = models.BinaryField(verbose_name=_("body"))
    body_size = models.PositiveIntegerField(
        _("body size"),
        null=True,
        blank=True,
        help_text=_("Bytes received, before any truncation."),
    )
    body_truncated = models.BooleanField(
        _("body truncated"),
        default=False,
        help_text=_("Failed verification: only the first bytes of the body are kept."),
    )
    remote_addr = models.GenericIPAddressField(null=True, blank=True, verbose_name=_("remote addr"))
    received_at = models.DateTimeField(
        auto_now_add=True, db_index=True, verbose_name=_("received at")
    )
    outcome = models.CharField(
        max_length=20, choices=Outcome.choices, default=Outcome.RECEIVED, verbose_name=_("outcome")
    )
    detail = models.TextField(blank=True, verbose_name=_("detail"))
    attempt = models.ForeignKey(
        Attempt,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="notifications",
        verbose_name=_("attempt"),
    )
    refund = models.ForeignKey(
        Refund,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="notifications",
        db_index=False,
        verbose_name=_("refund"),
    )
    flagged = models.BooleanField(
        default=False,
        help_text=_("Forged or mismatched: staff should look."),
        verbose_name=_("flagged"),
    )
    health_outcome = models.CharField(
        _("health outcome"),
        max_length=10,
        blank=True,
        help_text=_(
            "What this notice told routing about the channel: succeeded, failed or declined."
        ),
    )
    health_folded_at = models.DateTimeField(
        _("counted in health at"),
        null=True,
        blank=True,
        help_text=_("When the outcome reached the channel's health."),
    )

    class Meta:
        verbose_name = _("notification")
        verbose_name_plural = _("notifications")
        ordering = ["-received_at"]
        # The biggest table, written twice per request on the hottest path: indexed for what
        # is looked up (by time, account, attempt), and partially for the few rows staff and
        # the health fold look for, not for every low-cardinality column.
        indexes = [
            models.Index(
                fields=["-received_at"], condition=Q(flagged=True), name="notification_flagged"
            ),
            models.Index(
                fields=["refund"], condition=Q(refund__isnull=False), name="notification_refund"
            ),
            models.Index(
                fields=["account"],
                name="notification_health_pending",
                condition=Q(health_folded_at__isnull=True) & ~Q(health_outcome=""),
            ),
        ]

    def __str__(self):
        return (
            f"{self.channel_code} {self.received_at:%Y-%m-%d %H:%M:%S} {self.get_outcome_display()}"
        )


class NotificationRefusal(models.Model):
    """Notify requests refused before anything was stored (unknown account, too large, too
    many failures from one address): counted per day, account and reason, never kept, so a
    flood cannot fill the disk (docs/security.md)."""

    class Reason(models.TextChoices):
        UNKNOWN_ACCOUNT = "unknown_account", _("unknown account")
        TOO_LARGE = "too_large", _("too large")
        RATE_LIMITED = "rate_limited", _("too many failures from one address")

    day = models.DateField(_("day"))
    #: the account's code; empty for codes no account has (attacker-chosen, not kept)
    channel_code = models.CharField(_("channel code"), max_length=40, blank=True)
    reason = models.CharField(_("reason"), max_length=20, choices=Reason.choices)
    count = models.PositiveIntegerField(_("requests"), default=0)
    bytes = models.PositiveBigIntegerField(_("bytes announced"), default=0)
    last_at = models.DateTimeField(_("last at"))
    last_remote_addr = models.GenericIPAddressField(_("last remote addr"), null=True, blank=True)

    class Meta:
        verbose_name = _("refused notification")
        verbose_name_plural = _("refused notifications")
        ordering = ["-day", "channel_code", "reason"]
        constraints = [
            models.UniqueConstraint(
                fields=["day", "channel_code", "reason"], name="notification_refusal_once_a_day"
            ),
        ]

    def __str__(self):
        return f"{self.day} {self.channel_code or '?'} {self.reason} ×{self.count}"
