"""Loading the checkout context from the database in a constant number of queries."""

from __future__ import annotations

import time
from decimal import Decimal
from functools import cache

from django.utils import timezone

from config.prepared import PreparedRead
from payments import ledger
from payments.client import DeviceInfo, RegionInfo
from payments.models import ChannelAccount, ChannelHealth, Payment
from payments.ordering.rules import DEFAULT_CONFIG, OrderingConfig
from payments.ordering.signals import AccountOption, CheckoutContext, PastPayment
from payments.routing import AccountHealth
from payments.states import PAYMENT_PAID, PaymentStatus


def checkout_context(
    *,
    user,
    amount: Decimal,
    currency: str,
    device: DeviceInfo,
    region: RegionInfo,
    config: OrderingConfig = DEFAULT_CONFIG,
) -> CheckoutContext:
    """Load availability, history and the wallet balance in three queries, whatever the
    number of accounts, methods or past payments."""
    accounts = tuple(
        AccountOption(
            code=row.code,
            methods=frozenset(row.methods or ()),
            enabled=row.enabled,
            healthy=_breaker_of(row) != ChannelHealth.Breaker.OPEN,
            currency=row.currency,
            min_amount=row.min_amount,
            max_amount=row.max_amount,
            weight=row.weight,
            charges=frozenset(row.charges),
        )
        for row in _ENABLED_WITH_HEALTH.all()
    )
    rows = _history(config.history_limit).all(buyer_id=user.pk) if user.pk is not None else ()
    history = tuple(
        PastPayment(method=method, succeeded=status in PAYMENT_PAID, at=succeeded_at or created_at)
        for method, status, succeeded_at, created_at in rows
    )
    wallet = ledger.balance(ledger.buyer_wallet(user.pk), natural=True)
    return CheckoutContext(
        amount=amount,
        currency=currency,
        history=history,
        device=device,
        region=region,
        accounts=accounts,
        wallet_balance=wallet,
        now=timezone.now(),
    )


# Every checkout page and payment start reads these: compiled once per connection.
_ENABLED_WITH_HEALTH = PreparedRead(
    lambda: ChannelAccount.objects.filter(enabled=True).select_related("health")
)


@cache
def _history(limit: int) -> PreparedRead:
    """The buyer's last ``limit`` finished payments, newest first."""
    final = [*PAYMENT_PAID, PaymentStatus.FAILED]
    return PreparedRead(
        lambda buyer_id: (
            Payment.objects.filter(buyer_id=buyer_id, status__in=final)
            .order_by("-created_at")
            .values_list("method", "status", "succeeded_at", "created_at")[:limit]
        ),
        buyer_id=int,
    )


def _breaker_of(account) -> str:
    """The breaker in effect now: an open breaker whose cool-down has passed is half-open
    (probing) even before routing has written so — otherwise a method whose every account
    had opened would never be offered, never routed, and never probed again."""
    try:
        health = account.health
    except ChannelHealth.DoesNotExist:  # no outcome recorded yet: nothing says it is unhealthy
        return ChannelHealth.Breaker.CLOSED
    if not health.state:  # set by hand, without routing's counters: take the column as it is
        return health.breaker
    return AccountHealth.from_json(health.state).breaker_at(time.time())
