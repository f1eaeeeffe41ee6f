"""The shop: brands, listings, card codes (encrypted), orders, disputes and payouts.

Seller balances are not stored here: they are sums of the payments journal (DESIGN.md §4).
State machines live next to their models (``transition``); workflows live in services. One
module per part, imported here so ``marketplace.models`` stays the place to import from.
"""

from marketplace.models.catalogue import (
    CENT,
    MONEY,
    Brand,
    CardCode,
    Category,
    IllegalTransition,
    Listing,
)
from marketplace.models.disputes import (
    Dispute,
    DisputeEvidence,
    _evidence_storage,
)
from marketplace.models.orders import (
    HOLDING_STATUSES,
    REVEALABLE_STATUSES,
    Order,
    RevealAudit,
    new_order_number,
)
from marketplace.models.payouts import (
    Payout,
    PayoutDestination,
)

__all__ = [
    "Brand",
    "CENT",
    "CardCode",
    "Category",
    "Dispute",
    "DisputeEvidence",
    "HOLDING_STATUSES",
    "IllegalTransition",
    "Listing",
    "MONEY",
    "Order",
    "Payout",
    "PayoutDestination",
    "REVEALABLE_STATUSES",
    "RevealAudit",
    "_evidence_storage",
    "new_order_number",
]
