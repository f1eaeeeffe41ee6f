"""Settlement files as the channels deliver them, and what matching them found."""

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

MONEY = {"max_digits": 16, "decimal_places": 2}


class SettlementFile(models.Model):
    """A raw file, stored once and never changed."""

    class Status(models.TextChoices):
        STORED = "stored", _("stored")
        RECONCILED = "reconciled", _("reconciled")
        FAILED = "failed", _("failed")

    channel_code = models.CharField(max_length=40, db_index=True)
    day = models.DateField(null=True, blank=True, db_index=True)
    name = models.CharField(max_length=255)
    content = models.BinaryField()
    sha256 = models.CharField(max_length=64, unique=True)
    size = models.PositiveBigIntegerField()
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.STORED)
    error = models.TextField(blank=True)
    received_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-received_at"]

    def __str__(self):
        return f"{self.channel_code} {self.day} {self.name}"


FEE = {"max_digits": 18, "decimal_places": 5}  # some channels state fees to five places


class SettlementLine(models.Model):
    """One normalised data line of a settlement file (bulk-loaded, then matched in the DB)."""

    class Kind(models.TextChoices):
        PAYMENT = "payment", _("payment")
        REFUND = "refund", _("refund")

    file = models.ForeignKey(SettlementFile, on_delete=models.CASCADE, related_name="lines")
    line_no = models.PositiveIntegerField()
    kind = models.CharField(max_length=10, choices=Kind.choices)
    out_trade_no = models.CharField(max_length=64, db_index=True)
    channel_trade_no = models.CharField(max_length=64, blank=True)
    refund_no = models.CharField(max_length=64, blank=True, db_index=True)
    amount = models.DecimalField(**MONEY)
    fee = models.DecimalField(**FEE)
    currency = models.CharField(max_length=3)
    status = models.CharField(max_length=20, blank=True)
    occurred_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["file", "line_no"]
        indexes = [models.Index(fields=["file", "kind"])]

    def __str__(self):
        return f"{self.file_id}:{self.line_no} {self.kind} {self.out_trade_no} {self.amount}"


class Discrepancy(models.Model):
    """The exceptions queue: a line (or an attempt of ours) that did not match."""

    class Kind(models.TextChoices):
        MISSING_OURS = "missing_ours", _("missing on our side")
        MISSING_CHANNEL = "missing_channel", _("missing at the channel")
        AMOUNT_MISMATCH = "amount_mismatch", _("amount mismatch")
        FEE_MISMATCH = "fee_mismatch", _("fee mismatch")
        STATUS_MISMATCH = "status_mismatch", _("status mismatch")
        DUPLICATE = "duplicate", _("duplicate")

    class Status(models.TextChoices):
        OPEN = "open", _("open")
        RESOLVED = "resolved", _("resolved")
        WRITTEN_OFF = "written_off", _("written off")

    file = models.ForeignKey(SettlementFile, on_delete=models.CASCADE, related_name="discrepancies")
    kind = models.CharField(max_length=20, choices=Kind.choices, db_index=True)
    attempt = models.ForeignKey("payments.Attempt", null=True, blank=True, on_delete=models.PROTECT, related_name="discrepancies")
    refund = models.ForeignKey("payments.Refund", null=True, blank=True, on_delete=models.PROTECT, related_name="discrepancies")
    line = models.ForeignKey(SettlementLine, null=True, blank=True, on_delete=models.CASCADE, related_name="discrepancies")
    expected = models.DecimalField(**FEE, null=True, blank=True)
    actual = models.DecimalField(**FEE, null=True, blank=True)
    note = models.TextField(blank=True)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.OPEN, db_index=True)
    resolved_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolution = models.CharField(
        _("resolution"), max_length=255, blank=True,
        help_text=_("What confirming the payment did: applied or duplicate, and the payment's status after it."),
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = _("discrepancies")

    def __str__(self):
        return f"{self.get_kind_display()} [{self.status}]"


class Statement(models.Model):
    """A channel account's day as its settlement file states it."""

    account = models.ForeignKey("payments.ChannelAccount", on_delete=models.PROTECT, related_name="statements")
    day = models.DateField()
    file = models.ForeignKey(SettlementFile, on_delete=models.PROTECT, related_name="statements")
    count = models.PositiveIntegerField(default=0)
    gross = models.DecimalField(**MONEY, default=0)
    refunded = models.DecimalField(**MONEY, default=0)
    fees = models.DecimalField(**MONEY, default=0)
    net = models.DecimalField(**MONEY, default=0)
    currency = models.CharField(max_length=3, default="CNY")
    expected_settlement_date = models.DateField()
    matched = models.PositiveIntegerField(default=0)
    discrepancies = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-day", "account"]
        constraints = [models.UniqueConstraint(fields=["account", "day"], name="statement_unique_per_account_day")]

    def __str__(self):
        return f"{self.account_id} {self.day} net {self.net}"


class SellerClearing(models.Model):
    """One seller's share of the orders whose payments a statement's settlement file confirmed
    as settled: the money the platform really holds for them. A report, not a movement (the
    sale already sits in the seller's pending balance); replaced with its statement."""

    statement = models.ForeignKey(Statement, on_delete=models.CASCADE, related_name="clearings")
    seller = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    currency = models.CharField(max_length=3)
    orders = models.PositiveIntegerField(_("orders"), default=0)
    gross = models.DecimalField(_("gross"), **MONEY, default=0)
    commission = models.DecimalField(_("commission"), **MONEY, default=0)
    net = models.DecimalField(_("seller net cleared"), **MONEY, default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-statement__day", "statement", "seller"]
        verbose_name = _("seller clearing")
        verbose_name_plural = _("seller clearings")
        constraints = [
            models.UniqueConstraint(fields=["statement", "seller", "currency"], name="sellerclearing_unique_per_statement_seller"),
        ]

    def __str__(self):
        return f"{self.statement_id} seller {self.seller_id} net {self.net} {self.currency}"
