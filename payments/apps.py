from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class PaymentsConfig(AppConfig):
    name = "payments"
    verbose_name = _("Payments")

    def ready(self):
        from payments.channels import registry

        registry.autodiscover()
        from payments.channels import wallet
        from payments.wallet_ledger import JournalWallet

        wallet.register(JournalWallet())  # the balance channel's wallets are on the journal
        from payments.channels.wechatpay import jsapi
        from payments.wechat_oauth import StoredPayers

        jsapi.register(StoredPayers())  # JSAPI's openids, remembered per buyer and app id
        from payments import (
            metrics,  # noqa: F401 - registers the success rates with risk monitoring
            tasks,  # noqa: F401 - queues the health fold when it is due
        )
        from payments import wallet as wallet_page  # noqa: F401 - credits top-ups on payment_succeeded
