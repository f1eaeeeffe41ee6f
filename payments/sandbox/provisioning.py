"""The simulators' own provisioning of the demo channel accounts `seed_demo` relies on: one
sandbox account per channel code (CONTRACT.md), plus a bank aggregator account
(`bank-polypay`) so Alipay and WeChat Pay each have a second provider to fail over to, and an
epay aggregator (`aggregator`) serving QQ Wallet and Alipay; each
onboarded at its simulator exactly as a merchant onboards at a provider, and pointed at the
address the simulators are served on (SANDBOX_URL apart, SITE_URL on the site itself)."""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from payments.errors import error_codes_sync
from payments.models import ChannelAccount, FxRate, Method
from payments.sandbox import core

DEMO_ACCOUNTS = [
    # code, backend, name, methods, merchant id, app id, fee %, settlement days, routing weight
    (
        "alipay",
        "alipay",
        "Alipay (direct)",
        [Method.ALIPAY],
        "2088101122136241",
        "2021000000000001",
        "0.600",
        1,
        "1.00",
    ),
    (
        "wechatpay",
        "wechatpay",
        "WeChat Pay (direct)",
        [Method.WECHATPAY],
        "1900000109",
        "wxd678efh567hg6787",
        "0.600",
        1,
        "1.00",
    ),
    (
        "unionpay",
        "unionpay",
        "UnionPay online",
        [Method.UNIONPAY],
        "802310048993424",
        "",
        "0.600",
        1,
        "1.00",
    ),
    (
        "ecny",
        "ecny",
        "e-CNY via acquiring bank",
        [Method.ECNY],
        "ECNY0000000001",
        "",
        "0.600",
        1,
        "1.00",
    ),
    ("paypal", "paypal", "PayPal", [Method.PAYPAL], "CARDEXPAYPAL01", "", "3.400", 2, "1.00"),
    # The sandbox acquirer charges 0.6 % (payments/sandbox/card/protocol.py): the demo account
    # says the same, so the first settlement pull reconciles without a fee mismatch.
    (
        "card",
        "card",
        "Card acquirer",
        [Method.CARD, Method.CARD_INSTALMENTS],
        "acct_cardexdemo01",
        "",
        "0.600",
        2,
        "1.00",
    ),
    ("balance", "balance", "Cardex balance", [Method.BALANCE], "", "", "0.000", 0, "1.00"),
    # A second provider for Alipay and WeChat Pay: the acquiring bank's aggregated QR API (the
    # e-CNY backend's protocol, pay types ALIPAY / WECHAT). Dearer and weighted at half the
    # direct accounts, so the direct channels carry the traffic while they are healthy and the
    # bank takes over when one of them fails or is switched off (docs/channels/ecny.md).
    (
        "bank-polypay",
        "ecny",
        "Bank aggregated QR (Alipay/WeChat)",
        [Method.ALIPAY, Method.WECHATPAY],
        "POLY0000000001",
        "",
        "0.800",
        1,
        "0.50",
    ),
    # An epay / 易支付 aggregator (docs/channels/aggregator.md): the only way QQ Wallet is
    # offered, and a third provider for Alipay, dearer still and weighted lowest.
    (
        "aggregator",
        "aggregator",
        "epay aggregator (QQ Wallet/Alipay)",
        [Method.QQPAY, Method.ALIPAY],
        "1001",
        "",
        "1.000",
        1,
        "0.40",
    ),
]


#: The currencies the demo accounts charge in besides none: PayPal, like most PayPal merchants
#: outside China, charges USD (a CNY price is converted); the card acquirer takes CNY and
#: the currencies buyers abroad mostly pay in. The rest charge CNY only.
DEMO_CURRENCIES = {
    "paypal": ["USD"],
    "card": ["CNY", "USD", "EUR", "GBP", "HKD", "JPY"],
}
#: Demo exchange rates (CNY per unit) for the rate table, stamped fresh on every run so the
#: demo never pays at a stale rate; a rate staff have set by hand is left alone.
DEMO_RATES = {
    "USD": Decimal("7.1375"),
    "EUR": Decimal("7.7410"),
    "GBP": Decimal("9.0350"),
    "HKD": Decimal("0.9170"),
    "JPY": Decimal("0.0478"),
}
DEMO_RATE_SOURCE = "sandbox demo rate"


def demo_rates_ensure() -> None:
    """The demo rate table: every demo currency has a rate of now (source "sandbox demo
    rate"); rows staff edited (another source) keep their rate and time."""
    now = timezone.now()
    for currency, rate in DEMO_RATES.items():
        row, created = FxRate.objects.get_or_create(
            currency=currency, defaults={"rate": rate, "as_of": now, "source": DEMO_RATE_SOURCE}
        )
        if not created and row.source == DEMO_RATE_SOURCE:
            row.as_of = now
            row.save(update_fields=["as_of", "updated_at"])


def demo_sandbox_url() -> str:
    """Where the demo accounts should point: the address someone gave (SANDBOX_URL, else an
    explicit SITE_URL); with neither, wherever the existing demo accounts already point, so a
    bare re-run of seed_demo from another shell never moves a running server's accounts to
    the default port; on a fresh database, this site's default address."""
    if settings.SANDBOX_URL:
        return settings.SANDBOX_URL
    if settings.SITE_URL_CONFIGURED:
        return settings.SITE_URL
    for account in ChannelAccount.objects.filter(code__in=[row[0] for row in DEMO_ACCOUNTS]):
        root, marker, _ = account.base_url.partition("/sandbox/")
        if marker:
            return root
    return core.own_url()


def demo_channels_ensure(*, sandbox_url: str | None = None) -> list[ChannelAccount]:
    """Create (or refresh the provider registration of) the demo accounts, pointed at the
    simulators served at ``sandbox_url`` (default: ``core.own_url()``). Idempotent: existing
    accounts keep staff edits; an account on the sandbox whose credentials are missing or
    unreadable (the credential keys changed), whose merchant the sandbox does not know, or
    whose sandbox now answers at another address, is provisioned again. Accounts pointed at
    a real provider are left alone."""
    site = (sandbox_url or core.own_url()).rstrip("/")
    accounts = []
    with transaction.atomic(), core.serving_at(site):
        for code, backend, name, methods, merchant_id, app_id, fee, days, weight in DEMO_ACCOUNTS:
            account, created = ChannelAccount.objects.get_or_create(
                code=code,
                defaults={
                    "name": name,
                    "backend": backend,
                    "methods": [str(m) for m in methods],
                    "merchant_id": merchant_id,
                    "app_id": app_id,
                    "fee_percent": Decimal(fee),
                    "settlement_days": days,
                    "base_url": f"{site}/sandbox/{backend}/",
                    "weight": Decimal(weight),
                    "currencies": DEMO_CURRENCIES.get(code, []),
                },
            )
            on_sandbox = "/sandbox/" in account.base_url
            account_url = f"{site}/sandbox/{account.backend}/"
            # Served on another address now (`make run PORT=…`, `make serve`): credentials that
            # carry URLs (hosted card page, certificate URL) must be issued for the new one.
            moved = on_sandbox and account.base_url != account_url
            if account.backend != "balance" and on_sandbox:
                try:
                    provider = core.provider(account.backend)
                except LookupError:
                    provider = None
                if provider is not None and (
                    created
                    or moved
                    or not _readable(account)
                    or not provider.merchant(account.merchant_id)
                ):
                    # provisioning is idempotent per merchant id: the same keys come back
                    account.credentials = provider.provision(
                        merchant_id=account.merchant_id, app_id=account.app_id
                    )
            if on_sandbox:
                account.base_url = account_url
            account.save()
            accounts.append(account)
    error_codes_sync()
    demo_rates_ensure()
    return accounts


def _readable(account: ChannelAccount) -> bool:
    try:
        return bool(account.credentials)
    except ValueError:  # encrypted with keys no longer configured
        return False
