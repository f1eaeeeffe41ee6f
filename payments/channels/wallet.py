"""The wallet port: what the balance channel needs from the buyers' Cardex wallets.

The contract defines the port and the platform implements it on its journal
(``payments/wallet_ledger.py``) and registers it when the app is ready, so the balance
channel reaches the money without importing the platform's ledger or models.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Literal, Protocol


@dataclass(frozen=True)
class WalletCapture:
    """A payment taken from a wallet. ``wallet`` names the wallet it came from (opaque to the
    channel; a refund goes back there)."""

    out_trade_no: str
    wallet: str
    amount: Decimal
    posted_at: dt.datetime


@dataclass(frozen=True)
class WalletMovement:
    """One line of a wallet's statement of a day: a payment out of a wallet or a refund in."""

    kind: Literal["payment", "refund"]
    out_trade_no: str
    refund_no: str
    amount: Decimal  # positive
    currency: str
    posted_at: dt.datetime


class InsufficientBalance(Exception):
    """The wallet holds less than the payment; nothing was taken."""

    def __init__(self, *, available: Decimal, wanted: Decimal):
        super().__init__(f"balance {available} < {wanted}")
        self.available = available
        self.wanted = wanted


class WalletPort(Protocol):
    def capture(self, *, owner: int, out_trade_no: str, amount: Decimal, currency: str) -> None:
        """Take ``amount`` from ``owner``'s wallet for ``out_trade_no``, under a lock so two
        checkouts cannot spend one balance; raise :class:`InsufficientBalance`. The journal
        key is the platform's capture key, so capturing twice takes the money once."""

    def captured(self, out_trade_no: str) -> WalletCapture | None:
        """The capture of ``out_trade_no``, or None when nothing was taken."""

    def refund(
        self, *, capture: WalletCapture, refund_no: str, amount: Decimal, currency: str, memo: str
    ) -> None:
        """Give ``amount`` back to the wallet ``capture`` came from; idempotent by
        ``refund_no``."""

    def movements(self, day: dt.date) -> Iterable[WalletMovement]:
        """The wallets' payments and refunds posted on ``day`` (the site's time zone)."""


_registered: WalletPort | None = None


def register(port: WalletPort) -> None:
    """Install the platform's wallet (from ``PaymentsConfig.ready``)."""
    global _registered
    _registered = port


def wallet() -> WalletPort:
    if _registered is None:
        raise LookupError("no wallet is registered for the balance channel")
    return _registered
