"""Payment platform records: channel accounts, payments, attempts, refunds, raw
notifications, error-code mapping, channel health, the double-entry journal (one module
each; imported here so `payments.models` stays the one place to import them from)."""

from payments.models.buyers import (
    IdempotencyRecord,
    WechatPayer,
)
from payments.models.channels import (
    BreakerEvent,
    ChannelHealth,
    ErrorCode,
)
from payments.models.core import (
    MONEY,
    ZERO,
    Attempt,
    ChannelAccount,
    Method,
    Payment,
    Refund,
    SettlementCycle,
    new_out_trade_no,
    new_refund_no,
)
from payments.models.disputes import ProviderDispute
from payments.models.fx import FxRate
from payments.models.ledger import (
    JournalEntry,
    JournalLine,
    LedgerAccount,
)
from payments.models.notifications import (
    Notification,
    NotificationRefusal,
)
from payments.states import AttemptStatus, PaymentStatus, RefundStatus

__all__ = [
    "Attempt",
    "AttemptStatus",
    "BreakerEvent",
    "ChannelAccount",
    "ChannelHealth",
    "ErrorCode",
    "FxRate",
    "IdempotencyRecord",
    "JournalEntry",
    "JournalLine",
    "LedgerAccount",
    "MONEY",
    "Method",
    "Notification",
    "NotificationRefusal",
    "Payment",
    "PaymentStatus",
    "ProviderDispute",
    "Refund",
    "RefundStatus",
    "SettlementCycle",
    "WechatPayer",
    "ZERO",
    "new_out_trade_no",
    "new_refund_no",
]
