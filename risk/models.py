"""Rules and lists staff edit, and the stored outcome of every assessment."""

from django.db import models
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
        _("operator"), max_length=4,
        choices=[("gt", ">"), ("gte", "≥"), ("lt", "<"), ("lte", "≤"), ("eq", "="), ("in", "in list")],
    )
    value = models.CharField(_("value"), max_length=120, blank=True)
    score = models.IntegerField(_("score"), default=0)
    action = models.CharField(_("forced decision"), max_length=10, choices=Decision.choices, blank=True)
    enabled = models.BooleanField(_("enabled"), default=True)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name


class ListEntry(models.Model):
    class Kind(models.TextChoices):
        BLOCK = "block", _("block list")
        ALLOW = "allow", _("allow list")

    kind = models.CharField(max_length=10, choices=Kind.choices)
    field = models.CharField(max_length=20, choices=[("user", "user"), ("ip", "IP"), ("device", "device"), ("email", "e-mail")])
    value = models.CharField(max_length=120)
    note = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["kind", "field", "value"], name="risk_list_unique")]
        verbose_name_plural = "list entries"


class Assessment(models.Model):
    subject = models.CharField(max_length=80, db_index=True, help_text=_("What was scored, e.g. payment:<id>."))
    user_ref = models.CharField(max_length=40, db_index=True)
    score = models.IntegerField()
    decision = models.CharField(max_length=10, choices=Decision.choices, db_index=True)
    reasons = models.JSONField(default=list)
    features = models.JSONField(default=dict)
    reviewed_by = models.CharField(max_length=150, blank=True)
    review_outcome = models.CharField(max_length=10, choices=Decision.choices, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at"]
