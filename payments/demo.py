"""Demo channel accounts for `seed_demo`: one sandbox account per channel code (CONTRACT.md),
provisioned at the built-in simulators exactly as a merchant would onboard at a provider."""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.db import transaction

from payments.errors import error_codes_sync
from payments.models import ChannelAccount, Method

DEMO_ACCOUNTS = [
    # code, backend, name, methods, merchant id, app id, fee %, settlement days
    ("alipay", "alipay", "Alipay (direct)", [Method.ALIPAY], "2088101122136241", "2021000000000001", "0.600", 1),
    ("wechatpay", "wechatpay", "WeChat Pay (direct)", [Method.WECHATPAY], "1900000109", "wxd678efh567hg6787", "0.600", 1),
    ("unionpay", "unionpay", "UnionPay online", [Method.UNIONPAY], "802310048993424", "", "0.600", 1),
    ("ecny", "ecny", "e-CNY via acquiring bank", [Method.ECNY], "ECNY0000000001", "", "0.600", 1),
    ("paypal", "paypal", "PayPal", [Method.PAYPAL], "CARDEXPAYPAL01", "", "3.400", 2),
    ("card", "card", "Card acquirer", [Method.CARD, Method.CARD_INSTALMENTS], "acct_cardexdemo01", "", "1.800", 2),
    ("balance", "balance", "Cardex balance", [Method.BALANCE], "", "", "0.000", 0),
]


def demo_channels_ensure() -> list[ChannelAccount]:
    """Create (or refresh the provider registration of) the demo accounts. Idempotent:
    existing accounts keep staff edits; only missing credentials are provisioned."""
    from payments.sandbox import core

    accounts = []
    site = settings.SITE_URL
    with transaction.atomic():
        for code, backend, name, methods, merchant_id, app_id, fee, days in DEMO_ACCOUNTS:
            account, created = ChannelAccount.objects.get_or_create(
                code=code,
                defaults={
                    "name": name, "backend": backend, "methods": [str(m) for m in methods],
                    "merchant_id": merchant_id, "app_id": app_id, "fee_percent": Decimal(fee),
                    "settlement_days": days, "base_url": f"{site}/sandbox/{backend}/",
                },
            )
            if backend != "balance":
                try:
                    provider = core.provider(backend)
                except LookupError:
                    provider = None
                if provider is not None and (created or not account.credentials or not provider.merchant(account.merchant_id)):
                    account.credentials = provider.provision(merchant_id=account.merchant_id, app_id=account.app_id)
            account.base_url = f"{site}/sandbox/{backend}/" if "/sandbox/" in account.base_url else account.base_url
            account.save()
            accounts.append(account)
    error_codes_sync()
    return accounts
