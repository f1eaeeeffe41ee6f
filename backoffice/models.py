"""The back office stores nothing of its own; this model exists only to carry the
permission to export lists (Finance has it, see accounts.roles)."""

from django.db import models
from django.utils.translation import gettext_lazy as _


class DataExport(models.Model):
    class Meta:
        managed = False
        default_permissions = ()
        permissions = [("export_data", _("Can export lists as CSV or XLSX"))]
        verbose_name = _("data export")
        verbose_name_plural = _("data exports")
