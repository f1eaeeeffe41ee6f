"""Brands, listings and their card codes (encrypted until the buyer has paid)."""

from __future__ import annotations

import re
from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _

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
