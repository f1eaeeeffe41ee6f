"""The shop: brands, listings, card codes (encrypted), orders, disputes and payouts.

Seller balances are not stored here: they are sums of the payments journal (DESIGN.md §4).
"""

import secrets
from decimal import Decimal

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

MONEY = {"max_digits": 12, "decimal_places": 2}


class Category(models.TextChoices):
    SHOPPING = "shopping", _("Shopping cards")
    GAME = "game", _("Game point cards")
    ECOMMERCE = "ecommerce", _("E-commerce prepaid cards")
    VOUCHER = "voucher", _("Vouchers & memberships")
    TELECOM = "telecom", _("Phone top-up cards")


class Brand(models.Model):
    """A card issuer, with the format its codes follow and its shop terms."""

    class Checksum(models.TextChoices):
        NONE = "", _("none")
        LUHN = "luhn", _("Luhn (mod 10)")

    name = models.CharField(_("name"), max_length=80, unique=True)
    slug = models.SlugField(_("slug"), max_length=80, unique=True)
    category = models.CharField(_("category"), max_length=20, choices=Category.choices, db_index=True)
    logo = models.FileField(_("logo"), upload_to="brands/", blank=True)
    description = models.CharField(_("description"), max_length=255, blank=True)
    code_min_length = models.PositiveSmallIntegerField(_("code min length"), default=10)
    code_max_length = models.PositiveSmallIntegerField(_("code max length"), default=32)
    code_charset = models.CharField(
        _("code characters"), max_length=80, default="A-Za-z0-9",
        help_text=_("Regular-expression character class body, e.g. A-Z0-9."),
    )
    code_checksum = models.CharField(_("code checksum"), max_length=10, choices=Checksum.choices, blank=True, default="")
    pin_required = models.BooleanField(_("PIN required"), default=False)
    pin_min_length = models.PositiveSmallIntegerField(_("PIN min length"), default=4)
    pin_max_length = models.PositiveSmallIntegerField(_("PIN max length"), default=8)
    guarantee_hours = models.PositiveIntegerField(_("guarantee window (hours)"), default=72)
    commission_percent = models.DecimalField(
        _("commission %"), max_digits=5, decimal_places=2, default=Decimal("5.00"),
        validators=[MinValueValidator(Decimal("0")), MaxValueValidator(Decimal("50"))],
    )
    high_risk = models.BooleanField(_("high-risk brand"), default=False)
    active = models.BooleanField(_("active"), default=True)

    class Meta:
        ordering = ["name"]
        verbose_name = _("brand")
        verbose_name_plural = _("brands")
        constraints = [
            models.CheckConstraint(condition=Q(code_max_length__gte=F("code_min_length")), name="brand_code_len_range"),
            models.CheckConstraint(condition=Q(pin_max_length__gte=F("pin_min_length")), name="brand_pin_len_range"),
        ]

    def __str__(self):
        return self.name


class Listing(models.Model):
    """A seller's offer: cards of one brand and face value at one price."""

    class Status(models.TextChoices):
        ACTIVE = "active", _("on sale")
        PAUSED = "paused", _("paused")
        WITHDRAWN = "withdrawn", _("withdrawn")

    seller = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="listings")
    brand = models.ForeignKey(Brand, on_delete=models.PROTECT, related_name="listings")
    face_value = models.DecimalField(_("face value"), **MONEY)
    price = models.DecimalField(_("price"), **MONEY)
    currency = models.CharField(max_length=3, default="CNY")
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.ACTIVE, db_index=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("listing")
        verbose_name_plural = _("listings")
        constraints = [
            models.CheckConstraint(condition=Q(face_value__gt=0), name="listing_face_value_positive"),
            models.CheckConstraint(condition=Q(price__gt=0) & Q(price__lte=F("face_value")), name="listing_price_within_face_value"),
        ]

    def __str__(self):
        return f"{self.brand} {self.face_value} @ {self.price}"

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

    listing = models.ForeignKey(Listing, on_delete=models.PROTECT, related_name="codes")
    code_encrypted = models.BinaryField()
    pin_encrypted = models.BinaryField(default=b"", blank=True)
    fingerprint = models.CharField(max_length=64, unique=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.AVAILABLE, db_index=True)
    order = models.ForeignKey("Order", null=True, blank=True, on_delete=models.PROTECT, related_name="codes")
    reserved_until = models.DateTimeField(null=True, blank=True)
    sold_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["listing", "status"], name="cardcode_listing_status")]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=["available", "withdrawn"], order__isnull=True)
                | Q(status__in=["reserved", "sold", "bad"], order__isnull=False),
                name="cardcode_order_matches_status",
            ),
        ]

    def __str__(self):
        return f"code #{self.pk} [{self.status}]"  # never the secret


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

    number = models.CharField(max_length=20, unique=True, default=new_order_number, editable=False)
    buyer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="orders")
    listing = models.ForeignKey(Listing, on_delete=models.PROTECT, related_name="orders")
    quantity = models.PositiveIntegerField(validators=[MinValueValidator(1)])
    unit_price = models.DecimalField(**MONEY)
    amount = models.DecimalField(**MONEY)
    currency = models.CharField(max_length=3, default="CNY")
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.AWAITING_PAYMENT, db_index=True)
    expires_at = models.DateTimeField(db_index=True)
    paid_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    payment_public_id = models.UUIDField(null=True, blank=True, help_text=_("The payment that paid this order."))
    note = models.CharField(max_length=255, blank=True, help_text=_("Why the order is in its state, when unusual."))
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("order")
        verbose_name_plural = _("orders")
        constraints = [
            models.CheckConstraint(condition=Q(quantity__gte=1), name="order_quantity_positive"),
            models.CheckConstraint(condition=Q(amount__gt=0), name="order_amount_positive"),
        ]

    def __str__(self):
        return self.number

    @property
    def payment_reference(self) -> str:
        return f"order:{self.number}"

    @property
    def is_payable(self) -> bool:
        return self.status == self.Status.AWAITING_PAYMENT and self.expires_at > timezone.now()


class RevealAudit(models.Model):
    """Every time a plaintext secret is shown or mailed: who, when, which order, from where."""

    order = models.ForeignKey(Order, on_delete=models.PROTECT, related_name="reveals")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.PROTECT, related_name="+")
    channel = models.CharField(max_length=10, default="web")  # web | api | email
    ip = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=255, blank=True)
    at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-at"]


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

    order = models.ForeignKey(Order, on_delete=models.PROTECT, related_name="disputes")
    code = models.OneToOneField(CardCode, on_delete=models.PROTECT, related_name="dispute")
    reason = models.CharField(max_length=20, choices=Reason.choices)
    note = models.TextField(_("buyer's note"), max_length=2000)
    seller_answer = models.TextField(_("seller's answer"), max_length=2000, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.OPEN, db_index=True)
    decided_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    decided_at = models.DateTimeField(null=True, blank=True)
    decision_note = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]


class PayoutDestination(models.Model):
    class Kind(models.TextChoices):
        BANK = "bank", _("bank account")
        ALIPAY = "alipay", _("Alipay account")

    seller = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="payout_destinations")
    kind = models.CharField(max_length=10, choices=Kind.choices)
    holder_name = models.CharField(max_length=80)
    account = models.CharField(max_length=64)
    bank_name = models.CharField(max_length=80, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self):
        return f"{self.get_kind_display()} ****{self.account[-4:]}"


class Payout(models.Model):
    class Status(models.TextChoices):
        REQUESTED = "requested", _("requested")
        APPROVED = "approved", _("approved")
        PAID = "paid", _("paid")
        REJECTED = "rejected", _("rejected")

    seller = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="payouts")
    destination = models.ForeignKey(PayoutDestination, on_delete=models.PROTECT, related_name="payouts")
    amount = models.DecimalField(**MONEY)
    currency = models.CharField(max_length=3, default="CNY")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.REQUESTED, db_index=True)
    requested_at = models.DateTimeField(auto_now_add=True)
    decided_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    decided_at = models.DateTimeField(null=True, blank=True)
    paid_at = models.DateTimeField(null=True, blank=True)
    reference = models.CharField(_("bank reference"), max_length=64, blank=True)

    class Meta:
        ordering = ["-requested_at"]
        constraints = [models.CheckConstraint(condition=Q(amount__gt=0), name="payout_amount_positive")]
