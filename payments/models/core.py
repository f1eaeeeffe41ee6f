"""Channel accounts, payments, their attempts and refunds: the platform's money records."""

from __future__ import annotations

import secrets
import uuid
from decimal import Decimal

from django.conf import settings
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import F, Q
from django.db.models.fields.json import KT
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from payments import states
from payments.credentials import decrypt_credentials, encrypt_credentials
from payments.states import AttemptStatus, PaymentStatus, RefundStatus

MONEY = {"max_digits": 14, "decimal_places": 2}
ZERO = Decimal("0.00")
#: an exchange rate: CNY per one unit of the foreign currency (7.1375 for USD)
RATE = {"max_digits": 18, "decimal_places": 8}


class ChargedIn(models.Model):
    """What the buyer is charged when it is not the CNY price: the foreign amount, its
    currency and the rate (CNY per unit) it was converted at, with the rate's time and source.
    Blank when the buyer pays in CNY; the CNY ``amount`` stays what the journal keeps."""

    charge_currency = models.CharField(
        _("charged in"), max_length=3, blank=True, help_text=_("Blank: the CNY price itself.")
    )
    charge_amount = models.DecimalField(_("charged amount"), **MONEY, null=True, blank=True)
    fx_rate = models.DecimalField(
        _("exchange rate"), **RATE, null=True, blank=True, help_text=_("CNY per unit.")
    )
    fx_rate_at = models.DateTimeField(_("rate of"), null=True, blank=True)
    fx_source = models.CharField(_("rate source"), max_length=80, blank=True)

    class Meta:
        abstract = True

    @property
    def foreign(self) -> bool:
        return bool(self.charge_currency) and self.charge_amount is not None

    @property
    def channel_amount(self) -> Decimal:
        """What the channel is asked for and reports: the foreign amount, or the CNY one."""
        return self.charge_amount if self.foreign else self.amount

    @property
    def channel_currency(self) -> str:
        return self.charge_currency if self.foreign else self.currency


class Method(models.TextChoices):
    """What the buyer picks on checkout; one channel account may serve several."""

    ALIPAY = "alipay", _("Alipay")
    WECHATPAY = "wechatpay", _("WeChat Pay")
    UNIONPAY = "unionpay", _("UnionPay QuickPass")
    ECNY = "ecny", _("e-CNY wallet")
    CARD = "card", _("Bank or credit card")
    CARD_INSTALMENTS = "card_instalments", _("Card instalments")
    PAYPAL = "paypal", _("PayPal")
    QQPAY = "qqpay", _("QQ Wallet")  # served only through an epay aggregator account
    BALANCE = "balance", _("Account balance")


class SettlementCycle(models.IntegerChoices):
    T0 = 0, "T+0"
    T1 = 1, "T+1"
    T2 = 2, "T+2"
    T3 = 3, "T+3"
    T7 = 7, "T+7"


def new_out_trade_no() -> str:
    """Our id for an attempt at a channel: 8–32 alphanumerics fits every channel (UnionPay's
    orderId forbids '-' and '_')."""
    return timezone.now().strftime("%Y%m%d") + secrets.token_hex(8).upper()


def new_refund_no() -> str:
    return "RF" + timezone.now().strftime("%Y%m%d") + secrets.token_hex(7).upper()


class ChannelAccount(models.Model):
    """One configured provider account (e.g. Alipay direct merchant #1)."""

    code = models.SlugField(
        _("code"), max_length=40, unique=True, help_text=_("Used in the notify URL.")
    )
    name = models.CharField(_("name"), max_length=80)
    backend = models.CharField(
        _("backend"), max_length=20, help_text=_("Channel protocol, e.g. alipay.")
    )
    methods = models.JSONField(_("methods served"), default=list)
    enabled = models.BooleanField(_("enabled"), default=True)
    currency = models.CharField(_("currency"), max_length=3, default="CNY")
    currencies = models.JSONField(
        _("currencies it can charge"),
        default=list,
        blank=True,
        help_text=_(
            'ISO codes it charges buyers in, e.g. ["CNY", "USD"]; empty: its own currency '
            "only. Only channels that take foreign currencies (card, PayPal) accept others."
        ),
    )
    fee_percent = models.DecimalField(
        _("fee %"), max_digits=6, decimal_places=3, default=Decimal("0.600")
    )
    fee_fixed = models.DecimalField(_("fixed fee"), **MONEY, default=ZERO)
    min_amount = models.DecimalField(_("minimum per payment"), **MONEY, default=Decimal("0.01"))
    max_amount = models.DecimalField(_("maximum per payment"), **MONEY, default=Decimal("50000.00"))
    daily_cap = models.DecimalField(_("daily cap"), **MONEY, null=True, blank=True)
    settlement_days = models.PositiveSmallIntegerField(
        _("settlement cycle"), choices=SettlementCycle.choices, default=SettlementCycle.T1
    )
    merchant_id = models.CharField(_("merchant / partner id"), max_length=64, blank=True)
    app_id = models.CharField(_("app id"), max_length=64, blank=True)
    base_url = models.URLField(
        _("base URL"), max_length=300, help_text=_("Provider or sandbox endpoint.")
    )
    weight = models.DecimalField(
        _("routing weight"),
        max_digits=5,
        decimal_places=2,
        default=Decimal("1.00"),
        validators=[MinValueValidator(Decimal("0"))],
    )
    credentials_encrypted = models.BinaryField(
        _("credentials (encrypted)"), default=b"", editable=False
    )
    created_at = models.DateTimeField(auto_now_add=True, verbose_name=_("created at"))
    updated_at = models.DateTimeField(auto_now=True, verbose_name=_("updated at"))

    class Meta:
        ordering = ["code"]
        verbose_name = _("channel account")
        verbose_name_plural = _("channel accounts")
        constraints = [
            models.CheckConstraint(
                condition=Q(max_amount__gte=models.F("min_amount")), name="account_min_le_max"
            ),
            models.CheckConstraint(
                condition=Q(fee_percent__gte=0) & Q(fee_fixed__gte=0),
                name="account_fee_non_negative",
            ),
        ]

    def __str__(self):
        return f"{self.name} ({self.code})"

    @property
    def credentials(self) -> dict:
        return decrypt_credentials(bytes(self.credentials_encrypted or b""))

    @credentials.setter
    def credentials(self, value: dict) -> None:
        self.credentials_encrypted = encrypt_credentials(value)

    @property
    def charges(self) -> list[str]:
        """The currencies it charges buyers in (its own alone when none are listed)."""
        return list(self.currencies or []) or [self.currency]

    def can_charge(self, currency: str) -> bool:
        return currency in self.charges

    def clean(self):
        from django.core.exceptions import ValidationError

        from payments.channels.registry import backend_class

        codes = self.currencies or []
        if not isinstance(codes, list) or not all(isinstance(c, str) for c in codes):
            raise ValidationError({"currencies": _('A list of ISO codes, e.g. ["USD", "EUR"].')})
        try:
            allowed = backend_class(self.backend).charge_currencies
        except LookupError:
            return
        for code in codes:
            if code == self.currency or (allowed and code == "CNY"):
                continue
            if not (len(code) == 3 and code.isalpha() and code.isupper()):
                raise ValidationError(
                    {"currencies": _("%(code)s is not an ISO currency code.") % {"code": code}}
                )
            if allowed is not None and code not in allowed:
                raise ValidationError(
                    {
                        "currencies": _("This channel cannot charge %(code)s.") % {"code": code}
                        if allowed
                        else _("This channel charges only %(currency)s.")
                        % {"currency": self.currency}
                    }
                )
            from payments.money import exponent

            if exponent(code) > 2:
                raise ValidationError(
                    {
                        "currencies": _("%(code)s has three decimals, which Cardex cannot hold.")
                        % {"code": code}
                    }
                )

    def fee_for(self, amount: Decimal) -> Decimal:
        return (amount * self.fee_percent / Decimal(100) + self.fee_fixed).quantize(Decimal("0.01"))

    def fee_in(self, amount: Decimal, currency: str, rate: Decimal) -> Decimal:
        """The fee on a foreign ``amount``, in its currency's minor unit: the percentage of
        it, and the CNY fixed fee at ``rate``."""
        from payments.money import round_minor

        fixed = self.fee_fixed / rate if self.fee_fixed else Decimal(0)
        return round_minor(amount * self.fee_percent / Decimal(100) + fixed, currency)

    def notify_url(self) -> str:
        return f"{settings.SITE_URL}/payments/notify/{self.code}/"


class Payment(ChargedIn):
    """One payment of something the shop sells (an order) or of a wallet top-up."""

    public_id = models.UUIDField(
        default=uuid.uuid4, unique=True, editable=False, verbose_name=_("public id")
    )
    reference = models.CharField(
        _("reference"), max_length=64, db_index=True, help_text=_("What is paid, e.g. order:XYZ.")
    )
    buyer = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="payments",
        verbose_name=_("buyer"),
    )
    method = models.CharField(_("method"), max_length=20, choices=Method.choices)
    amount = models.DecimalField(_("amount"), **MONEY)
    currency = models.CharField(_("currency"), max_length=3, default="CNY")
    subject = models.CharField(_("subject"), max_length=128, blank=True)
    status = models.CharField(
        _("status"),
        max_length=20,
        choices=PaymentStatus.choices,
        default=PaymentStatus.CREATED,
        db_index=True,
    )
    refunded_amount = models.DecimalField(_("refunded"), **MONEY, default=ZERO)
    failure_code = models.CharField(max_length=64, blank=True, verbose_name=_("failure code"))
    failure_reason = models.CharField(max_length=255, blank=True, verbose_name=_("failure reason"))
    failure_guidance = models.CharField(
        max_length=255, blank=True, verbose_name=_("failure guidance")
    )
    risk = models.JSONField(_("risk assessment"), default=dict, blank=True)
    client = models.JSONField(
        _("client"), default=dict, blank=True, help_text=_("IP, device, user agent, region.")
    )
    instalments = models.PositiveSmallIntegerField(
        null=True, blank=True, verbose_name=_("instalments")
    )
    expires_at = models.DateTimeField(null=True, blank=True, verbose_name=_("expires at"))
    succeeded_at = models.DateTimeField(null=True, blank=True, verbose_name=_("succeeded at"))
    created_at = models.DateTimeField(
        auto_now_add=True, db_index=True, verbose_name=_("created at")
    )
    updated_at = models.DateTimeField(auto_now=True, verbose_name=_("updated at"))

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("payment")
        verbose_name_plural = _("payments")
        permissions = [("review_payment", _("Can release or block payments held for review"))]
        indexes = [
            # risk reads a buyer's latest payments at every decision (HISTORY_WINDOW)
            models.Index(fields=["buyer", "-created_at"], name="payment_buyer_recent"),
            # and the payments from the buyer's address in the last hour: by address first, so
            # the read stays small when the last hour holds most of the table (a flash sale)
            models.Index(KT("client__ip"), F("created_at"), name="payment_ip_recent"),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="payment_amount_positive"),
            models.CheckConstraint(
                condition=Q(refunded_amount__gte=0) & Q(refunded_amount__lte=models.F("amount")),
                name="payment_refunded_le_amount",
            ),
        ]

    def __str__(self):
        from payments.money import format_money

        amount = format_money(self.amount, self.currency)
        return f"{self.reference} {amount} {self.get_status_display()}"

    def transition(self, target: str) -> None:
        states.check("payment", states.PAYMENT_TRANSITIONS, self.status, target)
        self.status = target

    @property
    def is_paid(self) -> bool:
        return self.status in states.PAYMENT_PAID

    @property
    def refundable_amount(self) -> Decimal:
        return self.amount - self.refunded_amount


class Attempt(ChargedIn):
    """One try of a payment on one channel account."""

    payment = models.ForeignKey(
        Payment, on_delete=models.PROTECT, related_name="attempts", verbose_name=_("payment")
    )
    account = models.ForeignKey(
        ChannelAccount, on_delete=models.PROTECT, related_name="attempts", verbose_name=_("account")
    )
    method = models.CharField(max_length=20, choices=Method.choices, verbose_name=_("method"))
    out_trade_no = models.CharField(
        _("our trade no"), max_length=32, unique=True, default=new_out_trade_no
    )
    channel_trade_no = models.CharField(
        _("channel trade no"), max_length=64, blank=True, db_index=True
    )
    amount = models.DecimalField(**MONEY, verbose_name=_("amount"))
    currency = models.CharField(max_length=3, default="CNY", verbose_name=_("currency"))
    fee = models.DecimalField(_("expected fee"), **MONEY, default=ZERO)
    charge_fee = models.DecimalField(
        _("expected fee in the charged currency"),
        **MONEY,
        null=True,
        blank=True,
        help_text=_("What the channel's settlement file should show as its fee."),
    )
    status = models.CharField(
        max_length=20,
        choices=AttemptStatus.choices,
        default=AttemptStatus.CREATED,
        db_index=True,
        verbose_name=_("status"),
    )
    action = models.JSONField(default=dict, blank=True, verbose_name=_("action"))
    error_code = models.CharField(max_length=64, blank=True, verbose_name=_("error code"))
    error_message = models.CharField(max_length=255, blank=True, verbose_name=_("error message"))
    routing = models.JSONField(_("routing decision"), default=dict, blank=True)
    instalments = models.PositiveSmallIntegerField(
        null=True, blank=True, verbose_name=_("instalments")
    )
    query_count = models.PositiveSmallIntegerField(default=0, verbose_name=_("query count"))
    next_query_at = models.DateTimeField(
        null=True, blank=True, db_index=True, verbose_name=_("next query at")
    )
    notified_at = models.DateTimeField(null=True, blank=True, verbose_name=_("notified at"))
    succeeded_at = models.DateTimeField(null=True, blank=True, verbose_name=_("succeeded at"))
    flagged = models.CharField(
        _("flag"), max_length=255, blank=True, help_text=_("Why staff should look.")
    )
    created_at = models.DateTimeField(auto_now_add=True, verbose_name=_("created at"))
    updated_at = models.DateTimeField(auto_now=True, verbose_name=_("updated at"))

    class Meta:
        verbose_name = _("attempt")
        verbose_name_plural = _("attempts")
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="attempt_amount_positive")
        ]
        # By creation time: daily caps (today's volume per account) and risk monitoring's
        # success rates over the last hours and days.
        indexes = [models.Index(fields=["created_at"], name="attempt_created_at")]

    def __str__(self):
        return f"{self.out_trade_no} @{self.account.code} {self.get_status_display()}"

    def transition(self, target: str) -> None:
        states.check("attempt", states.ATTEMPT_TRANSITIONS, self.status, target)
        self.status = target

    @property
    def is_open(self) -> bool:
        return self.status in states.ATTEMPT_OPEN


class Refund(models.Model):
    """Money going back to the buyer, full or partial; idempotent by refund_no."""

    class Origin(models.TextChoices):
        SHOP = "shop", _("shop (dispute, late payment)")
        STAFF = "staff", _("staff")
        DOUBLE_CHARGE = "double_charge", _("duplicate success")

    payment = models.ForeignKey(
        Payment, on_delete=models.PROTECT, related_name="refunds", verbose_name=_("payment")
    )
    attempt = models.ForeignKey(
        Attempt, on_delete=models.PROTECT, related_name="refunds", verbose_name=_("attempt")
    )
    refund_no = models.CharField(
        max_length=32, unique=True, default=new_refund_no, verbose_name=_("refund no")
    )
    amount = models.DecimalField(**MONEY, verbose_name=_("amount"))
    currency = models.CharField(max_length=3, default="CNY", verbose_name=_("currency"))
    charge_amount = models.DecimalField(
        _("amount returned in the charged currency"), **MONEY, null=True, blank=True
    )
    charge_currency = models.CharField(_("charged in"), max_length=3, blank=True)
    status = models.CharField(
        max_length=20,
        choices=RefundStatus.choices,
        default=RefundStatus.PENDING,
        db_index=True,
        verbose_name=_("status"),
    )
    origin = models.CharField(
        max_length=20, choices=Origin.choices, default=Origin.STAFF, verbose_name=_("origin")
    )
    reason = models.CharField(max_length=255, blank=True, verbose_name=_("reason"))
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("requested by"),
    )
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text=_("Who let the money leave: Finance, never the person who asked."),
        verbose_name=_("approved by"),
    )
    requested_by_system = models.BooleanField(
        default=False,
        help_text=_("Nobody asked: the platform gave back money it could not keep."),
        verbose_name=_("requested by the system"),
    )
    declined_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("declined by"),
    )
    decided_at = models.DateTimeField(null=True, blank=True, verbose_name=_("decided at"))
    decision_note = models.CharField(
        max_length=255, blank=True, verbose_name=_("reason for the decision")
    )
    channel_refund_no = models.CharField(
        max_length=64, blank=True, verbose_name=_("channel refund no")
    )
    error = models.CharField(max_length=255, blank=True, verbose_name=_("error"))
    created_at = models.DateTimeField(auto_now_add=True, verbose_name=_("created at"))
    settled_at = models.DateTimeField(null=True, blank=True, verbose_name=_("settled at"))

    class Meta:
        verbose_name = _("refund")
        verbose_name_plural = _("refunds")
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="refund_amount_positive")
        ]
        permissions = [
            (
                "approve_refund",
                _("Can approve refunds others asked for (and send small ones of their own)"),
            )
        ]

    def __str__(self):
        from payments.money import format_money

        amount = format_money(self.amount, self.currency)
        return f"{self.refund_no} {amount} {self.get_status_display()}"

    def transition(self, target: str) -> None:
        states.check("refund", states.REFUND_TRANSITIONS, self.status, target)
        self.status = target

    @property
    def channel_amount(self) -> Decimal:
        """What the channel returns: the foreign amount when the payment was charged in one."""
        return self.charge_amount if self.charge_currency else self.amount

    @property
    def channel_currency(self) -> str:
        return self.charge_currency or self.currency
