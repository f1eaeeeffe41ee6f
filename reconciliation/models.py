"""Settlement files as the channels deliver them, and what matching them found."""

import io

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

    channel_code = models.CharField(max_length=40, db_index=True, verbose_name=_("channel code"))
    day = models.DateField(null=True, blank=True, db_index=True, verbose_name=_("day"))
    name = models.CharField(max_length=255, verbose_name=_("name"))
    #: the raw file in storage (read as a stream, never whole); ``content`` holds only the
    #: bytes of files stored before files went to storage
    raw = models.FileField(
        upload_to="settlements/%Y/%m/",
        max_length=300,
        blank=True,
        verbose_name=_("raw file"),
    )
    content = models.BinaryField(blank=True, default=b"", verbose_name=_("content"))
    sha256 = models.CharField(max_length=64, unique=True, verbose_name=_("sha256"))
    size = models.PositiveBigIntegerField(verbose_name=_("size"))
    status = models.CharField(
        max_length=12, choices=Status.choices, default=Status.STORED, verbose_name=_("status")
    )
    error = models.TextField(blank=True, verbose_name=_("error"))
    received_at = models.DateTimeField(auto_now_add=True, verbose_name=_("received at"))

    class Meta:
        verbose_name = _("settlement file")
        verbose_name_plural = _("settlement files")
        ordering = ["-received_at"]

    def __str__(self):
        return f"{self.channel_code} {self.day} {self.name}"

    def open_raw(self):
        """The raw bytes as a binary stream to read from (the caller closes it)."""
        if self.raw:
            return self.raw.storage.open(self.raw.name, "rb")
        return io.BytesIO(bytes(self.content))


class ReconcileRun(models.Model):
    """One reconciliation of a settlement file, with its progress while it runs (written
    outside the run's transaction on PostgreSQL, so admin sees it live)."""

    class Status(models.TextChoices):
        RUNNING = "running", _("running")
        DONE = "done", _("done")
        FAILED = "failed", _("failed")

    file = models.ForeignKey(
        SettlementFile,
        on_delete=models.CASCADE,
        related_name="runs",
        verbose_name=_("file"),
    )
    status = models.CharField(
        max_length=10,
        choices=Status.choices,
        default=Status.RUNNING,
        verbose_name=_("status"),
    )
    stage = models.CharField(max_length=20, blank=True, verbose_name=_("stage"))
    lines_read = models.PositiveBigIntegerField(default=0, verbose_name=_("lines read"))
    bytes_read = models.PositiveBigIntegerField(default=0, verbose_name=_("bytes read"))
    size = models.PositiveBigIntegerField(default=0, verbose_name=_("size"))
    matched = models.PositiveBigIntegerField(default=0, verbose_name=_("matched"))
    error = models.TextField(blank=True, verbose_name=_("error"))
    started_at = models.DateTimeField(verbose_name=_("started at"))
    updated_at = models.DateTimeField(verbose_name=_("updated at"))
    finished_at = models.DateTimeField(null=True, blank=True, verbose_name=_("finished at"))

    class Meta:
        verbose_name = _("reconciliation run")
        verbose_name_plural = _("reconciliation runs")
        ordering = ["-started_at", "-id"]

    def __str__(self):
        return f"{self.file_id} {self.status} {self.lines_read}"

    @property
    def percent(self) -> int:
        """How far the reading of the raw file has got (100 once done)."""
        if self.status == self.Status.DONE:
            return 100
        return min(99, int(self.bytes_read * 100 / self.size)) if self.size else 0


FEE = {"max_digits": 18, "decimal_places": 5}  # some channels state fees to five places


class SettlementLine(models.Model):
    """One normalised data line of a settlement file (bulk-loaded, then matched in the DB)."""

    class Kind(models.TextChoices):
        PAYMENT = "payment", _("payment")
        REFUND = "refund", _("refund")

    file = models.ForeignKey(
        SettlementFile, on_delete=models.CASCADE, related_name="lines", verbose_name=_("file")
    )
    line_no = models.PositiveIntegerField(verbose_name=_("line no"))
    kind = models.CharField(max_length=10, choices=Kind.choices, verbose_name=_("kind"))
    out_trade_no = models.CharField(max_length=64, db_index=True, verbose_name=_("out trade no"))
    channel_trade_no = models.CharField(
        max_length=64, blank=True, verbose_name=_("channel trade no")
    )
    refund_no = models.CharField(
        max_length=64, blank=True, db_index=True, verbose_name=_("refund no")
    )
    amount = models.DecimalField(**MONEY, verbose_name=_("amount"))
    fee = models.DecimalField(**FEE, verbose_name=_("fee"))
    currency = models.CharField(max_length=3, verbose_name=_("currency"))
    status = models.CharField(max_length=20, blank=True, verbose_name=_("status"))
    occurred_at = models.DateTimeField(null=True, blank=True, verbose_name=_("occurred at"))

    class Meta:
        verbose_name = _("settlement line")
        verbose_name_plural = _("settlement lines")
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
        REFUND_MISSING_CHANNEL = "refund_missing_channel", _("refund missing at the channel")

    class Status(models.TextChoices):
        OPEN = "open", _("open")
        RESOLVED = "resolved", _("resolved")
        WRITTEN_OFF = "written_off", _("written off")

    file = models.ForeignKey(
        SettlementFile,
        on_delete=models.CASCADE,
        related_name="discrepancies",
        verbose_name=_("file"),
    )
    kind = models.CharField(
        max_length=32, choices=Kind.choices, db_index=True, verbose_name=_("kind")
    )
    attempt = models.ForeignKey(
        "payments.Attempt",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="discrepancies",
        verbose_name=_("attempt"),
    )
    refund = models.ForeignKey(
        "payments.Refund",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="discrepancies",
        verbose_name=_("refund"),
    )
    line = models.ForeignKey(
        SettlementLine,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="discrepancies",
        verbose_name=_("line"),
    )
    expected = models.DecimalField(**FEE, null=True, blank=True, verbose_name=_("expected"))
    actual = models.DecimalField(**FEE, null=True, blank=True, verbose_name=_("actual"))
    note = models.TextField(blank=True, verbose_name=_("note"))
    status = models.CharField(
        max_length=12,
        choices=Status.choices,
        default=Status.OPEN,
        db_index=True,
        verbose_name=_("status"),
    )
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("resolved by"),
    )
    resolved_at = models.DateTimeField(null=True, blank=True, verbose_name=_("resolved at"))
    resolution = models.CharField(
        _("resolution"),
        max_length=255,
        blank=True,
        help_text=_(
            "What confirming the payment did: applied or duplicate, and the payment's status "
            "after it."
        ),
    )
    created_at = models.DateTimeField(auto_now_add=True, verbose_name=_("created at"))

    class Meta:
        verbose_name = _("discrepancy")
        ordering = ["-created_at", "-id"]
        verbose_name_plural = _("discrepancies")

    def __str__(self):
        return f"{self.get_kind_display()} {self.get_status_display()}"


class Statement(models.Model):
    """A channel account's day as its settlement file states it."""

    account = models.ForeignKey(
        "payments.ChannelAccount",
        on_delete=models.PROTECT,
        related_name="statements",
        verbose_name=_("account"),
    )
    day = models.DateField(verbose_name=_("day"))
    file = models.ForeignKey(
        SettlementFile, on_delete=models.PROTECT, related_name="statements", verbose_name=_("file")
    )
    count = models.PositiveIntegerField(default=0, verbose_name=_("count"))
    gross = models.DecimalField(**MONEY, default=0, verbose_name=_("gross"))
    refunded = models.DecimalField(**MONEY, default=0, verbose_name=_("refunded"))
    fees = models.DecimalField(**MONEY, default=0, verbose_name=_("fees"))
    net = models.DecimalField(**MONEY, default=0, verbose_name=_("net"))
    currency = models.CharField(max_length=3, default="CNY", verbose_name=_("currency"))
    expected_settlement_date = models.DateField(verbose_name=_("expected settlement date"))
    matched = models.PositiveIntegerField(default=0, verbose_name=_("matched"))
    discrepancies = models.PositiveIntegerField(default=0, verbose_name=_("discrepancies"))
    created_at = models.DateTimeField(auto_now_add=True, verbose_name=_("created at"))

    class Meta:
        verbose_name = _("statement")
        verbose_name_plural = _("statements")
        ordering = ["-day", "account"]
        constraints = [
            models.UniqueConstraint(
                fields=["account", "day"], name="statement_unique_per_account_day"
            )
        ]

    def __str__(self):
        return f"{self.account_id} {self.day} net {self.net}"


class SellerClearing(models.Model):
    """One seller's share of the orders whose payments a statement's settlement file confirmed
    as settled: the money the platform really holds for them. A report, not a movement (the
    sale already sits in the seller's pending balance); replaced with its statement."""

    statement = models.ForeignKey(
        Statement, on_delete=models.CASCADE, related_name="clearings", verbose_name=_("statement")
    )
    seller = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("seller"),
    )
    currency = models.CharField(max_length=3, verbose_name=_("currency"))
    orders = models.PositiveIntegerField(_("orders"), default=0)
    gross = models.DecimalField(_("gross"), **MONEY, default=0)
    commission = models.DecimalField(_("commission"), **MONEY, default=0)
    net = models.DecimalField(_("seller net cleared"), **MONEY, default=0)
    created_at = models.DateTimeField(auto_now_add=True, verbose_name=_("created at"))

    class Meta:
        ordering = ["-statement__day", "statement", "seller"]
        verbose_name = _("seller clearing")
        verbose_name_plural = _("seller clearings")
        constraints = [
            models.UniqueConstraint(
                fields=["statement", "seller", "currency"],
                name="sellerclearing_unique_per_statement_seller",
            ),
        ]

    def __str__(self):
        return f"{self.statement_id} seller {self.seller_id} net {self.net} {self.currency}"


class AccountPolicy(models.Model):
    """How reconciliation treats one channel account's files: when a day's file is due at the
    latest, how the pull backs off while it is not published, and when results alert staff."""

    account = models.OneToOneField(
        "payments.ChannelAccount",
        on_delete=models.CASCADE,
        related_name="reconciliation_policy",
        verbose_name=_("account"),
    )
    deadline_hours = models.PositiveSmallIntegerField(
        _("file deadline (hours after the day)"),
        default=32,
        help_text=_(
            "Hours after the end of the day by which its file must be published "
            "(32 = 08:00 on the second day after)."
        ),
    )
    first_retry_minutes = models.PositiveSmallIntegerField(
        _("first retry after (minutes)"), default=10
    )
    max_retry_minutes = models.PositiveSmallIntegerField(
        _("longest wait between tries (minutes)"), default=120
    )
    alert_discrepancies = models.PositiveIntegerField(
        _("alert above this many discrepancies"),
        default=20,
    )
    alert_amount = models.DecimalField(
        _("alert above this amount in discrepancies"),
        **MONEY,
        default=1000,
    )
    bank_account = models.ForeignKey(
        "reconciliation.BankAccount",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("settles into"),
    )
    calendar = models.CharField(
        _("business-day calendar"),
        max_length=8,
        default="CN",
        help_text=_(
            "Settlement T+N counts business days of this calendar (weekends and holidays off)."
        ),
    )
    alert_emails = models.CharField(
        _("alert e-mails"),
        max_length=500,
        blank=True,
        help_text=_("Comma-separated, on top of Finance and the site-wide recipients."),
    )

    class Meta:
        verbose_name = _("reconciliation policy")
        verbose_name_plural = _("reconciliation policies")

    def __str__(self):
        return str(self.account)

    @property
    def email_list(self) -> list[str]:
        return [e.strip() for e in self.alert_emails.split(",") if e.strip()]


class SettlementDay(models.Model):
    """Whether a channel account's file of a day has come: tried, waited for, reconciled, or
    missing past its deadline."""

    class Status(models.TextChoices):
        WAITING = "waiting", _("waiting for the file")
        RECONCILED = "reconciled", _("reconciled")
        FAILED = "failed", _("failed")
        MISSING = "missing", _("missing")

    account = models.ForeignKey(
        "payments.ChannelAccount",
        on_delete=models.PROTECT,
        related_name="settlement_file_days",
        verbose_name=_("account"),
    )
    day = models.DateField(verbose_name=_("day"))
    status = models.CharField(
        max_length=12,
        choices=Status.choices,
        default=Status.WAITING,
        db_index=True,
        verbose_name=_("status"),
    )
    tries = models.PositiveSmallIntegerField(default=0, verbose_name=_("tries"))
    next_try_at = models.DateTimeField(
        null=True, blank=True, db_index=True, verbose_name=_("next try at")
    )
    deadline = models.DateTimeField(verbose_name=_("deadline"))
    last_error = models.TextField(blank=True, verbose_name=_("last error"))
    file = models.ForeignKey(
        SettlementFile,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("file"),
    )
    updated_at = models.DateTimeField(auto_now=True, verbose_name=_("updated at"))

    class Meta:
        verbose_name = _("settlement day")
        verbose_name_plural = _("settlement days")
        ordering = ["-day", "account"]
        constraints = [
            models.UniqueConstraint(
                fields=["account", "day"], name="settlementday_unique_per_account_day"
            ),
        ]

    def __str__(self):
        return f"{self.account_id} {self.day} {self.status}"


class ReconciliationAlert(models.Model):
    """What staff were told about a day, once per account, day and kind."""

    class Kind(models.TextChoices):
        FILE_MISSING = "file_missing", _("file missing after its deadline")
        FUNDS_LATE = "funds_late", _("settlement funds late")
        FUNDS_SHORT = "funds_short", _("settlement funds short")
        FILE_REFUSED = "file_refused", _("file refused (totals disagree, broken, other merchant)")
        DISCREPANCIES = "discrepancies", _("discrepancies above the threshold")

    account = models.ForeignKey(
        "payments.ChannelAccount",
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("account"),
    )
    day = models.DateField(verbose_name=_("day"))
    kind = models.CharField(max_length=20, choices=Kind.choices, verbose_name=_("kind"))
    text = models.TextField(verbose_name=_("text"))
    created_at = models.DateTimeField(auto_now_add=True, verbose_name=_("created at"))

    class Meta:
        verbose_name = _("reconciliation alert")
        verbose_name_plural = _("reconciliation alerts")
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["account", "day", "kind"], name="reconalert_unique_per_day_kind"
            ),
        ]

    def __str__(self):
        return self.text[:80]


class Holiday(models.Model):
    """A day off (or a weekend day worked, 调休) on a business-day calendar, edited by staff:
    settlement cycles (T+N) count only business days."""

    calendar = models.CharField(
        _("calendar"),
        max_length=8,
        default="CN",
        help_text=_("CN: mainland China."),
    )
    day = models.DateField(verbose_name=_("day"))
    name = models.CharField(_("name"), max_length=80, blank=True)
    workday = models.BooleanField(
        _("worked"),
        default=False,
        help_text=_("A weekend day that is a working day (make-up day) instead of a day off."),
    )

    class Meta:
        verbose_name = _("holiday")
        verbose_name_plural = _("holidays")
        ordering = ["calendar", "day"]
        constraints = [
            models.UniqueConstraint(
                fields=["calendar", "day"], name="holiday_unique_per_calendar_day"
            ),
        ]

    def __str__(self):
        return f"{self.calendar} {self.day} {self.name}"


class BankAccount(models.Model):
    """A bank account of the platform that channels settle into."""

    code = models.SlugField(_("code"), max_length=40, unique=True)
    name = models.CharField(_("name"), max_length=80)
    bank = models.CharField(_("bank"), max_length=80, blank=True)
    number_tail = models.CharField(_("last digits"), max_length=8, blank=True)
    currency = models.CharField(_("currency"), max_length=3, default="CNY")

    class Meta:
        verbose_name = _("bank account")
        verbose_name_plural = _("bank accounts")
        ordering = ["code"]

    def __str__(self):
        return f"{self.name} ({self.code})"


class FundsArrival(models.Model):
    """Money seen arriving in a bank account (imported from its statement or recorded by
    Finance), matched to the channel statement it settles."""

    class Source(models.TextChoices):
        IMPORT = "import", _("bank statement import")
        MANUAL = "manual", _("recorded by hand")

    bank_account = models.ForeignKey(
        BankAccount,
        on_delete=models.PROTECT,
        related_name="arrivals",
        verbose_name=_("bank account"),
    )
    value_date = models.DateField(_("value date"))
    amount = models.DecimalField(_("amount"), **MONEY)
    currency = models.CharField(_("currency"), max_length=3, default="CNY")
    counterparty = models.CharField(_("counterparty"), max_length=120, blank=True)
    reference = models.CharField(_("reference"), max_length=200, blank=True)
    source = models.CharField(
        _("source"), max_length=10, choices=Source.choices, default=Source.MANUAL
    )
    fingerprint = models.CharField(
        _("fingerprint"),
        max_length=64,
        unique=True,
        help_text=_("The same statement line imported twice is kept once."),
    )
    statement = models.ForeignKey(
        Statement,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="arrivals",
        verbose_name=_("statement"),
    )
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("recorded by"),
    )
    created_at = models.DateTimeField(auto_now_add=True, verbose_name=_("created at"))

    class Meta:
        verbose_name = _("funds arrival")
        verbose_name_plural = _("funds arrivals")
        ordering = ["-value_date", "-id"]

    def __str__(self):
        return f"{self.bank_account_id} {self.value_date} {self.amount}"


class TreasuryStatement(Statement):
    """A statement seen by the treasury: its net expected in a bank account, arrived or not."""

    class Meta:
        proxy = True
        verbose_name = _("expected settlement")
        verbose_name_plural = _("treasury: expected settlements")
