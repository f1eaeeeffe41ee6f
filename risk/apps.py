from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class RiskConfig(AppConfig):
    """Transaction scoring. Imports no other app of the project: callers pass plain facts."""

    name = "risk"
    verbose_name = _("Risk")
