from decimal import Decimal

import factory
from django.conf import settings

from payments.models import ChannelAccount, Method, Payment
from tests.accounts.factories import UserFactory

DEFAULT_METHODS = {
    "alipay": [Method.ALIPAY],
    "wechatpay": [Method.WECHATPAY],
    "unionpay": [Method.UNIONPAY],
    "ecny": [Method.ECNY],
    "paypal": [Method.PAYPAL],
    "card": [Method.CARD, Method.CARD_INSTALMENTS],
    "balance": [Method.BALANCE],
    "aggregator": [Method.QQPAY, Method.ALIPAY],
}

# Merchant ids that CONTRACT.md fixes for the demo accounts.
DEFAULT_MERCHANT_IDS = {
    "wechatpay": "1900000109",
    "alipay": "2088101122136241",
    "unionpay": "802310048993424",
    "aggregator": "1001",
}


def sandbox_account(
    backend: str,
    *,
    code: str | None = None,
    merchant_id: str | None = None,
    app_id: str = "",
    **fields,
) -> ChannelAccount:
    """A channel account provisioned at the in-process sandbox provider, as seed_demo does."""
    from payments.sandbox import core

    merchant_id = merchant_id or DEFAULT_MERCHANT_IDS.get(backend, f"{backend.upper()}TEST001")
    app_id = app_id or (
        "2021000000000001"
        if backend == "alipay"
        else "wxd678efh567hg6787"
        if backend == "wechatpay"
        else ""
    )
    credentials = (
        core.provider(backend).provision(merchant_id=merchant_id, app_id=app_id)
        if backend != "balance"
        else {}
    )
    account = ChannelAccount(
        code=code or backend,
        name=fields.pop("name", f"{backend} sandbox"),
        backend=backend,
        methods=fields.pop("methods", DEFAULT_METHODS[backend]),
        merchant_id=merchant_id,
        app_id=app_id,
        base_url=f"{settings.SITE_URL}/sandbox/{backend}/",
        **fields,
    )
    account.credentials = credentials
    account.save()
    return account


class PaymentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Payment

    reference = factory.Sequence(lambda n: f"test:{n}")
    buyer = factory.SubFactory(UserFactory)
    method = Method.ALIPAY
    amount = Decimal("100.00")
    currency = "CNY"
    subject = "Test payment"
