"""Rules and lists staff edit, the stored outcome of every assessment, and the monitors
(bounds on success/dispute rates) with the alerts they raise."""

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _


class Decision(models.TextChoices):
    ALLOW = "allow", _("allow")
    CHALLENGE = "challenge", _("challenge (one-time code)")
    REVIEW = "review", _("hold for review")
    BLOCK = "block", _("block")


class Rule(models.Model):
    """condition → score and/or action, with a reason code (see risk/engine.py for fields)."""

    name = models.CharField(_("name"), max_length=80, unique=True)
    reason_code = models.SlugField(_("reason code"), max_length=40)
    feature = models.CharField(_("feature"), max_length=40)
    operator = models.CharField(
        _("operator"),
        max_length=4,
        choices=[
            ("gt", ">"),
            ("gte", "≥"),
            ("lt", "<"),
            ("lte", "≤"),
            ("eq", "="),
            ("in", "in list"),
        ],
    )
    value = models.CharField(_("value"), max_length=120, blank=True)
    score = models.IntegerField(_("score"), default=0)
    action = models.CharField(
        _("forced decision"), max_length=10, choices=Decision.choices, blank=True
    )
    enabled = models.BooleanField(_("enabled"), default=True)

    class Meta:
        verbose_name = _("rule")
        verbose_name_plural = _("rules")
        ordering = ["name"]

    def __str__(self):
        return self.name


class ListEntry(models.Model):
    class Kind(models.TextChoices):
        BLOCK = "block", _("block list")
        ALLOW = "allow", _("allow list")

    kind = models.CharField(max_length=10, choices=Kind.choices, verbose_name=_("kind"))
    field = models.CharField(
        max_length=20,
        choices=[("user", "user"), ("ip", "IP"), ("device", "device"), ("email", "e-mail")],
        verbose_name=_("field"),
    )
    value = models.CharField(max_length=120, verbose_name=_("value"))
    note = models.CharField(max_length=255, blank=True, verbose_name=_("note"))
    created_at = models.DateTimeField(auto_now_add=True, verbose_name=_("created at"))

    class Meta:
        verbose_name = _("list entry")
        constraints = [
            models.UniqueConstraint(fields=["kind", "field", "value"], name="risk_list_unique")
        ]
        verbose_name_plural = _("list entries")


class Assessment(models.Model):
    subject = models.CharField(
        max_length=80,
        db_index=True,
        help_text=_("What was scored, e.g. payment:<id>."),
        verbose_name=_("subject"),
    )
    user_ref = models.CharField(max_length=40, db_index=True, verbose_name=_("user ref"))
    score = models.IntegerField(verbose_name=_("score"))
    decision = models.CharField(
        max_length=10, choices=Decision.choices, db_index=True, verbose_name=_("decision")
    )
    reasons = models.JSONField(default=list, verbose_name=_("reasons"))
    features = models.JSONField(default=dict, verbose_name=_("features"))
    reviewed_by = models.CharField(max_length=150, blank=True, verbose_name=_("reviewed by"))
    review_outcome = models.CharField(
        max_length=10, choices=Decision.choices, blank=True, verbose_name=_("review outcome")
    )
    created_at = models.DateTimeField(
        auto_now_add=True, db_index=True, verbose_name=_("created at")
    )

    #: the seller paid (payments of a shop order), and whether the payer was a young account
    #: paying a small amount for one of the seller's new listings — what the fan-in feature
    #: counts (risk/engine.py), on the partial index below
    seller_ref = models.CharField(max_length=40, blank=True, default="", verbose_name=_("seller"))
    fan_in = models.BooleanField(
        default=False,
        verbose_name=_("small payment by a young account for a new listing"),
    )

    class Meta:
        verbose_name = _("assessment")
        verbose_name_plural = _("assessments")
        ordering = ["-created_at"]
        indexes = [
            models.Index(
                fields=["seller_ref", "created_at"],
                condition=Q(fan_in=True),
                name="assessment_seller_fan_in",
            ),
        ]

    def __str__(self):
        return f"{self.subject} · {self.score} · {self.get_decision_display()}"


class Monitor(models.Model):
    """Staff-editable bounds on one metric (see risk/monitoring.py for the metric names).

    Bounds are percentages of the metric's rate (numerator / denominator × 100); a group of
    data points with fewer than ``min_sample`` in its denominator is not judged at all.
    """

    name = models.CharField(_("name"), max_length=80, unique=True)
    metric = models.CharField(_("metric"), max_length=80, help_text=_("e.g. payments.success_rate"))
    dimensions = models.JSONField(
        _("dimension filter"),
        default=dict,
        blank=True,
        help_text=_(
            'Only data points with these dimensions, e.g. {"method": "alipay"}. Empty: all.'
        ),
    )
    per_dimension = models.BooleanField(
        _("judge each channel × method apart"),
        default=True,
        help_text=_("Off: all matching data points are added up and judged as one."),
    )
    lower_bound = models.DecimalField(
        _("lower bound (%)"),
        max_digits=6,
        decimal_places=2,
        null=True,
        blank=True,
        help_text=_("Alert when the rate falls below this."),
    )
    upper_bound = models.DecimalField(
        _("upper bound (%)"),
        max_digits=6,
        decimal_places=2,
        null=True,
        blank=True,
        help_text=_("Alert when the rate rises above this."),
    )
    min_sample = models.PositiveIntegerField(
        _("minimum sample"),
        default=20,
        help_text=_("Fewer events than this in the window are not judged."),
    )
    window_hours = models.PositiveIntegerField(
        _("window (hours)"),
        default=1,
        validators=[MinValueValidator(1), MaxValueValidator(24 * 90)],
        help_text=_("The rate is measured over this many trailing hours."),
    )
    enabled = models.BooleanField(_("enabled"), default=True)
    alert_emails = models.CharField(
        _("alert e-mail addresses"),
        max_length=500,
        blank=True,
        help_text=_("Comma-separated. Alerts are always logged; e-mail and webhook are optional."),
    )
    webhook_url = models.URLField(
        _("alert webhook URL"),
        max_length=500,
        blank=True,
        help_text=_("Receives a JSON POST per alert opened or resolved."),
    )
    created_at = models.DateTimeField(auto_now_add=True, verbose_name=_("created at"))
    updated_at = models.DateTimeField(auto_now=True, verbose_name=_("updated at"))

    class Meta:
        ordering = ["name"]
        verbose_name = _("monitor")
        verbose_name_plural = _("monitors")
        constraints = [
            models.CheckConstraint(
                condition=Q(lower_bound__isnull=False) | Q(upper_bound__isnull=False),
                name="risk_monitor_has_a_bound",
            ),
            models.CheckConstraint(
                condition=Q(lower_bound__isnull=True)
                | Q(upper_bound__isnull=True)
                | Q(lower_bound__lte=F("upper_bound")),
                name="risk_monitor_lower_le_upper",
            ),
        ]

    def __str__(self):
        return self.name

    def clean(self):
        from risk import monitoring

        errors = {}
        if self.metric and monitoring.metric(self.metric) is None:
            known = ", ".join(sorted(monitoring.metric_names())) or "—"
            errors["metric"] = _("Unknown metric. Known metrics: %(known)s.") % {"known": known}
        if self.lower_bound is None and self.upper_bound is None:
            errors["upper_bound"] = _("Set a lower bound, an upper bound or both.")
        elif (
            self.lower_bound is not None
            and self.upper_bound is not None
            and self.lower_bound > self.upper_bound
        ):
            errors["upper_bound"] = _("The upper bound must not be below the lower bound.")
        if not isinstance(self.dimensions, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in (self.dimensions or {}).items()
        ):
            errors["dimensions"] = _(
                'Give the filter as an object of names to values, e.g. {"method": "alipay"}.'
            )
        if errors:
            raise ValidationError(errors)

    @property
    def email_list(self) -> list[str]:
        return [address.strip() for address in self.alert_emails.split(",") if address.strip()]


class Alert(models.Model):
    """A monitor's metric outside its bounds for one set of dimensions. At most one open
    alert per monitor × dimensions; it resolves when the rate is back within bounds."""

    class Bound(models.TextChoices):
        LOWER = "lower", _("below the lower bound")
        UPPER = "upper", _("above the upper bound")

    monitor = models.ForeignKey(
        Monitor, on_delete=models.CASCADE, related_name="alerts", verbose_name=_("monitor")
    )
    dimensions = models.JSONField(_("dimensions"), default=dict)
    dimensions_key = models.CharField(
        max_length=255, editable=False, verbose_name=_("dimensions key")
    )
    bound = models.CharField(_("bound crossed"), max_length=5, choices=Bound.choices)
    threshold = models.DecimalField(_("bound (%)"), max_digits=6, decimal_places=2)
    value = models.DecimalField(
        _("rate (%)"), max_digits=6, decimal_places=2, help_text=_("The latest evaluated rate.")
    )
    numerator = models.PositiveIntegerField(_("events"), default=0)
    denominator = models.PositiveIntegerField(_("out of"), default=0)
    opened_at = models.DateTimeField(_("opened at"), db_index=True)
    last_evaluated_at = models.DateTimeField(_("last evaluated at"))
    resolved_at = models.DateTimeField(_("resolved at"), null=True, blank=True, db_index=True)
    resolved_by = models.CharField(
        _("resolved by"),
        max_length=150,
        blank=True,
        help_text=_("Empty when the rate came back within bounds."),
    )

    class Meta:
        ordering = ["-opened_at"]
        verbose_name = _("alert")
        verbose_name_plural = _("alerts")
        constraints = [
            models.UniqueConstraint(
                fields=["monitor", "dimensions_key"],
                condition=Q(resolved_at__isnull=True),
                name="risk_alert_one_open",
            ),
        ]

    def __str__(self):
        return f"{self.monitor} [{self.dimensions_key or 'all'}] {self.value}%"

    @property
    def is_open(self) -> bool:
        return self.resolved_at is None

    @property
    def where(self) -> str:
        """``ali-1 · alipay``: the dimension values, for people."""
        return " · ".join(str(value) for _name, value in sorted(self.dimensions.items())) or "—"


class Signal(models.Model):
    """Evidence about one key (a buyer, a device, an address, a payment account) that decays:
    a channel's risk decline, a suspicious log-in. Its weight halves every ``half_life_days``;
    the engine adds up the decayed weights of a transaction's keys per reason."""

    class Field(models.TextChoices):
        USER = "user", _("user")
        DEVICE = "device", _("device")
        IP = "ip", _("IP")
        ACCOUNT = "account", _("payment account")

    field = models.CharField(_("field"), max_length=10, choices=Field.choices)
    value = models.CharField(_("value"), max_length=120)
    reason = models.SlugField(_("reason"), max_length=40)
    source = models.CharField(
        _("source"), max_length=80, blank=True, help_text=_("e.g. card:fraudulent, or a log-in.")
    )
    weight = models.FloatField(_("weight"), default=1.0)
    half_life_days = models.FloatField(_("half-life (days)"), default=7.0)
    cleared_at = models.DateTimeField(_("cleared at"), null=True, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("risk signal")
        verbose_name_plural = _("risk signals")
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["field", "value", "created_at"], name="risk_signal_key_time"),
        ]

    def __str__(self):
        return f"{self.reason} {self.field}={self.value}"


class Sighting(models.Model):
    """An account seen with a device, an address range (/24) or a payout account: what links
    a buyer to a seller (self-dealing). One row per account × key, its last time refreshed."""

    class Field(models.TextChoices):
        DEVICE = "device", _("device")
        IP_RANGE = "ip24", _("IP range (/24)")
        PAYOUT = "payout", _("payout account")

    user_ref = models.CharField(_("user ref"), max_length=40)
    field = models.CharField(_("field"), max_length=10, choices=Field.choices)
    value = models.CharField(_("value"), max_length=120)
    last_seen_at = models.DateTimeField(_("last seen at"))

    class Meta:
        verbose_name = _("sighting")
        verbose_name_plural = _("sightings")
        constraints = [
            models.UniqueConstraint(
                fields=["user_ref", "field", "value"], name="risk_sighting_unique"
            )
        ]
        indexes = [models.Index(fields=["field", "value"], name="risk_sighting_key")]


class Login(models.Model):
    """One log-in, scored: where from and on what, the decision, and the session it opened
    (so its owner can end it)."""

    user_ref = models.CharField(_("user ref"), max_length=40)
    session_key = models.CharField(_("session key"), max_length=40, blank=True)
    device = models.CharField(_("device id"), max_length=120, blank=True)
    device_label = models.CharField(_("device"), max_length=255, blank=True)
    ip = models.CharField(_("IP"), max_length=45, blank=True)
    region = models.CharField(_("region"), max_length=8, blank=True)
    score = models.IntegerField(_("score"), default=0)
    decision = models.CharField(
        _("decision"), max_length=10, choices=Decision.choices, default=Decision.ALLOW
    )
    reasons = models.JSONField(_("reasons"), default=list, blank=True)
    ended_at = models.DateTimeField(_("ended at"), null=True, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True, db_index=True)

    class Meta:
        verbose_name = _("log-in")
        verbose_name_plural = _("log-ins")
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["user_ref", "created_at"], name="risk_login_user_time"),
            models.Index(fields=["ip", "created_at"], name="risk_login_ip_time"),
        ]

    def __str__(self):
        return f"{self.user_ref} {self.created_at:%Y-%m-%d %H:%M} {self.decision}"
