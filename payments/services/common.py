"""What every flow of the payment platform shares: its refusal and its money quantum."""

from __future__ import annotations

from decimal import Decimal
from typing import Literal

CENT = Decimal("0.01")
ApplyResult = Literal["applied", "duplicate", "rejected"]


class PaymentError(Exception):
    """A request the platform refuses (bad amount, unknown method, nothing to refund…)."""
