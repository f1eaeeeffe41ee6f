"""Per-buyer records of the API and the channels: idempotency keys, WeChat openids."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class IdempotencyRecord(models.Model):
    """The first answer to a state-changing API call, replayed for repeats of its key."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+", verbose_name=_("user")
    )
    key = models.CharField(max_length=128, verbose_name=_("key"))
    method = models.CharField(max_length=8, verbose_name=_("method"))
    path = models.CharField(max_length=255, verbose_name=_("path"))
    request_hash = models.CharField(max_length=64, verbose_name=_("request hash"))
    status_code = models.PositiveSmallIntegerField(null=True, verbose_name=_("status code"))
    response_body = models.JSONField(null=True, verbose_name=_("response body"))
    created_at = models.DateTimeField(auto_now_add=True, verbose_name=_("created at"))

    class Meta:
        verbose_name = _("idempotency record")
        verbose_name_plural = _("idempotency records")
        constraints = [
            models.UniqueConstraint(fields=["user", "key"], name="idempotency_unique_per_user")
        ]


class WechatPayer(models.Model):
    """A buyer's openid under one WeChat app id, from WeChat's snsapi_base OAuth: JSAPI
    payments name the payer by it. Remembered so the buyer goes through OAuth once per app."""

    buyer = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="wechat_payers",
        verbose_name=_("buyer"),
    )
    app_id = models.CharField(max_length=64, verbose_name=_("app id"))
    openid = models.CharField(max_length=128, verbose_name=_("openid"))
    created_at = models.DateTimeField(auto_now_add=True, verbose_name=_("created at"))
    updated_at = models.DateTimeField(auto_now=True, verbose_name=_("updated at"))

    class Meta:
        verbose_name = _("WeChat payer")
        verbose_name_plural = _("WeChat payers")
        constraints = [
            models.UniqueConstraint(fields=["buyer", "app_id"], name="wechat_payer_per_app")
        ]

    def __str__(self) -> str:
        return f"{self.buyer_id} @ {self.app_id}"
