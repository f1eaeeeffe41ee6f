"""Settlement files as the channels deliver them, and what matching them found."""

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
