"""The shop: brands, listings, card codes (encrypted), orders, disputes and payouts.

Seller balances are not stored here: they are sums of the payments journal (DESIGN.md §4).
State machines live next to their models (``transition``); workflows live in services.
"""

import re
import secrets
from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from payments.payables import PayableRef

MONEY = {"max_digits": 12, "decimal_places": 2}
CENT = Decimal("0.01")


class Category(models.TextChoices):
    SHOPPING = "shopping", _("Shopping cards")
    GAME = "game", _("Game point cards")
    ECOMMERCE = "ecommerce", _("E-commerce prepaid cards")
    VOUCHER = "voucher", _("Vouchers & memberships")
    TELECOM = "telecom", _("Phone top-up cards")


class IllegalTransition(Exception):
    """A state change the machine forbids (a stale request or a bug)."""

    def __init__(self, kind: str, current: str, target: str):
        super().__init__(f"{kind} cannot go from {current!r} to {target!r}")
        self.kind, self.current, self.target = kind, current, target


class Brand(models.Model):
    """A card issuer, with the format its codes follow and its shop terms."""

    class Checksum(models.TextChoices):
        NONE = "", _("none")
        LUHN = "luhn", _("Luhn (mod 10)")

    name = models.CharField(
        _("name"),
        max_length=80,
        unique=True,
        help_text=_("As shoppers in China know it, e.g. 京东E卡."),
    )
    name_en = models.CharField(
        _("English name"),
        max_length=80,
        blank=True,
        help_text=_("e.g. JD E-Card; search finds either name."),
    )
    slug = models.SlugField(_("slug"), max_length=80, unique=True)
    category = models.CharField(
        _("category"), max_length=20, choices=Category.choices, db_index=True
    )
    logo = models.FileField(_("logo"), upload_to="brands/", blank=True)
    description = models.CharField(_("description"), max_length=255, blank=True)
    code_min_length = models.PositiveSmallIntegerField(_("code min length"), default=10)
    code_max_length = models.PositiveSmallIntegerField(_("code max length"), default=32)
    code_charset = models.CharField(
        _("code characters"),
        max_length=80,
        default="A-Za-z0-9",
        help_text=_("Regular-expression character class body, e.g. A-Z0-9."),
    )
    code_checksum = models.CharField(
        _("code checksum"), max_length=10, choices=Checksum.choices, blank=True, default=""
    )
    pin_required = models.BooleanField(_("PIN required"), default=False)
    pin_min_length = models.PositiveSmallIntegerField(_("PIN min length"), default=4)
    pin_max_length = models.PositiveSmallIntegerField(_("PIN max length"), default=8)
    guarantee_hours = models.PositiveIntegerField(_("guarantee window (hours)"), default=72)
    commission_percent = models.DecimalField(
        _("commission %"),
        max_digits=5,
        decimal_places=2,
        default=Decimal("5.00"),
        validators=[MinValueValidator(Decimal("0")), MaxValueValidator(Decimal("50"))],
    )
    high_risk = models.BooleanField(_("high-risk brand"), default=False)
    active = models.BooleanField(_("active"), default=True)

    class Meta:
        ordering = ["name"]
        verbose_name = _("brand")
        verbose_name_plural = _("brands")
        constraints = [
            models.CheckConstraint(
                condition=Q(code_max_length__gte=F("code_min_length")), name="brand_code_len_range"
            ),
            models.CheckConstraint(
                condition=Q(pin_max_length__gte=F("pin_min_length")), name="brand_pin_len_range"
            ),
        ]

    def __str__(self):
        return self.name

    def clean(self):
        try:
            re.compile(f"[{self.code_charset}]")
        except re.error as exc:
            raise ValidationError(
                {"code_charset": _("Not a valid character class: %(error)s") % {"error": exc}}
            )
        if self.code_checksum == self.Checksum.LUHN and not re.fullmatch(
            f"[{self.code_charset}]+", "0123456789"
        ):
            raise ValidationError(
                {"code_checksum": _("A Luhn checksum needs codes that may hold digits.")}
            )

    def unit_commission(self, unit_price: Decimal) -> Decimal:
        """The platform's cut of one code sold at ``unit_price`` (rounded to the cent)."""
        return (unit_price * self.commission_percent / Decimal(100)).quantize(CENT)


class Listing(models.Model):
    """A seller's offer: cards of one brand and face value at one price."""

    class Status(models.TextChoices):
        ACTIVE = "active", _("on sale")
        PAUSED = "paused", _("paused")
        UNDER_REVIEW = "under_review", _("under review")  # held by risk: only Risk lifts it
        WITHDRAWN = "withdrawn", _("withdrawn")

    seller = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="listings",
        verbose_name=_("seller"),
    )
    brand = models.ForeignKey(
        Brand, on_delete=models.PROTECT, related_name="listings", verbose_name=_("brand")
    )
    face_value = models.DecimalField(_("face value"), **MONEY)
    price = models.DecimalField(_("price"), **MONEY)
    currency = models.CharField(max_length=3, default="CNY", verbose_name=_("currency"))
    status = models.CharField(
        _("status"), max_length=12, choices=Status.choices, default=Status.ACTIVE, db_index=True
    )
    created_at = models.DateTimeField(auto_now_add=True, verbose_name=_("created at"))
    updated_at = models.DateTimeField(auto_now=True, verbose_name=_("updated at"))

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("listing")
        verbose_name_plural = _("listings")
        constraints = [
            models.CheckConstraint(
                condition=Q(face_value__gt=0), name="listing_face_value_positive"
            ),
            models.CheckConstraint(
                condition=Q(price__gt=0) & Q(price__lte=F("face_value")),
                name="listing_price_within_face_value",
            ),
        ]

    def __str__(self):
        from payments.money import format_money

        return f"{self.brand} {format_money(self.face_value)} · {format_money(self.price)}"

    def clean(self):
        if self.price is not None and self.face_value is not None and self.price > self.face_value:
            raise ValidationError({"price": _("The price cannot be above the face value.")})

    @property
    def discount_percent(self) -> Decimal:
        return ((self.face_value - self.price) / self.face_value * 100).quantize(Decimal("0.1"))


class CardCode(models.Model):
    """One card secret. Code and PIN are Fernet tokens; ``fingerprint`` is an HMAC of the
    normalised code so duplicates are refused marketplace-wide without decrypting."""

    class Status(models.TextChoices):
        AVAILABLE = "available", _("available")
        RESERVED = "reserved", _("reserved")
        SOLD = "sold", _("sold")
        WITHDRAWN = "withdrawn", _("withdrawn")
        BAD = "bad", _("reported bad")

    listing = models.ForeignKey(
        Listing, on_delete=models.PROTECT, related_name="codes", verbose_name=_("listing")
    )
    code_encrypted = models.BinaryField(verbose_name=_("code encrypted"))
    pin_encrypted = models.BinaryField(default=b"", blank=True, verbose_name=_("pin encrypted"))
    fingerprint = models.CharField(max_length=64, unique=True, verbose_name=_("fingerprint"))
    hint = models.CharField(
        max_length=4,
        blank=True,
        default="",
        verbose_name=_("last characters"),
        help_text=_("The code's last four characters, so people can tell codes apart."),
    )
    status = models.CharField(
        max_length=10,
        choices=Status.choices,
        default=Status.AVAILABLE,
        db_index=True,
        verbose_name=_("status"),
    )
    order = models.ForeignKey(
        "Order",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="codes",
        verbose_name=_("order"),
    )
    reserved_until = models.DateTimeField(null=True, blank=True, verbose_name=_("reserved until"))
    sold_at = models.DateTimeField(null=True, blank=True, verbose_name=_("sold at"))
    created_at = models.DateTimeField(auto_now_add=True, verbose_name=_("created at"))

    class Meta:
        verbose_name = _("card code")
        verbose_name_plural = _("card codes")
        # (listing, status, id): reservation takes the oldest available codes of a listing
        # straight off the index, without sorting the listing's whole stock.
        indexes = [
            models.Index(fields=["listing", "status", "id"], name="cardcode_listing_status_id")
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=["available", "withdrawn"], order__isnull=True)
                | Q(status__in=["reserved", "sold", "bad"], order__isnull=False),
                name="cardcode_order_matches_status",
            ),
        ]

    def __str__(self):
        return _("code #%(id)s %(status)s") % {
            "id": self.pk,
            "status": self.get_status_display(),
        }  # never the secret

    def __repr__(self):
        return f"<CardCode #{self.pk} {self.status}>"

    @property
    def masked(self) -> str:
        """How pages name a code: ``****1234``, never more of the secret."""
        return f"****{self.hint}" if self.hint else f"#{self.pk}"


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
