"""What the platform learns about each channel: its error codes, its health and breaker."""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _

from payments.models.core import ChannelAccount


class ErrorCode(models.Model):
    """A channel's error code as data: what to do next and what to tell the buyer."""

    class Action(models.TextChoices):
        FAILOVER = "failover", _("try the next channel")
        FINAL = "final", _("stop; show the reason")
        STEP_UP = "step_up", _("ask the buyer to verify")
        QUERY = "query", _("outcome unknown; query first")

    backend = models.CharField(max_length=20, verbose_name=_("backend"))
    code = models.CharField(max_length=64, verbose_name=_("code"))
    action = models.CharField(
        max_length=20, choices=Action.choices, default=Action.FAILOVER, verbose_name=_("action")
    )
    counts_against_channel = models.BooleanField(
        default=True,
        help_text=_("False when it is the buyer's side (e.g. empty balance)."),
        verbose_name=_("counts against channel"),
    )
    reason_zh = models.CharField(max_length=200, verbose_name=_("reason zh"))
    reason_en = models.CharField(max_length=200, verbose_name=_("reason en"))
    guidance_zh = models.CharField(max_length=255, blank=True, verbose_name=_("guidance zh"))
    guidance_en = models.CharField(max_length=255, blank=True, verbose_name=_("guidance en"))

    class Meta:
        verbose_name = _("error code")
        verbose_name_plural = _("error codes")
        ordering = ["backend", "code"]
        constraints = [
            models.UniqueConstraint(fields=["backend", "code"], name="errorcode_unique_per_backend")
        ]

    def __str__(self):
        return f"{self.backend}:{self.code}"


class ChannelHealth(models.Model):
    """Live health of one account, fed by real outcomes; holds the circuit breaker."""

    class Breaker(models.TextChoices):
        CLOSED = "closed", _("closed")
        OPEN = "open", _("open")
        HALF_OPEN = "half_open", _("half-open (probing)")

    account = models.OneToOneField(
        ChannelAccount, on_delete=models.CASCADE, related_name="health", verbose_name=_("account")
    )
    breaker = models.CharField(
        max_length=10, choices=Breaker.choices, default=Breaker.CLOSED, verbose_name=_("breaker")
    )
    opened_at = models.DateTimeField(null=True, blank=True, verbose_name=_("opened at"))
    state = models.JSONField(
        default=dict,
        help_text=_("Counters and smoothed estimates used by routing."),
        verbose_name=_("state"),
    )
    updated_at = models.DateTimeField(auto_now=True, verbose_name=_("updated at"))

    class Meta:
        verbose_name = _("channel health")
        verbose_name_plural = _("channel health")

    def __str__(self):
        return f"{self.account.code}: {self.get_breaker_display()}"


class BreakerEvent(models.Model):
    account = models.ForeignKey(
        ChannelAccount,
        on_delete=models.CASCADE,
        related_name="breaker_events",
        verbose_name=_("account"),
    )
    from_state = models.CharField(max_length=10, verbose_name=_("from state"))
    to_state = models.CharField(max_length=10, verbose_name=_("to state"))
    reason = models.CharField(max_length=255, verbose_name=_("reason"))
    at = models.DateTimeField(auto_now_add=True, verbose_name=_("at"))

    class Meta:
        verbose_name = _("breaker event")
        verbose_name_plural = _("breaker events")
        ordering = ["-at"]
