"""What checkout ordering looks at, as frozen values: the amount, the buyer's past payments,
the configured channel accounts and the wallet balance (device and region come from
``payments.client``). :func:`payments.ordering.selectors.checkout_context` loads them."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from payments.client import DeviceInfo, RegionInfo
from payments.models import Method

CENT = Decimal("0.01")


@dataclass(frozen=True)
class PastPayment:
    """One of the buyer's earlier payments that reached a final outcome."""

    method: str
    succeeded: bool
    at: datetime


@dataclass(frozen=True)
class AccountOption:
    """What ordering needs to know about one configured channel account."""

    code: str
    methods: frozenset[str]
    enabled: bool = True
    healthy: bool = True  # False while its circuit breaker is open
    currency: str = "CNY"
    min_amount: Decimal = CENT
    max_amount: Decimal = Decimal("50000.00")
    weight: Decimal = Decimal("1")
    #: the currencies it charges buyers in; empty: its own alone
    charges: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        if not isinstance(self.methods, frozenset):
            object.__setattr__(self, "methods", frozenset(self.methods))
        if not isinstance(self.charges, frozenset):
            object.__setattr__(self, "charges", frozenset(self.charges))

    def fits(self, amount: Decimal) -> bool:
        return self.min_amount <= amount <= self.max_amount


@dataclass(frozen=True)
class CheckoutContext:
    """Everything the ranking looks at, as plain values."""

    amount: Decimal
    currency: str = "CNY"
    history: tuple[PastPayment, ...] = ()
    device: DeviceInfo = field(default_factory=DeviceInfo)
    region: RegionInfo = field(default_factory=RegionInfo)
    accounts: tuple[AccountOption, ...] = ()
    wallet_balance: Decimal = Decimal("0.00")
    methods: tuple[str, ...] = tuple(Method.values)
    # When the ranking is made: past outcomes fade with their age. None measures ages from
    # the newest past payment (pure callers and tests without a clock).
    now: datetime | None = None
