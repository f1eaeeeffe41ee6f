"""Orders: the buyer's purchase, its state machine, and every reveal of a code."""

from __future__ import annotations

import secrets
from decimal import Decimal

from django.conf import settings
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from marketplace.models.catalogue import (
    MONEY,
    IllegalTransition,
    Listing,
)
from payments.payables import PayableRef


def new_order_number() -> str:
    """Unguessable (80 bits) and short enough to read out on the phone."""
    alphabet = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"
    return "".join(secrets.choice(alphabet) for _ in range(16))


class Order(models.Model):
    class Status(models.TextChoices):
        AWAITING_PAYMENT = "awaiting_payment", _("awaiting payment")
        PAID = "paid", _("paid")
        DELIVERED = "delivered", _("delivered")
        COMPLETED = "completed", _("completed")
        EXPIRED = "expired", _("expired")
        CANCELLED = "cancelled", _("cancelled")
        UNDER_REVIEW = "under_review", _("under review")
        DISPUTED = "disputed", _("disputed")
        REFUNDED = "refunded", _("refunded")

    number = models.CharField(
        max_length=20,
        unique=True,
        default=new_order_number,
        editable=False,
        verbose_name=_("number"),
    )
    buyer = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="orders",
        verbose_name=_("buyer"),
    )
    listing = models.ForeignKey(
        Listing, on_delete=models.PROTECT, related_name="orders", verbose_name=_("listing")
    )
    quantity = models.PositiveIntegerField(
        validators=[MinValueValidator(1)], verbose_name=_("quantity")
    )
    unit_price = models.DecimalField(**MONEY, verbose_name=_("unit price"))
    unit_commission = models.DecimalField(
        _("commission per code"),
        **MONEY,
        default=Decimal("0.00"),
        help_text=_("The platform's cut of each code, fixed when the order was placed."),
    )
    amount = models.DecimalField(**MONEY, verbose_name=_("amount"))
    currency = models.CharField(max_length=3, default="CNY", verbose_name=_("currency"))
    status = models.CharField(
        max_length=20,
        choices=Status.choices,
        default=Status.AWAITING_PAYMENT,
        db_index=True,
        verbose_name=_("status"),
    )
    expires_at = models.DateTimeField(db_index=True, verbose_name=_("expires at"))
    paid_at = models.DateTimeField(null=True, blank=True, verbose_name=_("paid at"))
    delivered_at = models.DateTimeField(null=True, blank=True, verbose_name=_("delivered at"))
    guarantee_until = models.DateTimeField(
        null=True,
        blank=True,
        db_index=True,
        help_text=_("Disputes are accepted until then; the seller's money matures after it."),
        verbose_name=_("guarantee until"),
    )
    completed_at = models.DateTimeField(null=True, blank=True, verbose_name=_("completed at"))
    refunded_at = models.DateTimeField(null=True, blank=True, verbose_name=_("refunded at"))
    payment_public_id = models.UUIDField(
        null=True,
        blank=True,
        help_text=_("The payment that paid this order."),
        verbose_name=_("payment public id"),
    )
    note = models.TextField(
        blank=True,
        help_text=_("Why the order is in its state, when unusual."),
        verbose_name=_("note"),
    )
    created_at = models.DateTimeField(auto_now_add=True, verbose_name=_("created at"))

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("order")
        verbose_name_plural = _("orders")
        constraints = [
            models.CheckConstraint(condition=Q(quantity__gte=1), name="order_quantity_positive"),
            models.CheckConstraint(condition=Q(amount__gt=0), name="order_amount_positive"),
            models.CheckConstraint(
                condition=Q(unit_commission__gte=0) & Q(unit_commission__lte=F("unit_price")),
                name="order_commission_within_price",
            ),
        ]
        # Risk monitoring reads dispute rates by delivery time (marketplace/metrics.py).
        indexes = [
            models.Index(
                fields=["delivered_at"],
                condition=Q(delivered_at__isnull=False),
                name="order_delivered_at",
            )
        ]

    def __str__(self):
        return self.number

    @property
    def payable(self) -> PayableRef:
        """What the shop hands the payment platform to pay this order."""
        return PayableRef.order(self.number)

    @property
    def payment_reference(self) -> str:
        """The order's payments carry this reference (``Payment.reference``)."""
        return str(self.payable)

    @property
    def is_payable(self) -> bool:
        return self.status == self.Status.AWAITING_PAYMENT and self.expires_at > timezone.now()

    @property
    def seller_net_per_code(self) -> Decimal:
        return self.unit_price - self.unit_commission

    @property
    def codes_revealable(self) -> bool:
        """Codes are shown to the buyer once delivered, and stay visible afterwards."""
        return self.delivered_at is not None and self.status in REVEALABLE_STATUSES

    def transition(self, target: str) -> None:
        if target not in ORDER_TRANSITIONS.get(self.status, set()):
            raise IllegalTransition("order", self.status, target)
        self.status = target


_S = Order.Status
# Monotone: once money is known to have moved, an order never goes back to waiting for it.
# expired/cancelled → paid is the late success that re-reserves stock (DESIGN.md §3).
ORDER_TRANSITIONS: dict[str, set[str]] = {
    _S.AWAITING_PAYMENT: {_S.PAID, _S.EXPIRED, _S.CANCELLED, _S.UNDER_REVIEW},
    _S.UNDER_REVIEW: {_S.AWAITING_PAYMENT, _S.PAID, _S.EXPIRED, _S.CANCELLED},
    _S.PAID: {_S.DELIVERED, _S.REFUNDED},
    _S.DELIVERED: {_S.COMPLETED, _S.DISPUTED, _S.REFUNDED},
    _S.DISPUTED: {_S.DELIVERED, _S.REFUNDED},
    _S.COMPLETED: {_S.REFUNDED},
    _S.EXPIRED: {_S.PAID, _S.REFUNDED},
    _S.CANCELLED: {_S.PAID, _S.REFUNDED},
    _S.REFUNDED: set(),
}
REVEALABLE_STATUSES = {_S.DELIVERED, _S.COMPLETED, _S.DISPUTED, _S.REFUNDED}
# Orders whose stock is held for the buyer while they pay.
HOLDING_STATUSES = {_S.AWAITING_PAYMENT, _S.UNDER_REVIEW}


class RevealAudit(models.Model):
    """Every time a plaintext secret is shown or mailed: who, when, which order, from where."""

    class Channel(models.TextChoices):
        WEB = "web", _("order page")
        API = "api", _("API")
        EMAIL = "email", _("delivery e-mail")

    order = models.ForeignKey(
        Order, on_delete=models.PROTECT, related_name="reveals", verbose_name=_("order")
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("user"),
    )
    channel = models.CharField(
        max_length=10, choices=Channel.choices, default=Channel.WEB, verbose_name=_("channel")
    )
    codes = models.PositiveSmallIntegerField(_("codes shown"), default=0)
    ip = models.GenericIPAddressField(null=True, blank=True, verbose_name=_("ip"))
    user_agent = models.CharField(max_length=255, blank=True, verbose_name=_("user agent"))
    at = models.DateTimeField(auto_now_add=True, db_index=True, verbose_name=_("at"))

    class Meta:
        ordering = ["-at"]
        verbose_name = _("reveal audit")
        verbose_name_plural = _("reveal audits")

    def __str__(self):
        return f"{self.order_id} {self.get_channel_display()} {self.at:%Y-%m-%d %H:%M}"
