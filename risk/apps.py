from django.apps import AppConfig
from django.db.models.signals import post_delete, post_save
from django.utils.translation import gettext_lazy as _


class RiskConfig(AppConfig):
    """Transaction scoring. Imports no other app of the project: callers pass plain facts."""

    name = "risk"
    verbose_name = _("Risk")

    def ready(self):
        from risk import rulebook
        from risk.models import ListEntry, Rule

        for model in (Rule, ListEntry):
            for signal in (post_save, post_delete):
                signal.connect(
                    rulebook.invalidate,
                    sender=model,
                    dispatch_uid=f"risk.rulebook.{model.__name__}.{signal}",
                )
