"""Disputes over a delivered code, with the buyer's evidence stored privately."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from marketplace.models.catalogue import (
    CardCode,
)
from marketplace.models.orders import (
    Order,
)


class Dispute(models.Model):
    class Reason(models.TextChoices):
        INVALID = "invalid", _("code is invalid")
        USED = "used", _("code was already used")
        BALANCE_SHORT = "balance_short", _("balance is short")

    class Status(models.TextChoices):
        OPEN = "open", _("open")
        ANSWERED = "answered", _("seller answered")
        REFUNDED = "refunded", _("refunded to buyer")
        REJECTED = "rejected", _("rejected")

    order = models.ForeignKey(
        Order, on_delete=models.PROTECT, related_name="disputes", verbose_name=_("order")
    )
    code = models.OneToOneField(
        CardCode,
        on_delete=models.PROTECT,
        related_name="dispute",
        error_messages={"unique": _("This code has already been disputed.")},
        verbose_name=_("code"),
    )
    reason = models.CharField(_("reason"), max_length=20, choices=Reason.choices)
    note = models.TextField(_("buyer's note"), max_length=2000)
    seller_answer = models.TextField(_("seller's answer"), max_length=2000, blank=True)
    seller_answered_at = models.DateTimeField(
        null=True, blank=True, verbose_name=_("seller answered at")
    )
    status = models.CharField(
        _("status"), max_length=10, choices=Status.choices, default=Status.OPEN, db_index=True
    )
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("decided by"),
    )
    decided_at = models.DateTimeField(null=True, blank=True, verbose_name=_("decided at"))
    decision_note = models.CharField(_("decision note"), max_length=255, blank=True)
    refund = models.ForeignKey(
        "payments.Refund",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text=_("The refund asked for when the dispute was decided for the buyer."),
        verbose_name=_("refund"),
    )
    created_at = models.DateTimeField(auto_now_add=True, verbose_name=_("created at"))

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("dispute")
        verbose_name_plural = _("disputes")

    def __str__(self):
        reason, status = self.get_reason_display(), self.get_status_display()
        return f"{self.order_id}/#{self.code_id} {reason} {status}"

    @property
    def is_open(self) -> bool:
        return self.status in {self.Status.OPEN, self.Status.ANSWERED}

    @property
    def refund_awaiting_approval(self) -> bool:
        """Decided for the buyer, the refund not yet approved by Finance (no money left)."""
        from payments.states import RefundStatus

        return (
            self.status == self.Status.REFUNDED
            and self.refund_id is not None
            and self.refund.status == RefundStatus.REQUESTED
        )

    def get_status_shown(self) -> str:
        """The status as staff and buyer read it: "refund awaiting approval" until Finance
        approves the refund of a decision for the buyer."""
        if self.refund_awaiting_approval:
            return str(_("refund awaiting approval"))
        return str(self.get_status_display())


def _evidence_storage():
    from django.core.files.storage import storages

    return storages["evidence"]


class DisputeEvidence(models.Model):
    """A screenshot the buyer attached; kept in private storage (no public URL)."""

    dispute = models.ForeignKey(
        Dispute, on_delete=models.PROTECT, related_name="evidence", verbose_name=_("dispute")
    )
    file = models.FileField(_("file"), storage=_evidence_storage, upload_to="disputes/%Y/%m/")
    content_type = models.CharField(_("content type"), max_length=40)
    original_name = models.CharField(_("original name"), max_length=120, blank=True)
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("uploaded by"),
    )
    created_at = models.DateTimeField(auto_now_add=True, verbose_name=_("created at"))

    class Meta:
        ordering = ["id"]
        verbose_name = _("dispute evidence")
        verbose_name_plural = _("dispute evidence")

    def __str__(self):
        return self.original_name or f"evidence #{self.pk}"
