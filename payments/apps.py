from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class PaymentsConfig(AppConfig):
    name = "payments"
    verbose_name = _("Payments")

    def ready(self):
        from payments.channels import registry

        registry.autodiscover()
        from payments import (
            metrics,  # noqa: F401 - registers the success rates with risk monitoring
            tasks,  # noqa: F401 - queues the health fold when it is due
            wallet,  # noqa: F401 - credits top-ups on payment_succeeded
        )
