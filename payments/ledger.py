"""Double-entry journal (DESIGN.md §4): every money movement is one balanced, immutable entry.

Sign convention: debit positive, credit negative; the lines of an entry sum to zero, so the
whole journal sums to zero. Balances are sums of lines, never stored fields. Liabilities and
income therefore have negative natural balances; ``balance(..., natural=True)`` flips them so
a seller's pending money reads as a positive amount.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal

from django.db import IntegrityError, transaction
from django.db.models import Q, Sum

from payments.models import JournalEntry, JournalLine, LedgerAccount

CENT = Decimal("0.01")
Kind = LedgerAccount.Kind

CLEARING = "payments:clearing"  # money received for something not yet handed over
PLATFORM_REVENUE = "platform:revenue"
WRITE_OFFS = "platform:write-offs"


def channel_receivable(account_code: str) -> str:
    return f"channel:{account_code}:receivable"


def channel_fees(account_code: str) -> str:
    return f"channel:{account_code}:fees"


def buyer_wallet(user_id: int) -> str:
    return f"buyer:{user_id}:wallet"


def seller_pending(user_id: int) -> str:
    return f"seller:{user_id}:pending"


def seller_available(user_id: int) -> str:
    return f"seller:{user_id}:available"


def seller_paid_out(user_id: int) -> str:
    return f"seller:{user_id}:paid-out"


def _kind_of(code: str) -> str:
    if code.endswith(":receivable") or code.endswith(":paid-out"):
        return Kind.ASSET
    if code.endswith(":fees") or code == WRITE_OFFS:
        return Kind.EXPENSE
    if code == PLATFORM_REVENUE:
        return Kind.INCOME
    return Kind.LIABILITY


def _owner_of(code: str) -> int | None:
    parts = code.split(":")
    if parts[0] in {"buyer", "seller"} and len(parts) > 1 and parts[1].isdigit():
        return int(parts[1])
    return None


class UnbalancedEntry(ValueError):
    pass


def account(code: str, currency: str = "CNY") -> LedgerAccount:
    found, _ = LedgerAccount.objects.get_or_create(
        code=code, defaults={"kind": _kind_of(code), "currency": currency, "owner_id": _owner_of(code)}
    )
    return found


def post(
    *,
    key: str,
    kind: str,
    lines: Iterable[tuple[str, Decimal]],
    memo: str = "",
    reference: str = "",
    currency: str = "CNY",
) -> JournalEntry:
    """Post one balanced entry; posting the same ``key`` again returns the first entry and
    changes nothing (callbacks and tasks may run twice, concurrently)."""
    lines = [(code, Decimal(amount).quantize(CENT)) for code, amount in lines if Decimal(amount) != 0]
    if not lines:
        raise UnbalancedEntry(f"entry {key!r} has no non-zero lines")
    total = sum((amount for _, amount in lines), Decimal("0"))
    if total != 0:
        raise UnbalancedEntry(f"entry {key!r} does not balance: lines sum to {total}")
    try:
        with transaction.atomic():
            entry = JournalEntry.objects.create(key=key, kind=kind, memo=memo[:255], reference=reference[:64])
            ids = _account_ids([code for code, _ in lines], currency)
            JournalLine.objects.bulk_create(
                JournalLine(entry=entry, account_id=ids[code], amount=amount, currency=currency)
                for code, amount in lines
            )
    except IntegrityError:
        # Posted before (a repeat), or a concurrent poster won the race on the unique key.
        existing = JournalEntry.objects.filter(key=key).first()
        if existing is None:
            raise
        return existing
    return entry


def _account_ids(codes: list[str], currency: str) -> dict[str, int]:
    """Ledger account ids for ``codes`` in one query, creating the missing ones."""
    found = dict(LedgerAccount.objects.filter(code__in=codes).values_list("code", "pk"))
    for code in codes:
        if code not in found:
            found[code] = account(code, currency).pk
    return found


def balance(code: str, *, natural: bool = False) -> Decimal:
    """Sum of an account's lines. ``natural`` shows credit-normal accounts as positive."""
    total = JournalLine.objects.filter(account__code=code).aggregate(s=Sum("amount"))["s"] or Decimal("0.00")
    if natural and _kind_of(code) in {Kind.LIABILITY, Kind.INCOME}:
        total = -total
    return total.quantize(CENT)


def balances(codes: Iterable[str], *, natural: bool = False) -> dict[str, Decimal]:
    """Several balances in one query (dashboards list many accounts)."""
    codes = list(codes)
    rows = (
        JournalLine.objects.filter(account__code__in=codes)
        .values_list("account__code")
        .annotate(s=Sum("amount"))
    )
    found = dict(rows)
    result = {}
    for code in codes:
        total = (found.get(code) or Decimal("0.00")).quantize(CENT)
        if natural and _kind_of(code) in {Kind.LIABILITY, Kind.INCOME}:
            total = -total
        result[code] = total
    return result


def unbalanced_entries() -> int:
    """How many entries do not sum to zero (must always be 0; integrity_check reports it)."""
    # Half a cent of tolerance: SQLite sums decimals as floats (PostgreSQL is exact).
    return (
        JournalEntry.objects.annotate(total=Sum("lines__amount"))
        .filter(Q(total__gte=Decimal("0.005")) | Q(total__lte=Decimal("-0.005")))
        .count()
    )


def journal_total() -> Decimal:
    return (JournalLine.objects.aggregate(s=Sum("amount"))["s"] or Decimal("0.00")).quantize(CENT)
