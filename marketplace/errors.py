"""Domain errors of the shop. Each carries a message a person can act on (translated); views
and the API show it as is. Raising one means nothing was changed."""

from __future__ import annotations


class MarketplaceError(Exception):
    """Base: a request the shop refuses, with the reason for the person who made it."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class OutOfStock(MarketplaceError):
    """Fewer codes are available than asked for (API: 409)."""

    def __init__(self, message: str, *, available: int):
        super().__init__(message)
        self.available = available


class CodesInvalid(MarketplaceError):
    """Some codes of a batch are malformed or duplicates; ``errors`` maps each bad code's
    position in the batch (0-based) to its messages. Nothing of the batch was saved."""

    def __init__(self, message: str, *, errors: dict[int, list[str]]):
        super().__init__(message)
        self.errors = errors


class OrderNotFound(MarketplaceError):
    """No such order for this person (others' orders do not exist for them: 404)."""


class OrderNotPayable(MarketplaceError):
    """The order cannot take a payment (paid, expired, cancelled…)."""


class ListingUnavailable(MarketplaceError):
    """The listing is paused, withdrawn or not the caller's to change."""


class DisputeRefused(MarketplaceError):
    """A dispute that cannot be opened, answered or decided."""


class PayoutRefused(MarketplaceError):
    """A payout request above the available balance, or to someone else's destination."""
