"""Card instalment plans: months and the issuer's fee, stated before paying."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from payments.ordering.rules import DEFAULT_CONFIG, OrderingConfig
from payments.ordering.signals import CENT


@dataclass(frozen=True)
class InstalmentPlan:
    months: int
    fee_percent: Decimal
    fee: Decimal
    total: Decimal
    per_month: Decimal


def instalment_plans(
    amount: Decimal, config: OrderingConfig = DEFAULT_CONFIG
) -> list[InstalmentPlan]:
    """The plans a buyer can choose with card instalments, with the issuer's fee stated
    before paying. The order amount is what is charged now; the fee is billed by the card
    issuer over the months, so ``total`` is what the buyer repays in all."""
    plans = []
    for months, percent in sorted(config.instalment_fees.items()):
        fee = (amount * percent / 100).quantize(CENT)
        total = amount + fee
        plans.append(InstalmentPlan(months, percent, fee, total, (total / months).quantize(CENT)))
    return plans
