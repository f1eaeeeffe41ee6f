"""What a payment pays for, as the platform is handed it: a typed reference, and the facts
about it that only the payer's shop knows, for risk.

The reference is stored on ``Payment.reference`` as ``<kind>:<key>`` (``order:C3F9…``);
this module is the only place that spells that form out. The platform itself never looks
inside a reference: the shop (``order:``) and the wallet (``topup:``) recognise their own.
"""

from __future__ import annotations

from dataclasses import dataclass

SEPARATOR = ":"


@dataclass(frozen=True)
class PayableRef:
    """One payable thing: ``kind`` says whose it is (``order``, ``topup``), ``key`` which."""

    kind: str
    key: str

    ORDER = "order"
    TOPUP = "topup"

    def __post_init__(self) -> None:
        if not self.kind or SEPARATOR in self.kind or not self.key:
            raise ValueError(f"not a payable reference: {self.kind!r}, {self.key!r}")

    def __str__(self) -> str:
        return f"{self.kind}{SEPARATOR}{self.key}"

    @classmethod
    def order(cls, number: str) -> PayableRef:
        return cls(cls.ORDER, number)

    @classmethod
    def topup(cls, key: str) -> PayableRef:
        return cls(cls.TOPUP, key)

    @classmethod
    def parse(cls, reference: str | PayableRef | None) -> PayableRef | None:
        """The reference a payment was started with, or None for one of no known form."""
        if isinstance(reference, PayableRef):
            return reference
        kind, separator, key = (reference or "").partition(SEPARATOR)
        if not separator or not kind or not key:
            return None
        return cls(kind, key)

    @staticmethod
    def prefix(kind: str) -> str:
        """What every stored reference of ``kind`` starts with (for queries)."""
        return f"{kind}{SEPARATOR}"

    @property
    def order_number(self) -> str | None:
        return self.key if self.kind == self.ORDER else None


def order_number_of(reference: str | None) -> str | None:
    """The order number a stored payment reference names, or None when it names no order."""
    ref = PayableRef.parse(reference)
    return ref.order_number if ref else None


@dataclass(frozen=True)
class PayableFacts:
    """What the shop knows about the buyer, the seller and the goods, for risk
    (DESIGN.md §6). Absent facts fall back to what the platform sees itself (the buyer's
    account age and paid payments)."""

    account_age_days: int | None = None
    good_orders: int | None = None
    disputes: int = 0
    disputes_refunded: int = 0
    brand: str = ""
    brand_high_risk: bool = False
    seller_id: int | None = None
    seller_account_age_days: int | None = None
    seller_linked: bool = False
    #: how old the listing being paid for is (many young buyers paying one seller's new
    #: listings small amounts is a laundering pattern)
    listing_age_days: int | None = None
