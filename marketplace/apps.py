from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class MarketplaceConfig(AppConfig):
    name = "marketplace"
    verbose_name = _("Marketplace")

    def ready(self):
        import marketplace.metrics  # noqa: F401 - registers the dispute rates with risk monitoring
        from marketplace import (
            receivers,  # noqa: F401 - connects to payments' signals
            risk_feeds,  # noqa: F401 - hands web log-ins and payout accounts to risk
            tasks,  # noqa: F401 - mails the codes of a delivered order
        )
